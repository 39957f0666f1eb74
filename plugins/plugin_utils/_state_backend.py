# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to the aigateway.ops collection: nothing here is a public interface,
# and it may change without notice between releases.

"""An environment's Terraform state backend: checked settings, the files that carry them, and lock errors read back.

Secret settings (a password in a PostgreSQL connection string, S3 access keys) are split out of the
backend configuration into files that the PostgreSQL client and the AWS SDK read on their own (a
pgpass file, a shared credentials file). Terraform copies the backend configuration into
``.terraform/terraform.tfstate`` and into every saved plan, so what it receives must hold no secret.
No error message built here contains a setting's value.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

BACKENDS = ("local", "pg", "s3")

PG_KEYS = {"conn_str", "schema_name", "skip_schema_creation", "skip_table_creation", "skip_index_creation"}
PG_BOOL_KEYS = {"skip_schema_creation", "skip_table_creation", "skip_index_creation"}

S3_SECRET_KEYS = ("access_key", "secret_key", "token")
S3_KEYS = {
    "bucket",
    "key",
    "region",
    "endpoints",
    "use_path_style",
    "encrypt",
    "kms_key_id",
    "acl",
    "dynamodb_table",
    "use_lockfile",
    "profile",
    "shared_credentials_files",
    "shared_config_files",
    "assume_role",
    "workspace_key_prefix",
    "skip_credentials_validation",
    "skip_region_validation",
    "skip_requesting_account_id",
    "skip_metadata_api_check",
    "skip_s3_checksum",
    "sts_region",
    "max_retries",
    "insecure",
    "allowed_account_ids",
    "forbidden_account_ids",
    *S3_SECRET_KEYS,
}
S3_PROFILE = "aigateway"

# The pg backend writes schema names into SQL unquoted.
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_KEYWORD = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
_LOCK_FIELD = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*?)\s*$", re.MULTILINE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class BackendConfigError(ValueError):
    """A setting that cannot work; the message names the setting, never its value."""


def merged_config(
    backend: str, config: Mapping[str, Any] | None, credential_file: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The environment's settings over those of the file named by TF_BACKEND_CONFIG_FILE, and any errors.

    AWX's "Terraform backend configuration" credential writes its settings to a file and names it in
    TF_BACKEND_CONFIG_FILE; the inventory's settings, more specific, win over the file's.
    """
    errors: list[str] = []
    settings: dict[str, Any] = {}
    if credential_file and backend != "local":
        try:
            settings.update(parse_backend_file(Path(credential_file).read_text()))
        except OSError as exc:
            errors.append(
                f"cannot read the backend configuration file named by TF_BACKEND_CONFIG_FILE ({credential_file}):"
                f" {exc.strerror}; check the job's Terraform backend configuration credential"
            )
        except BackendConfigError as exc:
            errors.append(f"the backend configuration file named by TF_BACKEND_CONFIG_FILE ({credential_file}) {exc}")
    settings.update(dict(config or {}))
    return settings, errors


def check(backend: str, config: Mapping[str, Any] | None, environment: str, credential_file: str | None) -> list[str]:
    """Every problem with the environment's backend settings, as messages that name the setting and the rule."""
    where = f"environment '{environment}'"
    if backend not in BACKENDS:
        return [f"{where}: gateway_state_backend must be one of {', '.join(BACKENDS)}"]
    if backend == "local":
        if config:
            return [
                f"{where}: gateway_state_backend_config is for the pg and s3 backends; the local backend keeps"
                " its state under gateway_state_dir (remove the settings or choose pg or s3)"
            ]
        return []
    settings, errors = merged_config(backend, config, credential_file)
    try:
        if backend == "pg":
            errors.extend(_check_pg(settings))
        else:
            errors.extend(_check_s3(settings))
    except BackendConfigError as exc:
        errors.append(str(exc))
    return [f"{where}: {error}" for error in errors]


