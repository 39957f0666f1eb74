# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to the aigateway.ops collection: nothing here is a public interface,
# and it may change without notice between releases.

"""Vault / OpenBao KV access shared by the ``vault_kv`` lookup and the ``vault_kv`` module.

What lives here:

- turning plugin options and the standard ``VAULT_*`` environment into plain, typed settings;
- one authenticated client per connection and login identity per process, with login tokens
  revoked when the process ends (see :func:`_register_revocation` for how, in Ansible's workers);
- KV v1/v2 reads (cached per process) and idempotent writes, with the engine version detected from
  the mount when it is not given;
- bounded retries with exponential backoff, and errors that say what to fix without ever carrying
  a secret value, a token or a credential.
"""

from __future__ import annotations

import copy
import hashlib
import multiprocessing.util
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

try:
    import hvac
    import hvac.adapters
    import hvac.exceptions
    import requests
    import requests.exceptions
except ImportError as import_error:  # reported by the plugins with the install hint
    HVAC_IMPORT_ERROR: ImportError | None = import_error
    _AdapterBase: Any = object
else:
    HVAC_IMPORT_ERROR = None
    _AdapterBase = hvac.adapters.JSONAdapter

T = TypeVar("T")
Warn = Callable[[str], None]

AUTH_METHODS = ("token", "approle", "userpass", "jwt", "kubernetes")
RETURN_FORMATS = ("value", "data", "version", "metadata", "full")
DEFAULT_KUBERNETES_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path
DEFAULT_MOUNT = "secret"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_MAX_SECONDS = 30.0
DEFAULT_LOGIN_TOKEN_TTL = 900
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
REVOKE_TIMEOUT = 5.0
RENEW_MARGIN_SECONDS = 10.0
HIDDEN = "(hidden)"
HIDDEN_CHANGED = "(hidden, changed)"
HIDDEN_ADDED = "(hidden, added)"

# Standard Vault client environment variables, per setting.
ENVIRONMENT = {
    "url": "VAULT_ADDR",
    "token": "VAULT_TOKEN",
    "role_id": "VAULT_ROLE_ID",
    "secret_id": "VAULT_SECRET_ID",
    "namespace": "VAULT_NAMESPACE",
    "ca_cert": "VAULT_CACERT",
    "client_cert": "VAULT_CLIENT_CERT",
    "client_key": "VAULT_CLIENT_KEY",
}
SKIP_VERIFY_VARIABLE = "VAULT_SKIP_VERIFY"
SECRET_OPTIONS = frozenset({"token", "secret_id", "password", "jwt"})

# Every option the lookup and the module share, with its type; the plugin documentation follows this.
CONNECTION_OPTIONS: dict[str, str] = {
    "url": "str",
    "namespace": "str",
    "auth_method": "str",
    "auth_mount_point": "str",
    "auth_namespace": "str",
    "token": "str",
    "role_id": "str",
    "secret_id": "str",
    "username": "str",
    "password": "str",
    "jwt": "str",
    "jwt_file": "path",
    "role": "str",
    "kubernetes_token_path": "path",
    "login_token_ttl": "int",
    "ca_cert": "path",
    "client_cert": "path",
    "client_key": "path",
    "validate_certs": "bool",
    "timeout": "float",
    "retries": "int",
    "retry_max_seconds": "float",
    "mount": "str",
    "kv_version": "int",
}

_RETRY_STATUSES = frozenset({412, 429})
_WRITE_RETRY_STATUSES = frozenset({412, 429, 503})


