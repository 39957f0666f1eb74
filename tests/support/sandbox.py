"""An OpenAI-compatible sandbox server that stands in for the external AI API in tests and the demo.

A test fixture, not the product: standard library only, plus ``cryptography`` for the optional
self-signed TLS certificate.

The API lives under ``/v1``:

- ``GET /v1/models`` and ``GET /v1/models/{id}`` list what the Bearer key may see;
- ``POST /v1/chat/completions`` answers a minimal chat completion with token usage, or 403 for a
  model the key sees listed but may not use ("listed but refused"), or 404 for an unknown model.

A key can stop working at a given moment (``expires_at``), after a number of requests
(``expires_after_requests``), or on command (``rotate_keys``); from then on it answers 401
"API key has been rotated". The request log records, per request, when it came, which key it
carried (fingerprint and label) and the model asked for, so tests can prove the order of events.

Keys are held only as SHA-256 digests. A configuration may name a key in plain text (``"key"``)
or by its digest (``"sha256"``); what the server reports (``GET /_sandbox/config``, the request log)
carries digests and fingerprint prefixes, never a key.

Runtime control lives outside ``/v1`` on the same server:

- ``GET /_sandbox/config`` and ``PUT /_sandbox/config`` (a JSON object of changes, see
  :meth:`SandboxState.configure`);
- ``GET /_sandbox/requests`` and ``DELETE /_sandbox/requests`` (the request log);
- ``POST /_sandbox/reset`` (back to the starting configuration, empty log);
- ``GET /_sandbox/health``.

Command line (runs in the foreground; stop it with SIGTERM or SIGINT)::

    python -m tests.support.sandbox --host 127.0.0.1 --port 8400 --config config.json \\
        [--pid-file F] [--port-file F] [--tls --cert-dir D]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import hashlib
import http
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API_PREFIX = "/v1"
CONTROL_PREFIX = "/_sandbox"

DEFAULT_MODELS = ("gpt-4.1", "claude-sonnet-4-20250514", "gemini-2.5-flash", "deepseek-v3.2")
ROTATED_MESSAGE = "API key has been rotated"
INVALID_MESSAGE = "Invalid API key"
MISSING_KEY_MESSAGE = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
FINGERPRINT_LENGTH = 16  # the same prefix length the Terraform root records
DEFAULT_HANG_SECONDS = 300.0
MAX_LOGGED_REQUESTS = 10_000
MAX_BODY_BYTES = 1_048_576
MODEL_CREATED = 1735689600  # 2025-01-01, a fixed value so answers are reproducible

# Owners reported in the model list when a configuration names a model by id alone.
_OWNER_BY_PREFIX = (("gpt-", "openai"), ("o1", "openai"), ("claude-", "anthropic"), ("gemini-", "google"))
_SETTINGS = frozenset(
    {
        "models",
        "keys",
        "rotated_keys",
        "fault",
        "faults",
        "latency_ms",
        "hang",
        "hang_seconds",
        "echo_key_in_errors",
        "add_keys",
        "rotate_keys",
    }
)
_SERVER_SETTINGS = frozenset({"host", "port", "tls", "cert_dir"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def key_sha256(key: str) -> str:
    """Full SHA-256 hex digest of a key, as the sandbox stores it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_fingerprint(key: str) -> str:
    """The fingerprint prefix the request log records for a key."""
    return key_sha256(key)[:FINGERPRINT_LENGTH]


def default_config(key: str = "sk-test-sandbox-0001") -> dict[str, Any]:
    """One accepted key and the four default models."""
    return {"models": list(DEFAULT_MODELS), "keys": [{"key": key}]}


class SandboxConfigError(ValueError):
    """A configuration change the sandbox cannot apply."""