def backend_files(
    backend: str,
    config: Mapping[str, Any] | None,
    environment: str,
    directory: str,
    *,
    credential_file: str | None = None,
    terraform_version: str = "",
) -> dict[str, Any]:
    """The files that carry the environment's backend settings to Terraform, and how to tell the backend.

    Returns ``backend_file`` (HCL for ``-backend-config``, no secret in it), ``pgpass`` and
    ``aws_credentials`` (secret, empty when not needed), ``pg_service`` (where to find the database,
    for psql), ``description`` (safe to print) and ``errors``.
    """
    result: dict[str, Any] = {
        "backend_file": "",
        "pgpass": "",
        "aws_credentials": "",
        "pg_service": "",
        "description": backend,
        "errors": check(backend, config, environment, credential_file),
    }
    if backend == "local" or result["errors"]:
        return result
    settings = merged_config(backend, config, credential_file)[0]
    if backend == "pg":
        result.update(_pg_files(settings, environment))
    else:
        result.update(_s3_files(settings, environment, directory, terraform_version))
    return result


def _unknown_settings(settings: Mapping[str, Any], known: Collection[str], backend: str) -> list[str]:
    """One error per setting the backend does not take, then the ones it does; ``backend`` is e.g. "a pg"."""
    errors = [
        f"gateway_state_backend_config.{key} is not {backend} backend setting"
        for key in sorted(settings)
        if key not in known
    ]
    if errors:
        errors.append(f"the {backend.split()[-1]} backend takes " + ", ".join(sorted(known)))
    return errors


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def _check_pg(settings: Mapping[str, Any]) -> list[str]:
    errors = _unknown_settings(settings, PG_KEYS, "a pg")
    conn_str = settings.get("conn_str")
    if not isinstance(conn_str, str) or not conn_str.strip():
        errors.append(
            "gateway_state_backend_config.conn_str is required for the pg backend: a postgres:// URL or"
            " 'host=... dbname=...' keywords (the password may be part of it; it is kept out of Terraform's files)"
        )
    else:
        connection = parse_conn_str(conn_str)[0]
        if connection.get("sslmode", "require") not in ("disable", "require", "verify-ca", "verify-full"):
            errors.append(
                "gateway_state_backend_config.conn_str: Terraform's PostgreSQL client takes sslmode disable,"
                " require (its default), verify-ca or verify-full"
            )
    schema = settings.get("schema_name")
    if schema is not None and (not isinstance(schema, str) or not _SCHEMA.match(schema)):
        errors.append(
            "gateway_state_backend_config.schema_name must be lowercase letters, digits and '_', starting with a"
            " letter or '_', at most 63 characters"
        )
    errors.extend(
        f"gateway_state_backend_config.{key} must be true or false"
        for key in sorted(PG_BOOL_KEYS & settings.keys())
        if not isinstance(settings[key], bool)
    )
    return errors


def parse_conn_str(conn_str: str) -> tuple[dict[str, str], str | None, str]:
    """(settings without the password, the password, the form): a postgres:// URL or libpq keywords."""
    text = conn_str.strip()
    if text.startswith(("postgres://", "postgresql://")):
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise BackendConfigError(
                "gateway_state_backend_config.conn_str is not a valid postgres:// URL (check the host and port)"
            ) from exc
        settings = dict(parse_qsl(parts.query))
        if parts.hostname:
            settings["host"] = parts.hostname
        if port:
            settings["port"] = str(port)
        if parts.username:
            settings["user"] = unquote(parts.username)
        if parts.path.strip("/"):
            settings["dbname"] = unquote(parts.path.lstrip("/"))
        password = unquote(parts.password) if parts.password is not None else settings.pop("password", None)
        return settings, password, "url"
    if "://" in text or not _PG_KEYWORD.search(text):
        raise BackendConfigError(
            "gateway_state_backend_config.conn_str must be a postgres:// URL or libpq keywords such as"
            " 'host=db.example port=5432 dbname=tfstate user=terraform'"
        )
    settings = {key: _unquote_keyword(value) for key, value in _PG_KEYWORD.findall(text)}
    password = settings.pop("password", None)
    return settings, password, "keywords"


