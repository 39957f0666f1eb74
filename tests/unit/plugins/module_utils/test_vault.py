"""The Vault engine's settings: options, the standard VAULT_* environment and ~/.vault-token, and their messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

_COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.aigateway.ops.plugins.module_utils import _vault  # noqa: E402

URL = "http://127.0.0.1:8200"
TOKEN = "s.token-canary-0d9c1e"  # noqa: S105 - test data
SECRET_ID = "secret-id-canary-77a1"  # noqa: S105 - test data
PASSWORD = "password-canary-4b2e"  # noqa: S105 - test data


def settings(options: dict[str, Any], environ: dict[str, str] | None = None, home: Path | None = None):
    return _vault.settings_from_options(options, environ or {}, str(home) if home else "/nonexistent-home")


def failure(options: dict[str, Any], environ: dict[str, str] | None = None, home: Path | None = None) -> str:
    with pytest.raises(_vault.VaultError) as raised:
        settings(options, environ, home)
    message = raised.value.message
    for secret in (TOKEN, SECRET_ID, PASSWORD):
        assert secret not in message
    return message


def test_address_comes_from_the_option_before_vault_addr() -> None:
    connection, _ = settings({"url": URL + "/", "token": TOKEN}, {"VAULT_ADDR": "http://other:8200"})
    assert connection.url == URL

    connection, _ = settings({"token": TOKEN}, {"VAULT_ADDR": "https://vault.example.com:8200"})
    assert connection.url == "https://vault.example.com:8200"


def test_missing_or_malformed_address_says_how_to_set_it() -> None:
    assert "set the url option or VAULT_ADDR" in failure({"token": TOKEN})
    assert "must start with http:// or https://" in failure({"url": "vault:8200", "token": TOKEN})


def test_token_precedence_option_then_environment_then_token_file(tmp_path: Path) -> None:
    (tmp_path / ".vault-token").write_text("s.from-file\n")

    _, login = settings({"url": URL, "token": TOKEN}, {"VAULT_TOKEN": "s.from-env"}, tmp_path)
    assert (login.method, login.token) == ("token", TOKEN)

    _, login = settings({"url": URL}, {"VAULT_TOKEN": "s.from-env"}, tmp_path)
    assert (login.method, login.token, login.source) == ("token", "s.from-env", "option or VAULT_TOKEN")

    _, login = settings({"url": URL}, {}, tmp_path)
    assert (login.method, login.token, login.source) == ("token", "s.from-file", "~/.vault-token")


def test_role_id_and_secret_id_choose_approle(tmp_path: Path) -> None:
    environ = {"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": SECRET_ID}
    _, login = settings({"url": URL}, environ, tmp_path)
    assert (login.method, login.mount, login.role_id, login.secret_id) == ("approle", "approle", "role-1", SECRET_ID)

    _, login = settings({"url": URL, "auth_mount_point": "/ci-approle/"}, environ, tmp_path)
    assert login.mount == "ci-approle"


def test_no_credentials_lists_every_way_to_give_them(tmp_path: Path) -> None:
    message = failure({"url": URL}, {}, tmp_path)
    assert "VAULT_TOKEN" in message and "~/.vault-token" in message and "VAULT_ROLE_ID" in message


def test_each_method_names_what_it_is_missing(tmp_path: Path) -> None:
    assert "needs role_id" in failure({"url": URL, "auth_method": "approle"})
    assert "needs username and password" in failure({"url": URL, "auth_method": "userpass", "username": "alice"})
    assert "needs the role option" in failure({"url": URL, "auth_method": "jwt", "jwt": "x.y.z"})
    assert "needs jwt or jwt_file" in failure({"url": URL, "auth_method": "jwt", "role": "deployer"})
    missing = tmp_path / "no-token"
    message = failure({"url": URL, "auth_method": "kubernetes", "role": "awx", "kubernetes_token_path": str(missing)})
    assert f"cannot read kubernetes_token_path {missing}" in message
    assert "is not supported; use one of: token, approle" in failure({"url": URL, "auth_method": "ldap"})


def test_jwt_and_kubernetes_tokens_are_read_from_their_files(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text("header.payload.signature\n")
    _, login = settings({"url": URL, "auth_method": "jwt", "role": "ci", "jwt_file": str(tmp_path / "jwt")})
    assert (login.method, login.role, login.jwt) == ("jwt", "ci", "header.payload.signature")

    _, login = settings(
        {"url": URL, "auth_method": "kubernetes", "role": "awx", "kubernetes_token_path": str(tmp_path / "jwt")}
    )
    assert (login.method, login.mount, login.jwt) == ("kubernetes", "kubernetes", "header.payload.signature")

    (tmp_path / "empty").write_text("\n")
    assert "is empty" in failure({"url": URL, "auth_method": "jwt", "role": "ci", "jwt_file": str(tmp_path / "empty")})


def test_login_namespace_defaults_to_the_secret_namespace_and_slash_means_root() -> None:
    options = {"url": URL, "auth_method": "userpass", "username": "alice", "password": PASSWORD}
    connection, login = settings(options, {"VAULT_NAMESPACE": "/team/app/"})
    assert (connection.namespace, login.namespace) == ("team/app", "team/app")

    connection, login = settings({**options, "auth_namespace": "team"}, {"VAULT_NAMESPACE": "team/app"})
    assert (connection.namespace, login.namespace) == ("team/app", "team")

    connection, login = settings({**options, "auth_namespace": "/", "namespace": "team"})
    assert (connection.namespace, login.namespace) == ("team", None)


def test_tls_settings_from_options_and_environment() -> None:
    environ = {"VAULT_CACERT": "/etc/ca.pem", "VAULT_CLIENT_CERT": "/etc/c.pem", "VAULT_CLIENT_KEY": "/etc/k.pem"}
    connection, _ = settings({"url": URL, "token": TOKEN}, environ)
    assert connection.verify == "/etc/ca.pem"
    assert connection.cert == ("/etc/c.pem", "/etc/k.pem")

    connection, _ = settings({"url": URL, "token": TOKEN}, {"VAULT_SKIP_VERIFY": "true", **environ})
    assert connection.verify is False
    connection, _ = settings({"url": URL, "token": TOKEN, "validate_certs": True}, {"VAULT_SKIP_VERIFY": "1"})
    assert connection.verify is True

    assert "client_key is set without client_cert" in failure({"url": URL, "token": TOKEN, "client_key": "/k.pem"})


def test_numbers_are_checked_and_defaulted() -> None:
    connection, login = settings({"url": URL, "token": TOKEN})
    assert (connection.timeout, connection.retries, connection.retry_max_seconds) == (30.0, 3, 30.0)
    assert login.token_ttl == 900
    assert "retries must be 0 or more" in failure({"url": URL, "token": TOKEN, "retries": -1})
    assert "timeout must be a number" in failure({"url": URL, "token": TOKEN, "timeout": "soon"})


def test_credentials_never_show_in_repr_and_cache_keys_hold_only_a_digest() -> None:
    _, login = settings({"url": URL, "auth_method": "userpass", "username": "alice", "password": PASSWORD})
    assert PASSWORD not in repr(login)
    assert PASSWORD not in repr(login.identity())
    _, other = settings({"url": URL, "auth_method": "userpass", "username": "alice", "password": PASSWORD + "x"})
    assert login.identity() != other.identity()


def test_tagged_strings_become_plain_str() -> None:
    class Tagged(str):
        pass

    value = _vault.plain_text(Tagged("secret"))
    assert type(value) is str and value == "secret"
    assert type(_vault.plain_data({Tagged("k"): [Tagged("v")]})["k"][0]) is str