class SandboxState:
    """Configuration, fault queue and request log, shared by every request thread."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._models: list[dict[str, str]] = [_model_entry(name) for name in DEFAULT_MODELS]
        self._keys: dict[str, dict[str, Any]] = {}
        self._rotated: set[str] = set()
        self._faults: list[dict[str, Any]] = []
        self._latency_ms = 0
        self._hang = False
        self._hang_seconds = DEFAULT_HANG_SECONDS
        self._echo_key_in_errors = False
        self._log: list[dict[str, Any]] = []
        self.configure(config or {})
        self._initial = self.snapshot()

    # Configuration ----------------------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply changes and return the resulting configuration.

        Each top-level setting given replaces the current one; settings not given stay:

        - ``models``: list of ids, or of ``{"id": ..., "owned_by": ...}``;
        - ``keys``: list of accepted keys, each a string or ``{"key" | "sha256", "models",
          "refused_models", "expires_at", "expires_after_requests", "label"}``. ``models`` limits
          what the key sees (default: every model); ``refused_models`` are listed but refused by chat
          completions; from ``expires_at`` (epoch seconds) on, or once it has been accepted
          ``expires_after_requests`` times, the key answers 401 "API key has been rotated";
          ``label`` names the key in the request log;
        - ``rotated_keys``: keys (strings or ``{"sha256": ...}``) answering 401 rotated;
        - ``fault`` (one object or null) or ``faults`` (a list): forced answers, each
          ``{"status", "count" (null: always), "retry_after", "message", "body", "content_type",
          "paths"}``; the first fault still due whose ``paths`` prefixes match is served;
        - ``latency_ms``: delay before every API answer;
        - ``hang`` and ``hang_seconds``: hold every API request that long before answering;
        - ``echo_key_in_errors``: put the received key into 401 messages, to prove clients redact it.

        Two operations edit the key lists instead of replacing them: ``add_keys`` (entries as in
        ``keys``) and ``rotate_keys`` (keys moved from accepted to rotated).
        """
        if not isinstance(changes, dict):
            raise SandboxConfigError("the configuration must be a JSON object")
        fixed = sorted(set(changes) & _SERVER_SETTINGS)
        if fixed:
            raise SandboxConfigError(f"{', '.join(fixed)} can only be set when the server starts")
        unknown = sorted(set(changes) - _SETTINGS)
        if unknown:
            raise SandboxConfigError(f"unknown sandbox settings: {', '.join(unknown)}")
        if "fault" in changes and "faults" in changes:
            raise SandboxConfigError("give either 'fault' or 'faults', not both")

        # Validate everything before touching the state, so a bad change leaves it as it was.
        models = [_model_entry(item) for item in _as_list(changes["models"], "models")] if "models" in changes else None
        keys = [_key_entry(item) for item in _as_list(changes["keys"], "keys")] if "keys" in changes else None
        rotated = (
            [_digest_of(item, "rotated_keys") for item in _as_list(changes["rotated_keys"], "rotated_keys")]
            if "rotated_keys" in changes
            else None
        )
        added = [_key_entry(item) for item in _as_list(changes.get("add_keys", []), "add_keys")]
        rotating = [_digest_of(item, "rotate_keys") for item in _as_list(changes.get("rotate_keys", []), "rotate_keys")]
        faults = None
        if "fault" in changes:
            faults = [] if changes["fault"] is None else [_fault_entry(changes["fault"])]
        elif "faults" in changes:
            faults = [_fault_entry(item) for item in _as_list(changes["faults"], "faults")]
        latency_ms = _non_negative(changes["latency_ms"], "latency_ms") if "latency_ms" in changes else None
        hang_seconds = _non_negative(changes["hang_seconds"], "hang_seconds") if "hang_seconds" in changes else None
        hang = _boolean(changes["hang"], "hang") if "hang" in changes else None
        echo = changes.get("echo_key_in_errors")
        if echo is not None:
            echo = _boolean(echo, "echo_key_in_errors")

        with self._lock:
            if models is not None:
                self._models = models
            if keys is not None:
                self._keys = {entry["sha256"]: entry for entry in keys}
            if rotated is not None:
                self._rotated = set(rotated)
            for entry in added:
                self._keys[entry["sha256"]] = entry
                self._rotated.discard(entry["sha256"])
            for digest in rotating:
                self._keys.pop(digest, None)
                self._rotated.add(digest)
            if faults is not None:
                self._faults = faults
            if latency_ms is not None:
                self._latency_ms = int(latency_ms)
            if hang is not None:
                self._hang = hang
            if hang_seconds is not None:
                self._hang_seconds = float(hang_seconds)
            if echo is not None:
                self._echo_key_in_errors = echo
            return self._snapshot_locked()

    def reset(self) -> dict[str, Any]:
        """Return to the starting configuration and empty the request log."""
        self.clear_requests()
        return self.configure(copy.deepcopy(self._initial))

    def snapshot(self) -> dict[str, Any]:
        """The configuration as JSON-ready data; keys appear only as digests."""
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> dict[str, Any]:
        return {
            "models": copy.deepcopy(self._models),
            "keys": [
                {**copy.deepcopy(entry), "fingerprint": entry["sha256"][:FINGERPRINT_LENGTH]}
                for entry in self._keys.values()
            ],
            "rotated_keys": [
                {"sha256": digest, "fingerprint": digest[:FINGERPRINT_LENGTH]} for digest in sorted(self._rotated)
            ],
            "faults": copy.deepcopy(self._faults),
            "latency_ms": self._latency_ms,
            "hang": self._hang,
            "hang_seconds": self._hang_seconds,
            "echo_key_in_errors": self._echo_key_in_errors,
        }

    # Serving ----------------------------------------------------------------------------------

    def take_fault(self, path: str) -> dict[str, Any] | None:
        """The fault due for this request, if any, counting it as served."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault["paths"] and not any(path.startswith(prefix) for prefix in fault["paths"]):
                    continue
                if fault["count"] is not None:
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        del self._faults[index]
                return copy.deepcopy(fault)
        return None

    def delays(self) -> tuple[float, float | None]:
        """Seconds of added latency, and seconds to hang (None: no hang)."""
        with self._lock:
            return self._latency_ms / 1000.0, self._hang_seconds if self._hang else None

    def wait_while_hanging(self, seconds: float) -> bool:
        """Hold a request while hang mode lasts, at most ``seconds``; False when the server stops meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                hanging = self._hang
            remaining = deadline - time.monotonic()
            if not hanging or remaining <= 0:
                return True
            if self.stopping.wait(min(remaining, 0.1)):
                return False

    def authenticate(self, key: str | None) -> tuple[dict[str, Any] | None, tuple[int, dict[str, Any]] | None]:
        """The accepted key's entry, or the error answer for a missing, unknown or rotated key."""
        if not key:
            return None, (401, _error_body(MISSING_KEY_MESSAGE, "invalid_request_error", None))
        digest = key_sha256(key)
        with self._lock:
            echo = self._echo_key_in_errors
            stored = self._keys.get(digest)
            rotated = digest in self._rotated
            limit = None if stored is None else stored["expires_after_requests"]
            if stored is not None and not rotated and limit is not None and stored["requests_used"] >= limit:
                rotated = True
            elif stored is not None and not rotated:
                stored["requests_used"] += 1
            entry = copy.deepcopy(stored)
        if entry is not None and entry["expires_at"] is not None and time.time() >= entry["expires_at"]:
            rotated = True
        if rotated:
            message = f"{ROTATED_MESSAGE}: {key}" if echo else ROTATED_MESSAGE
            return None, (401, _error_body(message, "invalid_request_error", "invalid_api_key"))
        if entry is None:
            message = f"{INVALID_MESSAGE}: {key}" if echo else INVALID_MESSAGE
            return None, (401, _error_body(message, "invalid_request_error", "invalid_api_key"))
        return entry, None

    def key_label(self, key: str | None) -> str | None:
        """The label a configuration gave this key, if any."""
        if not key:
            return None
        with self._lock:
            entry = self._keys.get(key_sha256(key))
        return None if entry is None else entry["label"]

    def visible_models(self, entry: dict[str, Any]) -> list[dict[str, str]]:
        """The model list as this key sees it."""
        with self._lock:
            known = {model["id"]: model for model in self._models}
            ordered = list(self._models)
        if entry["models"] is None:
            return copy.deepcopy(ordered)
        return [copy.deepcopy(known.get(name, _model_entry(name))) for name in entry["models"]]

    # Request log ------------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)
            del self._log[:-MAX_LOGGED_REQUESTS]

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._log)

    def clear_requests(self) -> int:
        with self._lock:
            count = len(self._log)
            self._log.clear()
            return count