def _pg_files(settings: Mapping[str, Any], environment: str) -> dict[str, Any]:
    connection, password = parse_conn_str(settings["conn_str"])[:2]
    # Named in pg_stat_activity, so whoever holds the state lock can be found.
    connection.setdefault("application_name", f"terraform {environment} {who()}"[:63])
    backend = {
        "conn_str": _conn_url(connection),
        "schema_name": settings.get("schema_name") or default_schema(environment),
        **{key: settings[key] for key in sorted(PG_BOOL_KEYS & settings.keys())},
    }
    service = {key: connection[key] for key in ("host", "port", "dbname", "user", "sslmode") if key in connection}
    return {
        "backend_file": render_backend_file(backend),
        # One line that matches any server: the file serves this run's Terraform only.
        "pgpass": f"*:*:*:*:{_pgpass_escape(password)}\n" if password else "",
        "pg_service": "[gateway]\n" + "".join(f"{key}={value}\n" for key, value in service.items()),
        "schema": backend["schema_name"],
        "description": f"pg, schema {backend['schema_name']} on {_where(connection)}",
    }


def default_schema(environment: str) -> str:
    """One schema per environment, so environments sharing a database never share a state row."""
    return "gateway_" + environment.replace("-", "_")


def _conn_url(connection: Mapping[str, str]) -> str:
    query = {key: value for key, value in connection.items() if key not in ("host", "port", "user", "dbname")}
    netloc = quote(connection.get("user", ""), safe="") + "@" if connection.get("user") else ""
    host = connection.get("host", "")
    if host.startswith("/"):
        query["host"] = host
        host = ""
    netloc += host + (f":{connection['port']}" if connection.get("port") else "")
    return urlunsplit(("postgres", netloc, "/" + quote(connection.get("dbname", ""), safe=""), urlencode(query), ""))


def _unquote_keyword(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _where(connection: Mapping[str, str]) -> str:
    host = connection.get("host") or "localhost"
    port = connection.get("port") or "5432"
    return f"{host}:{port}/{connection.get('dbname', '')}"


# --- S3 --------------------------------------------------------------------------------------------------------


def _check_s3(settings: Mapping[str, Any]) -> list[str]:
    errors = _unknown_settings(settings, S3_KEYS, "an s3")
    for key in ("bucket", "region"):
        if not isinstance(settings.get(key), str) or not settings[key].strip():
            errors.append(f"gateway_state_backend_config.{key} is required for the s3 backend")
    has_keys = [key for key in ("access_key", "secret_key") if settings.get(key)]
    if len(has_keys) == 1:
        errors.append("gateway_state_backend_config.access_key and secret_key go together: set both or neither")
    if settings.get("token") and not has_keys:
        errors.append("gateway_state_backend_config.token needs access_key and secret_key")
    if has_keys and (settings.get("profile") or settings.get("shared_credentials_files")):
        errors.append(
            "gateway_state_backend_config: set either access_key and secret_key, or profile /"
            " shared_credentials_files, not both"
        )
    for key in ("endpoints", "assume_role"):
        if key in settings and not isinstance(settings[key], Mapping):
            errors.append(f"gateway_state_backend_config.{key} must be a mapping")
    return errors


def _s3_files(settings: Mapping[str, Any], environment: str, directory: str, terraform_version: str) -> dict[str, Any]:
    backend = {key: value for key, value in settings.items() if key not in S3_SECRET_KEYS}
    backend.setdefault("key", f"aigateway/{environment}/terraform.tfstate")
    errors: list[str] = []
    if not backend.get("use_lockfile") and not backend.get("dynamodb_table"):
        if _version_at_least(terraform_version, (1, 10)):
            backend["use_lockfile"] = True
        else:
            errors.append(
                f"environment '{environment}': the s3 backend locks state only with use_lockfile (Terraform or"
                " OpenTofu 1.10 and later) or dynamodb_table: set gateway_state_backend_config.dynamodb_table"
            )
    credentials = ""
    if settings.get("access_key"):
        credentials = f"[{S3_PROFILE}]\naws_access_key_id = {settings['access_key']}\n"
        credentials += f"aws_secret_access_key = {settings['secret_key']}\n"
        if settings.get("token"):
            credentials += f"aws_session_token = {settings['token']}\n"
        backend["profile"] = S3_PROFILE
        backend["shared_credentials_files"] = [f"{directory}/aws-credentials"]
    return {
        "backend_file": render_backend_file(backend),
        "aws_credentials": credentials,
        "description": f"s3, s3://{backend['bucket']}/{backend['key']}",
        "errors": errors,
    }


def _version_at_least(version: str, minimum: tuple[int, ...]) -> bool:
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    return bool(numbers) and numbers >= minimum


# --- Backend configuration files (HCL attributes) ---------------------------------------------------------------


def render_backend_file(settings: Mapping[str, Any]) -> str:
    """``name = value`` lines, the syntax of ``-backend-config=<file>`` (.tfbackend)."""
    return "".join(f"{key} = {_hcl(value)}\n" for key, value in sorted(settings.items()))


def _hcl(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{key if _IDENTIFIER.match(str(key)) else json.dumps(str(key))} = {_hcl(item)}"
            for key, item in value.items()
        )
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    raise BackendConfigError(f"holds a value of type {type(value).__name__}, which a backend setting cannot take")


def parse_backend_file(text: str) -> dict[str, Any]:
    """Read ``name = value`` lines (strings, numbers, booleans, lists, one-level maps) as AWX writes them."""
    settings: dict[str, Any] = {}
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith(("#", "//"))):
            continue
        if not pending:
            start = number
        pending += line + "\n"
        if _balanced(pending):
            key, value = _parse_assignment(pending, start)
            settings[key] = value
            pending = ""
    if pending:
        raise BackendConfigError(f"has an unterminated value starting on line {start}")
    return settings