class VaultError(Exception):
    """A Vault operation that failed; the message names the operation, the URL or path and the fix.

    ``kind`` is one of: config, unreachable, tls, sealed, forbidden, not_found, login, field, conflict, server.
    """

    def __init__(self, message: str, kind: str = "server", *, attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.attempts = attempts


# -- plain values ---------------------------------------------------------------------------------
#
# ansible-core 2.19 hands plugins tagged str/int subclasses; hvac, requests and urllib3 must only
# ever see built-in types, so every option goes through one of these.


def plain_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str.__str__(value) if isinstance(value, str) else str(value)
    text = "".join(text)  # a built-in str whatever str subclass came in
    return text


def plain_int(value: Any, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise VaultError(f"option {name} must be an integer, not a boolean", "config")
    try:
        return int(str(value).strip())
    except ValueError:
        raise VaultError(f"option {name} must be an integer", "config") from None


def plain_float(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        raise VaultError(f"option {name} must be a number", "config") from None


def plain_bool(value: Any, name: str) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f"):
        return False
    raise VaultError(f"option {name} must be a boolean", "config")


def plain_data(value: Any) -> Any:
    """A deep copy of JSON-like data made of built-in types only."""
    if isinstance(value, Mapping):
        return {plain_text(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return plain_text(value)


def _sha256(*parts: str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(b"\x00" if part is None else b"\x01" + part.encode())
    return digest.hexdigest()


# -- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where Vault is and how to talk to it."""

    url: str
    namespace: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    validate_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS

    @property
    def verify(self) -> bool | str:
        if not self.validate_certs:
            return False
        return self.ca_cert or True

    @property
    def cert(self) -> tuple[str, str] | str | None:
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert

    def transport_key(self) -> tuple[Any, ...]:
        return (self.url, self.ca_cert, self.client_cert, self.client_key, self.validate_certs)

    def api_url(self, api_path: str) -> str:
        return f"{self.url}/v1/{api_path}"


@dataclass(frozen=True)
class Login:
    """How to authenticate. Credentials never appear in repr(); cache keys use their digest."""

    method: str
    mount_point: str | None = None
    namespace: str | None = None
    role: str | None = None
    username: str | None = None
    role_id: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    secret_id: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    jwt: str | None = field(default=None, repr=False)
    token_ttl: int = DEFAULT_LOGIN_TOKEN_TTL
    source: str = "option"

    @property
    def mount(self) -> str:
        return (self.mount_point or self.method).strip("/")

    def identity(self) -> tuple[Any, ...]:
        return (
            self.method,
            self.mount if self.method != "token" else None,
            self.namespace,
            self.role,
            self.username,
            _sha256(self.role_id, self.token, self.secret_id, self.password, self.jwt),
        )

    def secrets(self) -> list[str]:
        return [value for value in (self.token, self.secret_id, self.password, self.jwt, self.role_id) if value]


def settings_from_options(
    options: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    home: str | None = None,
) -> tuple[Connection, Login]:
    """Settings from plugin options, falling back to the standard environment and ``~/.vault-token``.

    An option that is set wins over its environment variable. The login method, when not given, is
    ``token`` for a token from the option or ``VAULT_TOKEN``, else ``approle`` when a role_id and a
    secret_id are known, else ``token`` from ``~/.vault-token``.
    """
    environ = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        value = plain_text(options.get(name))
        if value is not None and value.strip() == "":
            value = None
        if value is None and name in ENVIRONMENT:
            value = plain_text(environ.get(ENVIRONMENT[name])) or None
        return value

    url = text("url")
    if not url:
        raise VaultError(
            "no Vault address: set the url option or VAULT_ADDR (for example https://vault.example.com:8200)", "config"
        )
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise VaultError(f"Vault address {url!r} must start with http:// or https://", "config")

    validate_certs = plain_bool(options.get("validate_certs"), "validate_certs")
    if validate_certs is None:
        skip = plain_bool(environ.get(SKIP_VERIFY_VARIABLE) or None, SKIP_VERIFY_VARIABLE)
        validate_certs = not skip if skip is not None else True
    client_cert, client_key = text("client_cert"), text("client_key")
    if client_key and not client_cert:
        raise VaultError("client_key is set without client_cert (VAULT_CLIENT_CERT)", "config")

    timeout = plain_float(options.get("timeout"), "timeout")
    retries = plain_int(options.get("retries"), "retries")
    retry_max_seconds = plain_float(options.get("retry_max_seconds"), "retry_max_seconds")
    if retries is not None and retries < 0:
        raise VaultError("option retries must be 0 or more", "config")
    namespace = (text("namespace") or "").strip("/") or None

    connection = Connection(
        url=url,
        namespace=namespace,
        ca_cert=text("ca_cert"),
        client_cert=client_cert,
        client_key=client_key,
        validate_certs=validate_certs,
        timeout=DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout,
        retries=DEFAULT_RETRIES if retries is None else retries,
        retry_max_seconds=DEFAULT_RETRY_MAX_SECONDS if retry_max_seconds is None else max(0.0, retry_max_seconds),
    )
    return connection, _login_from_options(options, text, namespace, home)


def _login_from_options(
    options: Mapping[str, Any], text: Callable[[str], str | None], namespace: str | None, home: str | None
) -> Login:
    method = (text("auth_method") or "").strip().lower() or None
    if method is not None and method not in AUTH_METHODS:
        raise VaultError(f"auth_method {method!r} is not supported; use one of: {', '.join(AUTH_METHODS)}", "config")

    token, role_id, secret_id = text("token"), text("role_id"), text("secret_id")
    source = "option or VAULT_TOKEN"
    if method is None:
        if token:
            method = "token"
        elif role_id and secret_id:
            method = "approle"
        else:
            token = _read_token_file(home)
            if not token:
                raise VaultError(
                    "no Vault credentials: set a token (option token, VAULT_TOKEN or ~/.vault-token), or role_id and "
                    "secret_id (VAULT_ROLE_ID, VAULT_SECRET_ID), or choose an auth_method (userpass, jwt, kubernetes)",
                    "config",
                )
            method, source = "token", "~/.vault-token"
    elif method == "token" and not token:
        token, source = _read_token_file(home), "~/.vault-token"

    # auth_namespace "/" names the root namespace, for a login there while the secret lives in a child.
    auth_namespace_option = text("auth_namespace")
    login_namespace = namespace if auth_namespace_option is None else auth_namespace_option.strip().strip("/") or None
    login_ttl = plain_int(options.get("login_token_ttl"), "login_token_ttl")
    common: dict[str, Any] = {
        "method": method,
        "mount_point": text("auth_mount_point"),
        "namespace": login_namespace,
        "token_ttl": DEFAULT_LOGIN_TOKEN_TTL if login_ttl is None else max(0, login_ttl),
    }

    if method == "token":
        if not token:
            raise VaultError(
                "auth_method token needs a token: set the token option, VAULT_TOKEN or ~/.vault-token", "config"
            )
        return Login(token=token.strip(), source=source, **common)
    if method == "approle":
        if not role_id:
            raise VaultError("auth_method approle needs role_id (option role_id or VAULT_ROLE_ID)", "config")
        return Login(role_id=role_id, secret_id=secret_id, **common)
    if method == "userpass":
        username, password = text("username"), text("password")
        if not username or not password:
            raise VaultError("auth_method userpass needs username and password", "config")
        return Login(username=username, password=password, **common)

    role = text("role")
    if not role:
        raise VaultError(f"auth_method {method} needs the role option (the {method} auth role to log in as)", "config")
    if method == "jwt":
        jwt, jwt_file = text("jwt"), text("jwt_file")
        if not jwt and jwt_file:
            jwt = _read_credential_file(jwt_file, "jwt_file")
        if not jwt:
            raise VaultError("auth_method jwt needs jwt or jwt_file", "config")
        return Login(role=role, jwt=jwt, **common)

    token_path = text("kubernetes_token_path") or DEFAULT_KUBERNETES_TOKEN_PATH
    return Login(role=role, jwt=_read_credential_file(token_path, "kubernetes_token_path"), **common)


def _read_token_file(home: str | None) -> str | None:
    path = os.path.join(home or os.path.expanduser("~"), ".vault-token")
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read().strip() or None
    except FileNotFoundError:
        return None
    except OSError as error:
        raise VaultError(f"cannot read the token file {path}: {error.strerror}", "config") from None


def _read_credential_file(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            content = stream.read().strip()
    except OSError as error:
        raise VaultError(f"cannot read {option} {path}: {error.strerror}; check the path", "config") from None
    if not content:
        raise VaultError(f"{option} {path} is empty", "config")
    return content


# -- HTTP with retries ------------------------------------------------------------------------------


class _StatusAdapter(_AdapterBase):  # type: ignore[misc,valid-type]
    """hvac's JSON adapter, but every error it raises carries the HTTP status code."""

    def _raise_for_error(self, method: str, url: str, response: Any) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hvac.exceptions.VaultError as error:
            error.status_code = response.status_code  # type: ignore[attr-defined]
            raise


@dataclass
class _Operation:
    """What a request is for, so that a failure can be explained."""

    action: str  # read, write, login, detect, lookup
    method: str
    api_path: str
    mount: str | None = None
    path: str | None = None
    kv_version: int | None = None
    version: int | None = None
    login: Login | None = None
    namespace: str | None = None
    capability: str = "read"
    retry_statuses: frozenset[int] = _RETRY_STATUSES
    retry_read_timeouts: bool = True


def _status(error: BaseException) -> int | None:
    return getattr(error, "status_code", None)


def _server_errors(error: BaseException, secrets: list[str]) -> str:
    """Vault's own error strings, shortened, with any credential we sent cut out."""
    errors = getattr(error, "errors", None)
    text = "; ".join(str(item) for item in errors) if errors else (getattr(error, "args", [""]) or [""])[0] or ""
    text = " ".join(str(text).split())
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text[:300]


def _connection_reason(error: BaseException) -> str:
    text = str(error)
    lowered = text.lower()
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    for marker, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("connection reset", "connection reset"),
        ("remotedisconnected", "connection closed by the server"),
        ("connection aborted", "connection closed by the server"),
    ):
        if marker in lowered:
            return reason
    return type(error).__name__


def _is_retriable(error: BaseException, operation: _Operation) -> bool:
    if isinstance(error, requests.exceptions.SSLError):
        return False
    if isinstance(error, requests.exceptions.ReadTimeout):
        return operation.retry_read_timeouts
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    status = _status(error)
    if status is None:
        return False
    if status in operation.retry_statuses:
        return True
    return operation.retry_statuses is _RETRY_STATUSES and 500 <= status <= 599


def _describe_failure(error: BaseException) -> str:
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return _connection_reason(error)
    status = _status(error)
    if status == 503 and "sealed" in str(getattr(error, "errors", "") or error).lower():
        return "HTTP 503, sealed"
    return f"HTTP {status}" if status else type(error).__name__


def _call(connection: Connection, client: Any, operation: _Operation, request: Callable[[], T], warn: Warn) -> T:
    """Run one request, retrying what may succeed later, within ``retry_max_seconds`` overall."""
    started = time.monotonic()
    attempts = connection.retries + 1
    attempt = 0
    while True:
        attempt += 1
        remaining = connection.retry_max_seconds - (time.monotonic() - started)
        client.adapter._kwargs["timeout"] = (
            max(1.0, min(connection.timeout, remaining)) if attempt > 1 else (connection.timeout)
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning would land on stderr
                return request()
        except (requests.exceptions.RequestException, hvac.exceptions.VaultError) as error:
            if not _is_retriable(error, operation) or attempt >= attempts:
                raise _explain(connection, operation, error, attempt, client) from None
            delay = min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)
            remaining = connection.retry_max_seconds - (time.monotonic() - started)
            if remaining <= 0:
                raise _explain(connection, operation, error, attempt, client) from None
            delay = min(delay, remaining)
            purpose = (
                f" (KV version of mount '{operation.mount}', for secret '{operation.mount}/{operation.path}')"
                if operation.action == "detect" and operation.path
                else ""
            )
            warn(
                f"Vault {operation.method} {connection.api_url(operation.api_path)}{purpose} failed "
                f"({_describe_failure(error)}): attempt {attempt} of {attempts}, retrying in {delay:.1f}s"
            )
            time.sleep(delay)


def _namespace_note(namespace: str | None) -> str:
    return f" in namespace '{namespace}'" if namespace else ""


def _explain(
    connection: Connection, operation: _Operation, error: BaseException, attempts: int, client: Any
) -> VaultError:
    """Turn a failed request into an error message that points to the fix."""
    url = connection.url
    after = f" (after {attempts} attempts)" if attempts > 1 else ""
    secrets = operation.login.secrets() if operation.login else []

    if isinstance(error, requests.exceptions.SSLError):
        return VaultError(
            f"TLS error talking to Vault at {url}: {_tls_reason(error)}; check ca_cert (VAULT_CACERT) and, if the "
            "server requires one, client_cert/client_key (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY); validate_certs=false "
            "skips verification for a test server",
            "tls",
            attempts=attempts,
        )
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return VaultError(
            f"cannot reach Vault at {url}: {_connection_reason(error)}{after}; check VAULT_ADDR (or the url option) "
            "and that the server is running",
            "unreachable",
            attempts=attempts,
        )

    status = _status(error)
    reason = _server_errors(error, secrets)
    where = f"{connection.api_url(operation.api_path)}{_namespace_note(operation.namespace)}"
    if status == 503 and "sealed" in reason.lower():
        return VaultError(
            f"Vault at {url} is sealed{after}; unseal it (bao operator unseal / vault operator unseal) and run again",
            "sealed",
            attempts=attempts,
        )
    if operation.action == "login" and status in (400, 401, 403):
        if operation.login is None:
            raise AssertionError("a login operation carries its login")
        # A bare 403 is also what Vault and OpenBao answer when no auth method is mounted at that path.
        mount_hint = (
            f"; or no auth method is mounted at 'auth/{operation.login.mount}' in that namespace: check "
            "auth_mount_point and auth_namespace"
            if status == 403
            else ""
        )
        return VaultError(
            f"{operation.login.method} login rejected by Vault at {url} (auth mount '{operation.login.mount}'"
            f"{_namespace_note(operation.namespace)}): {reason or 'permission denied'}; "
            f"{_login_hint(operation.login)}{mount_hint}",
            "login",
            attempts=attempts,
        )
    if operation.action == "login" and status in (404, 405):
        if operation.login is None:
            raise AssertionError("a login operation carries its login")
        return VaultError(
            f"no {operation.login.method} auth method answers at {where}: {reason}; check auth_mount_point "
            f"(now '{operation.login.mount}') and auth_namespace",
            "login",
            attempts=attempts,
        )
    if status == 403:
        if operation.login is not None and operation.login.method == "token" and not _token_is_valid(client):
            return VaultError(
                f"Vault at {url} rejected the token from {operation.login.source} (invalid or expired) while trying "
                f"to {operation.action} {operation.api_path}; get a fresh token",
                "login",
                attempts=attempts,
            )
        return VaultError(_forbidden_message(connection, operation), "forbidden", attempts=attempts)
    if status == 404 and operation.action in ("read", "write"):
        return VaultError(_not_found_message(connection, operation, error), "not_found", attempts=attempts)
    if status in (400, 404) and operation.action == "detect":
        return VaultError(
            f"no secrets engine is mounted at '{operation.mount}/'{_namespace_note(operation.namespace)} on Vault at "
            f"{url}; check the mount option (the KV mount, default 'secret') and the namespace",
            "not_found",
            attempts=attempts,
        )
    if status == 400 and operation.action == "write" and "check-and-set" in reason.lower():
        return VaultError(
            f"the secret {operation.mount}/{operation.path} changed while it was being written (check-and-set "
            "mismatch); run again to write on top of the new version",
            "conflict",
            attempts=attempts,
        )
    return VaultError(
        f"Vault {operation.action} failed: {operation.method} {where} answered HTTP {status}{after}: {reason}",
        "server",
        attempts=attempts,
    )


def _tls_reason(error: BaseException) -> str:
    text = str(error)
    for marker in (
        "certificate verify failed",
        "certificate required",
        "wrong version number",
        "hostname mismatch",
        "unknown ca",
        "bad certificate",
        "handshake failure",
    ):
        if marker in text.lower():
            return marker
    return "handshake failed"


def _login_hint(login: Login) -> str:
    return {
        "approle": "check role_id and secret_id (VAULT_ROLE_ID, VAULT_SECRET_ID): the secret_id may have expired or "
        "been used up",
        "userpass": "check username and password",
        "jwt": "check that the JWT is current and that its issuer, audience and subject match auth role "
        f"'{login.role}'",
        "kubernetes": f"check that the service account token is current and bound to kubernetes auth role "
        f"'{login.role}' (bound_service_account_names/namespaces)",
        "token": "check the token",
    }[login.method]


def _token_is_valid(client: Any) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.adapter.get("/v1/auth/token/lookup-self")
    except hvac.exceptions.Forbidden:
        return False
    except Exception:  # noqa: BLE001, S110 - only a hint; the original error is what gets reported
        pass
    return True


def _forbidden_message(connection: Connection, operation: _Operation) -> str:
    subject = f"{operation.mount}/{operation.path}" if operation.path is not None else operation.api_path
    who = f" (login: {operation.login.method})" if operation.login else ""
    if operation.action == "detect":
        # Vault and OpenBao answer 403 both for a mount that does not exist and for one the token may not see.
        return (
            f"cannot read the mount settings of '{operation.mount}/' at {connection.url}"
            f"{_namespace_note(operation.namespace)}{who}: either no secrets engine is mounted there (check the "
            f"mount option, default 'secret', and the namespace) or the token has no policy on a path under "
            f"'{operation.mount}/' (grant one, or set kv_version to 1 or 2 to skip this check)"
        )
    return (
        f"permission denied: cannot {operation.action} secret '{subject}' at {connection.url}"
        f"{_namespace_note(operation.namespace)}{who}; the token's policy needs the '{operation.capability}' "
        f'capability on path "{operation.api_path}"'
        + (" (KV v2 puts data/ after the mount)" if operation.kv_version == 2 else "")
    )


def _not_found_message(connection: Connection, operation: _Operation, error: BaseException) -> str:
    path = operation.path or ""
    kv = f"KV v{operation.kv_version}"
    base = (
        f"secret not found: mount '{operation.mount}', path '{path}' ({kv}, API path {operation.api_path}) at "
        f"{connection.url}{_namespace_note(operation.namespace)}"
    )
    metadata = ((getattr(error, "json", None) or {}).get("data") or {}).get("metadata") or {}
    if operation.kv_version == 2 and metadata.get("destroyed"):
        return f"{base}: version {metadata.get('version')} was destroyed; pin another version"
    if operation.kv_version == 2 and metadata.get("deletion_time"):
        return (
            f"{base}: version {metadata.get('version')} was deleted at {metadata['deletion_time']}; undelete it "
            "(kv undelete) or pin another version"
        )
    if operation.kv_version == 2 and (path.startswith("data/") or path.startswith(f"{operation.mount}/data/")):
        fixed = path.split("data/", 1)[1]
        return f"{base}: for KV v2 give the path without 'data/' (the API path adds it): path '{fixed}'"
    if path.startswith(f"{operation.mount}/"):
        return f"{base}: the path should not start with the mount name: path '{path[len(operation.mount) + 1 :]}'"
    if operation.version is not None:
        return f"{base}: version {operation.version} does not exist; check the version option"
    return f"{base}: check mount, path and namespace"


# -- sessions: one authenticated client per connection and login identity ------------------------


class _Session:
    """An authenticated client. A token this process obtained by login is revoked when it ends."""

    def __init__(self, connection: Connection, login: Login) -> None:
        self.connection = connection
        self.login = login
        self.owner_pid = os.getpid()
        self.owned = login.method != "token"
        self.expires_at: float | None = None
        self.login_client: Any = None
        self.client = self._client(login.token if login.method == "token" else "", connection.namespace)

    def _client(self, token: str | None, namespace: str | None) -> Any:
        connection = self.connection
        return hvac.Client(
            url=connection.url,
            token=token or "",
            cert=connection.cert,
            verify=connection.verify,
            timeout=connection.timeout,
            namespace=namespace,
            adapter=_StatusAdapter,
        )

    def ensure(self, warn: Warn) -> None:
        if not self.owned:
            return
        if self.expires_at is not None and time.monotonic() < self.expires_at - RENEW_MARGIN_SECONDS:
            return
        if self.login_client is not None:
            self.revoke()
        self._log_in(warn)

    def _log_in(self, warn: Warn) -> None:
        login = self.login
        payload: dict[str, Any] = {
            "approle": lambda: {
                "role_id": login.role_id,
                **({"secret_id": login.secret_id} if login.secret_id else {}),
            },
            "userpass": lambda: {"password": login.password},
            "jwt": lambda: {"role": login.role, "jwt": login.jwt},
            "kubernetes": lambda: {"role": login.role, "jwt": login.jwt},
        }[login.method]()
        api_path = f"auth/{login.mount}/login" + (f"/{login.username}" if login.method == "userpass" else "")
        self.login_client = self._client("", login.namespace)
        operation = _Operation("login", "POST", api_path, login=login, namespace=login.namespace)
        answer = _call(
            self.connection,
            self.login_client,
            operation,
            lambda: self.login_client.adapter.post(f"/v1/{api_path}", json=payload),
            warn,
        )
        auth = (answer or {}).get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise VaultError(
                f"{login.method} login at {self.connection.api_url(api_path)} returned no token; check the auth role",
                "login",
            )
        self.login_client.token = token
        self.client.token = token
        lease = int(auth.get("lease_duration") or 0)
        if login.token_ttl and auth.get("renewable") and (lease == 0 or lease > login.token_ttl):
            lease = self._shorten(login.token_ttl, lease)
        self.expires_at = time.monotonic() + lease if lease else None
        _register_revocation()

    def _shorten(self, ttl: int, lease: int) -> int:
        """Ask for a shorter TTL, so the token dies soon even if revoking it never happens."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                answer = self.login_client.adapter.post("/v1/auth/token/renew-self", json={"increment": f"{ttl}s"})
            return int(((answer or {}).get("auth") or {}).get("lease_duration") or lease)
        except Exception:  # noqa: BLE001 - the role may forbid renewal; its own TTL then applies
            return lease

    def revoke(self) -> None:
        client, self.login_client = self.login_client, None
        self.expires_at = None
        if client is None or not self.owned or os.getpid() != self.owner_pid:
            return
        client.adapter._kwargs["timeout"] = REVOKE_TIMEOUT
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                client.adapter.post("/v1/auth/token/revoke-self")
        except Exception:  # noqa: BLE001, S110 - best effort at exit; the short TTL bounds the token's life
            pass


_lock = threading.RLock()
_sessions: dict[tuple[Any, ...], _Session] = {}
_reads: dict[tuple[Any, ...], Secret] = {}
_kv_versions: dict[tuple[Any, ...], int] = {}
_revocation_pid: int | None = None


def _register_revocation() -> None:
    """Revoke this process's login tokens when it exits.

    Ansible runs each task of each host in a forked worker process that ends through ``os._exit``,
    so ``atexit`` handlers never run there. multiprocessing's own finalizers do: a forked
    ``multiprocessing.Process`` runs ``multiprocessing.util._exit_function`` after its ``run()``
    returns, and a normal Python process runs it from ``atexit``. The registry is emptied in a
    forked child, hence the registration per process id; sessions inherited from a parent belong
    to the parent and are left alone.
    """
    global _revocation_pid
    with _lock:
        if _revocation_pid == os.getpid():
            return
        _revocation_pid = os.getpid()
        multiprocessing.util.Finalize(None, revoke_login_tokens, exitpriority=50)


def revoke_login_tokens() -> int:
    """Revoke every token this process obtained by login; returns how many it revoked."""
    with _lock:
        mine = [s for s in _sessions.values() if s.owned and s.login_client is not None and s.owner_pid == os.getpid()]
        for key in [k for k, s in _sessions.items() if s in mine]:
            del _sessions[key]
        _reads.clear()
    for session in mine:
        session.revoke()
    return len(mine)


def clear_caches() -> None:
    """Forget cached clients and reads (revoking login tokens first)."""
    revoke_login_tokens()
    with _lock:
        _sessions.clear()
        _reads.clear()
        _kv_versions.clear()


def forget_inherited_state() -> None:
    """In a freshly forked process: drop the parent's clients and reads without revoking its tokens.

    The lock is replaced too, since another thread of the parent may have held it at the fork.
    """
    global _lock, _revocation_pid
    _lock = threading.RLock()
    _sessions.clear()
    _reads.clear()
    _kv_versions.clear()
    _revocation_pid = None


def _session(connection: Connection, login: Login, warn: Warn) -> tuple[tuple[Any, ...], _Session]:
    key = (connection.transport_key(), connection.namespace, login.identity())
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = _Session(connection, login)
        session.connection = connection  # the latest timeouts and retry budget apply
    session.ensure(warn)
    return key, session


# -- KV -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    """One version of a KV secret. ``data`` holds the values: never put it in a message."""

    mount: str
    path: str
    kv_version: int
    data: dict[str, Any] = field(repr=False)
    version: int | None = None
    created_time: str | None = None
    deletion_time: str | None = None
    destroyed: bool = False

    @property
    def fields(self) -> list[str]:
        return sorted(self.data)

    def field(self, name: str) -> Any:
        if name not in self.data:
            present = ", ".join(self.fields) if self.data else "none (the secret is empty)"
            pinned = f" version {self.version}" if self.version is not None else ""
            raise VaultError(
                f"field '{name}' not found in secret '{self.mount}/{self.path}'{pinned}; fields present: {present}",
                "field",
            )
        return copy.deepcopy(self.data[name])

    def metadata(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_time": self.created_time,
            "deletion_time": self.deletion_time or None,
            "destroyed": self.destroyed,
        }

    def shaped(self, return_format: str, field_name: str | None) -> Any:
        """What the lookup returns for ``return_format``."""
        if return_format == "value":
            return self.field(field_name) if field_name else copy.deepcopy(self.data)
        if return_format == "data":
            return copy.deepcopy(self.data)
        if return_format == "version":
            return self.version
        if return_format == "metadata":
            return self.metadata()
        if return_format == "full":
            return {
                "value": self.field(field_name) if field_name else copy.deepcopy(self.data),
                "version": self.version,
                "created_time": self.created_time,
                "fields": self.fields,
            }
        raise VaultError(f"return_format must be one of {', '.join(RETURN_FORMATS)}, not {return_format!r}", "config")


def normalise_path(path: Any, name: str = "path") -> str:
    text = (plain_text(path) or "").strip().strip("/")
    if not text:
        raise VaultError(f"the secret {name} is empty", "config")
    return text


def kv_version(
    connection: Connection,
    login: Login,
    mount: str,
    *,
    warn: Warn,
    session: _Session | None = None,
    path: str | None = None,
) -> int:
    """The KV version of ``mount``, read from sys/internal/ui/mounts (no sudo needed), cached."""
    key, session = _session(connection, login, warn) if session is None else (None, session)
    cache_key = (connection.transport_key(), connection.namespace, login.identity(), mount)
    with _lock:
        if cache_key in _kv_versions:
            return _kv_versions[cache_key]
    api_path = f"sys/internal/ui/mounts/{mount}"
    # The path is only there to name, in a retry warning, the secret the check is for.
    operation = _Operation(
        "detect", "GET", api_path, mount=mount, path=path, login=login, namespace=connection.namespace
    )
    answer = _call(connection, session.client, operation, lambda: session.client.adapter.get(f"/v1/{api_path}"), warn)
    data = (answer or {}).get("data") or {}
    engine = data.get("type")
    if engine not in ("kv", "generic"):
        raise VaultError(
            f"mount '{mount}/' at {connection.url}{_namespace_note(connection.namespace)} is a '{engine}' secrets "
            "engine, not KV; check the mount option",
            "config",
        )
    mount_path = (data.get("path") or f"{mount}/").strip("/")
    if mount_path and mount_path != mount:
        raise VaultError(
            f"'{mount}' is not a mount point but a path inside mount '{mount_path}/'; set mount to '{mount_path}' "
            f"and put the rest in the path",
            "config",
        )
    version = 2 if str((data.get("options") or {}).get("version") or "1") == "2" else 1
    with _lock:
        _kv_versions[cache_key] = version
    return version


def read_secret(
    connection: Connection,
    login: Login,
    path: str,
    *,
    mount: str = DEFAULT_MOUNT,
    version: int | None = None,
    kv: int | None = None,
    warn: Warn,
    use_cache: bool = True,
) -> Secret:
    """Read one secret (one version of it, for KV v2), once per process per connection and login."""
    mount = normalise_path(mount, "mount")
    path = normalise_path(path)
    if kv not in (None, 1, 2):
        raise VaultError("kv_version must be 1 or 2", "config")
    key, session = _session(connection, login, warn)
    kv = kv or kv_version(connection, login, mount, warn=warn, session=session, path=path)
    if version is not None and kv == 1:
        raise VaultError(f"mount '{mount}' is KV v1, which has no versions; drop the version option", "config")
    read_key = (key, mount, path, version, kv)
    with _lock:
        cached = _reads.get(read_key)
    if cached is not None and use_cache:
        return cached

    api_path = f"{mount}/data/{path}" if kv == 2 else f"{mount}/{path}"
    params = {"version": version} if version is not None else None
    operation = _Operation(
        "read", "GET", api_path, mount, path, kv, version, login=login, namespace=connection.namespace
    )
    answer = _call(
        connection,
        session.client,
        operation,
        lambda: session.client.adapter.get(f"/v1/{api_path}", params=params),
        warn,
    )
    body = (answer or {}).get("data") or {}
    if kv == 2:
        metadata = body.get("metadata") or {}
        if body.get("data") is None:
            raise _explain(connection, operation, _DeletedVersion(body), 1, session.client)
        secret = Secret(
            mount=mount,
            path=path,
            kv_version=2,
            data=plain_data(body.get("data") or {}),
            version=int(metadata["version"]) if metadata.get("version") is not None else None,
            created_time=metadata.get("created_time"),
            deletion_time=metadata.get("deletion_time") or None,
            destroyed=bool(metadata.get("destroyed")),
        )
    else:
        secret = Secret(mount=mount, path=path, kv_version=1, data=plain_data(body))
    with _lock:
        _reads[read_key] = secret
    return secret


class _DeletedVersion(Exception):
    """A KV v2 answer whose version was deleted or destroyed: reported like a 404 with its metadata."""

    status_code = 404

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("deleted")
        self.json = {"data": body}
        self.errors: list[str] = []


@dataclass(frozen=True)
class WriteResult:
    changed: bool
    mount: str
    path: str
    kv_version: int
    version: int | None
    previous_version: int | None
    fields: list[str]
    diff: dict[str, dict[str, str]]


def write_secret(
    connection: Connection,
    login: Login,
    path: str,
    data: Mapping[str, Any],
    *,
    mount: str = DEFAULT_MOUNT,
    merge: bool = False,
    kv: int | None = None,
    check_mode: bool = False,
    warn: Warn,
) -> WriteResult:
    """Write ``data`` as the secret's new content (or merged into it), only when that changes something.

    KV v2 writes use check-and-set on the version that was read, so a concurrent writer is detected
    instead of overwritten. The diff shows field names only; every value is masked.
    """
    mount = normalise_path(mount, "mount")
    path = normalise_path(path)
    desired_input = plain_data(dict(data))
    key, session = _session(connection, login, warn)
    kv = kv or kv_version(connection, login, mount, warn=warn, session=session, path=path)

    current, current_version = _read_current(connection, login, session, mount, path, kv, warn)
    before = current.data if current is not None else {}
    desired = {**before, **desired_input} if merge else desired_input
    diff = {
        "before": {name: HIDDEN for name in sorted(before)},
        "after": {
            name: HIDDEN
            if name in before and before[name] == value
            else HIDDEN_ADDED
            if name not in before
            else HIDDEN_CHANGED
            for name, value in sorted(desired.items())
        },
    }
    if current is not None and before == desired:
        return WriteResult(False, mount, path, kv, current_version, current_version, sorted(desired), diff)
    if check_mode:
        planned = (current_version or 0) + 1 if kv == 2 else None
        return WriteResult(True, mount, path, kv, planned, current_version, sorted(desired), diff)

    api_path = f"{mount}/data/{path}" if kv == 2 else f"{mount}/{path}"
    body: dict[str, Any] = {"data": desired, "options": {"cas": current_version or 0}} if kv == 2 else desired
    capability = "update" if current is not None else "create"
    operation = _Operation(
        "write",
        "POST",
        api_path,
        mount,
        path,
        kv,
        login=login,
        namespace=connection.namespace,
        capability=capability,
        retry_statuses=_WRITE_RETRY_STATUSES,
        retry_read_timeouts=False,  # the write may have landed; a retry would add a version
    )
    answer = _call(
        connection, session.client, operation, lambda: session.client.adapter.post(f"/v1/{api_path}", json=body), warn
    )
    with _lock:
        for read_key in [k for k in _reads if k[0] == key and k[1] == mount and k[2] == path]:
            del _reads[read_key]
    new_version = int(((answer or {}).get("data") or {}).get("version") or 0) or None if kv == 2 else None
    return WriteResult(True, mount, path, kv, new_version, current_version, sorted(desired), diff)


def _read_current(
    connection: Connection, login: Login, session: _Session, mount: str, path: str, kv: int, warn: Warn
) -> tuple[Secret | None, int | None]:
    """The latest version before a write, and its number (that of a deleted latest version, too)."""
    try:
        secret = read_secret(connection, login, path, mount=mount, kv=kv, warn=warn, use_cache=False)
    except VaultError as error:
        if error.kind == "forbidden":
            api_path = f"{mount}/data/{path}" if kv == 2 else f"{mount}/{path}"
            raise VaultError(
                f"permission denied: cannot write secret '{mount}/{path}' at {connection.url}"
                f"{_namespace_note(connection.namespace)} (login: {login.method}): a write reads the current version "
                f"first, to change nothing when it already holds the data, so the token's policy needs the 'read', "
                f"'create' and 'update' capabilities on path \"{api_path}\"",
                "forbidden",
                attempts=error.attempts,
            ) from None
        if error.kind != "not_found":
            raise
        if kv == 1:
            return None, None
        return None, _latest_version_number(connection, session, mount, path)
    return secret, secret.version


def _latest_version_number(connection: Connection, session: _Session, mount: str, path: str) -> int | None:
    """A KV v2 path whose latest version is deleted still has a version number, which check-and-set needs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session.client.adapter.get(f"/v1/{mount}/data/{path}")
    except hvac.exceptions.VaultError as error:
        metadata = (((getattr(error, "json", None) or {}).get("data")) or {}).get("metadata") or {}
        return int(metadata["version"]) if metadata.get("version") else None
    except requests.exceptions.RequestException:
        return None
    return None