class SandboxServer:
    """The sandbox API on a background thread.

    ``SandboxServer(config).start()`` binds 127.0.0.1 on a free port unless ``host`` / ``port``
    are given (as arguments or in ``config``) and returns :attr:`base_url`, e.g.
    ``http://127.0.0.1:PORT/v1``. With ``tls=True`` it serves HTTPS with a self-signed certificate
    written to ``cert_dir`` (a temporary directory by default); :attr:`ca_cert_path` is that
    certificate, for clients that should trust it.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: bool | None = None,
        cert_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        config = dict(config or {})
        self.host: str = host if host is not None else str(config.pop("host", "127.0.0.1"))
        self._requested_port: int = port if port is not None else int(config.pop("port", 0))
        self.tls: bool = tls if tls is not None else bool(config.pop("tls", False))
        chosen_dir = cert_dir if cert_dir is not None else config.pop("cert_dir", None)
        for name in _SERVER_SETTINGS:
            config.pop(name, None)
        self._cert_dir = Path(chosen_dir) if chosen_dir else None
        self.state = SandboxState(config)
        self.ca_cert_path: Path | None = None
        self._httpd: _SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._owned_cert_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> str:
        if self._httpd is not None:
            return self.base_url
        tls_context = self._tls_context() if self.tls else None
        self.state.stopping.clear()
        self._httpd = _SandboxHTTPServer((self.host, self._requested_port), self.state, tls_context)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="sandbox-api", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self.state.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None
        self._thread = None
        if self._owned_cert_dir is not None:
            self._owned_cert_dir.cleanup()
            self._owned_cert_dir = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not running")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + API_PREFIX

    @property
    def control_url(self) -> str:
        return self.root_url + CONTROL_PREFIX

    # Control ----------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Apply configuration changes (see :meth:`SandboxState.configure`)."""
        return self.state.configure(changes)

    def config(self) -> dict[str, Any]:
        return self.state.snapshot()

    def accept_key(
        self,
        key: str,
        *,
        models: list[str] | None = None,
        refused_models: list[str] | None = None,
        expires_at: float | None = None,
        expires_after_requests: int | None = None,
        label: str | None = None,
    ) -> None:
        """Accept the key (again), with the settings of a ``keys`` entry; its request count starts at 0."""
        entry: dict[str, Any] = {"key": key, "models": models, "refused_models": refused_models or []}
        entry.update(expires_at=expires_at, expires_after_requests=expires_after_requests, label=label)
        self.state.configure({"add_keys": [entry]})

    def rotate_key(self, key: str) -> None:
        """Make the key answer 401 "API key has been rotated" from now on."""
        self.state.configure({"rotate_keys": [key]})

    def fail_next(self, status: int, count: int | None = 1, **fault: Any) -> None:
        """Force ``status`` for the next ``count`` API requests (``count=None``: until changed)."""
        self.state.configure({"faults": [{"status": status, "count": count, **fault}]})

    def requests(self, *, key: str | None = None) -> list[dict[str, Any]]:
        """The request log, oldest first; with ``key``, only the requests that carried it."""
        log = self.state.requests()
        if key is None:
            return log
        return [entry for entry in log if entry["key_fingerprint"] == key_fingerprint(key)]

    def clear_requests(self) -> int:
        return self.state.clear_requests()

    def reset(self) -> dict[str, Any]:
        return self.state.reset()

    def _tls_context(self) -> ssl.SSLContext:
        if self._cert_dir is None:
            self._owned_cert_dir = tempfile.TemporaryDirectory(prefix="sandbox-tls-")
            self._cert_dir = Path(self._owned_cert_dir.name)
        cert_path, key_path = write_self_signed_certificate(self._cert_dir, self.host)
        self.ca_cert_path = cert_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