def _balanced(text: str) -> bool:
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return depth <= 0 and not in_string


def _parse_assignment(text: str, line: int) -> tuple[str, Any]:
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.*)\Z", text, re.DOTALL)
    if not match:
        raise BackendConfigError(f"line {line} is not 'name = value'")
    value, rest = _parse_value(match[2].strip(), line)
    if rest.strip():
        raise BackendConfigError(f"line {line} has more after the value of {match[1]}")
    return match[1], value


def _parse_value(text: str, line: int) -> tuple[Any, str]:
    text = text.lstrip()
    if text.startswith('"'):
        match = re.match(r'"((?:[^"\\]|\\.)*)"', text, re.DOTALL)
        if not match:
            raise BackendConfigError(f"line {line} has an unterminated string")
        return json.loads(match[0].replace("$${", "${").replace("%%{", "%{")), text[match.end() :]
    if text.startswith("["):
        items: list[Any] = []
        text = text[1:].lstrip()
        while not text.startswith("]"):
            item, text = _parse_value(text, line)
            items.append(item)
            text = text.lstrip().removeprefix(",").lstrip()
            if not text:
                raise BackendConfigError(f"line {line} has an unterminated list")
        return items, text[1:]
    if text.startswith("{"):
        mapping: dict[str, Any] = {}
        text = text[1:].lstrip()
        while not text.startswith("}"):
            match = re.match(r'("(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_-]*)\s*[=:]\s*', text)
            if not match:
                raise BackendConfigError(f"line {line} has a map entry that is not 'name = value'")
            key = json.loads(match[1]) if match[1].startswith('"') else match[1]
            mapping[key], text = _parse_value(text[match.end() :], line)
            text = text.lstrip().removeprefix(",").lstrip()
            if not text:
                raise BackendConfigError(f"line {line} has an unterminated map")
        return mapping, text[1:]
    match = re.match(r"(true|false|-?\d+(?:\.\d+)?)(?![\w.])", text)
    if not match:
        raise BackendConfigError(f"line {line} has a value that is not a string, number, boolean, list or map")
    word = match[1]
    value: Any = word == "true" if word in ("true", "false") else (float(word) if "." in word else int(word))
    return value, text[match.end() :]


# --- Locks ----------------------------------------------------------------------------------------------------


def who() -> str:
    """user@host of this controller, as Terraform names a lock holder."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def lock_error(text: str) -> dict[str, Any]:
    """What Terraform said about a state lock it could not take: ``locked`` and the Lock Info fields."""
    if "Error acquiring the state lock" not in (text or ""):
        return {"locked": False}
    info_text = text.split("Lock Info:", 1)[1] if "Lock Info:" in text else ""
    fields = {name.lower(): value for name, value in _LOCK_FIELD.findall(info_text)}
    message = re.search(r"Error message:\s*(.+)", text)
    return {
        "locked": True,
        "id": fields.get("id", ""),
        "who": fields.get("who", ""),
        "operation": fields.get("operation", "").removeprefix("OperationType").lower(),
        "created": fields.get("created", ""),
        "path": fields.get("path", ""),
        "reason": message[1].strip() if message else "",
    }