def write_self_signed_certificate(directory: str | os.PathLike[str], host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (0600) for localhost, 127.0.0.1, ::1 and ``host``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aigateway sandbox")])
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        address = ipaddress.ip_address(host)
        if address not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
            names.append(x509.IPAddress(address))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(
            private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, tls_context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self.tls_context = tls_context
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, on the request's own thread, so a client that never
        # completes it cannot hold up the accept loop.
        if self.tls_context is not None:
            request.settimeout(10)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            request.settimeout(None)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.tls_context is not None:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, refused certificates) are expected here, and the
        # default handler would print a traceback to stderr.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _SandboxHTTPServer

    def version_string(self) -> str:
        return "aigateway-sandbox/1"

    def log_message(self, *args: Any) -> None:
        # Silent on purpose: the request line may carry whatever a client put in it.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(method, path)
        else:
            self._api(method, path)

    # The API ----------------------------------------------------------------------------------

    def _api(self, method: str, path: str) -> None:
        state = self.server.state
        started = time.monotonic()
        key = _bearer_key(self.headers.get("Authorization"))
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": None,
            "time": time.time(),
            "duration_ms": None,
            "key_fingerprint": key_fingerprint(key) if key else None,
            "key_label": state.key_label(key),
            "model": None,
            "max_tokens": None,
            "fault": False,
        }
        # Logged on arrival, so a request still held by latency or a hang shows with status null.
        state.record(entry)
        try:
            body = self._read_body()
            state.update(entry, max_tokens=_max_tokens(body))
            latency, hang = state.delays()
            if latency and state.stopping.wait(latency):
                return
            if hang is not None and not state.wait_while_hanging(hang):
                return
            fault = state.take_fault(path)
            if fault is not None:
                state.update(entry, fault=True, status=fault["status"])
                self._send_fault(fault)
                return
            status, payload, model = self._route(method, path, key, body)
            state.update(entry, status=status, model=model)
            self._send_json(status, payload)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            # The client went away; the log still shows the request.
            pass
        finally:
            state.update(entry, duration_ms=int((time.monotonic() - started) * 1000))

    def _route(self, method: str, path: str, key: str | None, body: bytes) -> tuple[int, Any, str | None]:
        state = self.server.state
        if not path.startswith(API_PREFIX + "/"):
            return 404, _unknown_url(method, path), None
        route = path[len(API_PREFIX) :].rstrip("/")
        if not (method == "GET" and (route == "/models" or route.startswith("/models/"))) and not (
            method == "POST" and route == "/chat/completions"
        ):
            return 404, _unknown_url(method, path), None

        key_entry, error = state.authenticate(key)
        if error is not None:
            return error[0], error[1], None
        assert key_entry is not None
        models = state.visible_models(key_entry)

        if method == "GET" and route == "/models":
            return 200, {"object": "list", "data": [_model_object(model) for model in models]}, None
        if method == "GET":
            wanted = route[len("/models/") :]
            for model in models:
                if model["id"] == wanted:
                    return 200, _model_object(model), None
            return 404, _model_not_found(wanted), wanted
        return self._chat_completion(key_entry, models, body)

    def _chat_completion(
        self, key_entry: dict[str, Any], models: list[dict[str, str]], body: bytes
    ) -> tuple[int, Any, str | None]:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return 400, _error_body("We could not parse the JSON body of your request.", "invalid_request_error"), None
        model = request.get("model")
        if not isinstance(model, str) or not model:
            return 400, _error_body("You must provide a model parameter.", "invalid_request_error"), None
        if model in key_entry["refused_models"]:
            message = f"model {model} is not permitted for this key"
            return 403, _error_body(message, "permission_error", "model_not_permitted"), model
        if model not in {m["id"] for m in models}:
            return 404, _model_not_found(model), model

        messages = request.get("messages") if isinstance(request.get("messages"), list) else []
        prompt_tokens = sum(
            len(str(message.get("content", "")).split()) + 3 for message in messages if isinstance(message, dict)
        )
        content = f"Sandbox reply from {model}."
        completion_tokens = len(content.split())
        answer = {
            "id": f"chatcmpl-sandbox-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"},
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, answer, model

    def _send_fault(self, fault: dict[str, Any]) -> None:
        status = fault["status"]
        headers: dict[str, str] = {}
        if fault["retry_after"] is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        if fault["body"] is not None:
            body = fault["body"]
            raw = body if isinstance(body, str) else json.dumps(body)
            default_type = "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
            self._send_raw(status, raw.encode("utf-8"), fault["content_type"] or default_type, headers)
            return
        message = fault["message"] or _default_fault_message(status)
        kind, code = _fault_kind(status)
        self._send_json(status, _error_body(message, kind, code), headers)

    # Control ----------------------------------------------------------------------------------

    def _control(self, method: str, path: str) -> None:
        state = self.server.state
        route = path[len(CONTROL_PREFIX) :].rstrip("/")
        try:
            if route == "/config" and method == "GET":
                self._send_json(200, state.snapshot())
            elif route == "/config" and method == "PUT":
                try:
                    changes = json.loads(self._read_body() or b"{}")
                    self._send_json(200, state.configure(changes))
                except (ValueError, SandboxConfigError) as error:
                    self._send_json(400, {"error": str(error)})
            elif route == "/requests" and method == "GET":
                self._send_json(200, {"requests": state.requests()})
            elif route == "/requests" and method == "DELETE":
                self._send_json(200, {"cleared": state.clear_requests()})
            elif route == "/reset" and method == "POST":
                self._send_json(200, state.reset())
            elif route == "/health" and method == "GET":
                self._send_json(200, {"status": "ok"})
            else:
                self._send_json(404, {"error": f"no sandbox control endpoint {method} {path}"})
        except (BrokenPipeError, ConnectionResetError):
            pass

    # Plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return b""
        return self.rfile.read(min(length, MAX_BODY_BYTES))

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _send_raw(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# Helpers ------------------------------------------------------------------------------------------


def _bearer_key(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _max_tokens(body: bytes) -> int | None:
    try:
        request = json.loads(body) if body else None
    except ValueError:
        return None
    value = request.get("max_tokens") if isinstance(request, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _model_object(model: dict[str, str]) -> dict[str, Any]:
    return {"id": model["id"], "object": "model", "created": MODEL_CREATED, "owned_by": model["owned_by"]}


def _unknown_url(method: str, path: str) -> dict[str, Any]:
    return _error_body(f"Unknown request URL: {method} {path}.", "invalid_request_error", "unknown_url")


def _model_not_found(model: str) -> dict[str, Any]:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return _error_body(message, "invalid_request_error", "model_not_found")


def _default_fault_message(status: int) -> str:
    if status == 401:
        return INVALID_MESSAGE
    if status == 429:
        return "Rate limit reached for requests"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _fault_kind(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 403:
        return "permission_error", None
    if status == 429:
        return "rate_limit_error", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def _model_entry(item: Any) -> dict[str, str]:
    if isinstance(item, str) and item:
        return {"id": item, "owned_by": _owner_of(item)}
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
        owner = item.get("owned_by") or _owner_of(item["id"])
        return {"id": item["id"], "owned_by": str(owner)}
    raise SandboxConfigError("each model must be an id or an object with an 'id'")


def _owner_of(model: str) -> str:
    for prefix, owner in _OWNER_BY_PREFIX:
        if model.startswith(prefix):
            return owner
    return model.split("-", 1)[0] if "-" in model else "sandbox"


def _key_entry(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"key": item}
    if not isinstance(item, dict):
        raise SandboxConfigError("each key must be a string or an object with 'key' or 'sha256'")
    allowed = {"key", "sha256", "fingerprint", "models", "refused_models", "expires_at", "label"}
    unknown = sorted(set(item) - allowed - {"expires_after_requests", "requests_used"})
    if unknown:
        raise SandboxConfigError(f"unknown key settings: {', '.join(unknown)}")
    models = item.get("models")
    if models is not None:
        models = [_model_entry(name)["id"] for name in _as_list(models, "models")]
    refused = [_model_entry(name)["id"] for name in _as_list(item.get("refused_models") or [], "refused_models")]
    expires_at = item.get("expires_at")
    if expires_at is not None:
        expires_at = float(_non_negative(expires_at, "expires_at"))
    limit = item.get("expires_after_requests")
    if limit is not None:
        limit = int(_non_negative(limit, "expires_after_requests"))
    used = int(_non_negative(item.get("requests_used") or 0, "requests_used"))
    label = item.get("label")
    return {
        "sha256": _digest_of(item, "keys"),
        "models": models,
        "refused_models": refused,
        "expires_at": expires_at,
        "expires_after_requests": limit,
        "requests_used": used,
        "label": None if label is None else str(label),
    }


def _digest_of(item: Any, setting: str) -> str:
    if isinstance(item, str) and item:
        return key_sha256(item)
    if isinstance(item, dict):
        if isinstance(item.get("key"), str) and item["key"]:
            return key_sha256(item["key"])
        digest = item.get("sha256")
        if isinstance(digest, str) and _SHA256_HEX.match(digest.lower()):
            return digest.lower()
    raise SandboxConfigError(f"each entry of '{setting}' needs a non-empty 'key' or a 64-digit hex 'sha256'")


def _fault_entry(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise SandboxConfigError("a fault must be an object with a 'status'")
    unknown = sorted(set(item) - {"status", "count", "retry_after", "message", "body", "content_type", "paths"})
    if unknown:
        raise SandboxConfigError(f"unknown fault settings: {', '.join(unknown)}")
    status = item.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise SandboxConfigError("a fault's 'status' must be an HTTP status between 200 and 599")
    count = item.get("count", 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise SandboxConfigError("a fault's 'count' must be a positive integer or null (always)")
    retry_after = item.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, (int, float, str)):
        raise SandboxConfigError("a fault's 'retry_after' must be seconds or an HTTP date")
    body = item.get("body")
    if body is not None and not isinstance(body, (str, dict, list)):
        raise SandboxConfigError("a fault's 'body' must be text or JSON")
    paths = [str(prefix) for prefix in _as_list(item.get("paths") or [], "paths")]
    return {
        "status": status,
        "count": count,
        "retry_after": retry_after,
        "message": None if item.get("message") is None else str(item["message"]),
        "body": body,
        "content_type": item.get("content_type"),
        "paths": paths,
    }


def _as_list(value: Any, setting: str) -> list[Any]:
    if not isinstance(value, list):
        raise SandboxConfigError(f"'{setting}' must be a list")
    return value


def _non_negative(value: Any, setting: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SandboxConfigError(f"'{setting}' must be a non-negative number")
    return value


def _boolean(value: Any, setting: str) -> bool:
    if not isinstance(value, bool):
        raise SandboxConfigError(f"'{setting}' must be true or false")
    return value


# Command line -------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@contextlib.contextmanager
def _files_removed_on_exit(*paths: Path | None) -> Iterator[None]:
    try:
        yield
    finally:
        for path in paths:
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.sandbox",
        description="Run the OpenAI-compatible sandbox API in the foreground until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default: a free one)")
    parser.add_argument("--config", type=Path, help="JSON file with the starting configuration")
    parser.add_argument("--pid-file", type=Path, help="write the process id here")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--tls", action="store_true", default=None, help="serve HTTPS with a self-signed certificate")
    parser.add_argument("--cert-dir", type=Path, help="where to write cert.pem and key.pem (with --tls)")
    options = parser.parse_args(argv)

    config: dict[str, Any] = {}
    if options.config is not None:
        try:
            config = json.loads(options.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"cannot read the configuration {options.config}: {error}")
    try:
        server = SandboxServer(config, host=options.host, port=options.port, tls=options.tls, cert_dir=options.cert_dir)
    except SandboxConfigError as error:
        parser.error(f"invalid configuration in {options.config}: {error}")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    with _files_removed_on_exit(options.pid_file, options.port_file):
        if options.pid_file is not None:
            _write_atomically(options.pid_file, f"{os.getpid()}\n")
        try:
            server.start()
        except OSError as error:
            print(f"sandbox: cannot listen on {server.host}:{options.port}: {error}", file=sys.stderr)
            return 1
        if options.port_file is not None:
            _write_atomically(options.port_file, f"{server.port}\n")
        print(f"sandbox API at {server.base_url} (control: {server.control_url})", flush=True)
        if server.ca_cert_path is not None:
            print(f"sandbox certificate: {server.ca_cert_path}", flush=True)
        try:
            stop.wait()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
