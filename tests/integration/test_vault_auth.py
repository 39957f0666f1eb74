"""Every auth method of the vault_kv lookup, in real ``ansible`` runs against a real OpenBao.

Each run is a fresh ansible process with a clean environment, so a login is a real login and the
run's cache agent revokes the token it obtained when the run ends (checked in the audit log).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.openbao import OpenBao
from tests.support.vault_lookup import lookup

pytestmark = pytest.mark.slow

KEY = "sk-auth-test-3c9e71d2a4b8"


@pytest.fixture
def stored(openbao: OpenBao, vault_prefix: str) -> str:
    """A secret and a policy named after the test's prefix that may read it."""
    openbao.kv2_put(f"{vault_prefix}/prod", {"api_key": KEY})
    openbao.read_policy(vault_prefix, {f"secret/data/{vault_prefix}/*": ["read"]})
    return f"{vault_prefix}/prod"


def login_token_revoked(openbao: OpenBao, since: int, login_path: str) -> bool:
    """The token the login at ``login_path`` returned is the one a later revoke-self used (audit HMACs)."""
    logins = [
        entry
        for entry in openbao.audit_entries()[since:]
        if entry.get("type") == "response" and entry["request"]["path"] == login_path and entry.get("auth")
    ]
    assert len(logins) == 1, f"expected one login at {login_path}, found {len(logins)}"
    issued = logins[0]["auth"]["client_token"]
    for _ in range(100):
        revokes = openbao.audit_requests(since=since, path="auth/token/revoke-self")
        if any(entry["request"].get("client_token") == issued for entry in revokes):
            return True
        time.sleep(0.1)
    return False


def read(tmp_path: Path, openbao: OpenBao, path: str, *, env: dict[str, str] | None = None, **options: Any) -> Any:
    run = lookup(tmp_path / "home", path, env={"VAULT_ADDR": openbao.url, **(env or {})}, field="api_key", **options)
    assert KEY not in run.stderr
    return run


# -- token -------------------------------------------------------------------------------------


def test_token_from_the_option_from_vault_token_and_from_the_token_file(
    tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str
) -> None:
    token = openbao.client().auth.token.create(policies=[vault_prefix], ttl="10m")["auth"]["client_token"]

    assert read(tmp_path, openbao, stored, token=token).value == KEY
    assert read(tmp_path, openbao, stored, env={"VAULT_TOKEN": token}).value == KEY

    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / ".vault-token").write_text(token + "\n")
    assert read(tmp_path, openbao, stored).value == KEY

    # The option wins over VAULT_TOKEN, which wins over ~/.vault-token.
    assert read(tmp_path, openbao, stored, token=token, env={"VAULT_TOKEN": "s.wrong"}).value == KEY
    failed = read(tmp_path, openbao, stored, env={"VAULT_TOKEN": "s.wrong"}, kv_version=2)
    assert "rejected the token from option or VAULT_TOKEN" in failed.error

    # A token given to the plugin is the user's: never revoked.
    assert openbao.client(token=token).auth.token.lookup_self()["data"]["id"] == token


# -- approle, userpass ---------------------------------------------------------------------------


def test_approle_from_the_awx_style_environment(tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str):
    role_id, secret_id = openbao.approle(vault_prefix, [vault_prefix])
    mark = openbao.audit_mark()

    run = read(tmp_path, openbao, stored, env={"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id})
    assert run.value == KEY
    assert secret_id not in run.output
    assert login_token_revoked(openbao, mark, "auth/approle/login")


def test_approle_on_another_mount_path(tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str) -> None:
    mount = f"{vault_prefix}-ci"
    role_id, secret_id = openbao.approle("deployer", [vault_prefix], mount=mount)
    mark = openbao.audit_mark()

    run = read(
        tmp_path, openbao, stored, auth_method="approle", auth_mount_point=mount, role_id=role_id, secret_id=secret_id
    )
    assert run.value == KEY
    assert login_token_revoked(openbao, mark, f"auth/{mount}/login")


def test_userpass(tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str) -> None:
    password = f"{vault_prefix}-correct-horse"
    openbao.userpass(vault_prefix, password, [vault_prefix])
    mark = openbao.audit_mark()

    run = read(tmp_path, openbao, stored, auth_method="userpass", username=vault_prefix, password=password)
    assert run.value == KEY
    assert login_token_revoked(openbao, mark, f"auth/userpass/login/{vault_prefix}")


# -- jwt, kubernetes -------------------------------------------------------------------------------


def test_jwt_signed_by_a_key_the_test_generated(tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str):
    token = openbao.jwt_auth(vault_prefix, [vault_prefix], subject="pipeline")
    jwt_file = tmp_path / "id_token"
    jwt_file.write_text(token)
    mark = openbao.audit_mark()

    run = read(tmp_path, openbao, stored, auth_method="jwt", role=vault_prefix, jwt_file=str(jwt_file))
    assert run.value == KEY
    assert token not in run.output
    assert login_token_revoked(openbao, mark, "auth/jwt/login")

    # A JWT for another subject is refused, with the role named in the hint.
    other = openbao.sign_jwt({"iss": "https://ci.aigateway.test", "aud": "openbao", "sub": "someone-else"})
    jwt_file.write_text(other)
    failed = read(tmp_path, openbao, stored, auth_method="jwt", role=vault_prefix, jwt_file=str(jwt_file))
    assert "jwt login rejected by Vault" in failed.error
    assert f"issuer, audience and subject match auth role '{vault_prefix}'" in failed.error
    assert other not in failed.output


def test_kubernetes_service_account_token_reviewed_by_a_local_tokenreview_server(
    tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str
) -> None:
    token = openbao.kubernetes_auth(vault_prefix, [vault_prefix], service_account="awx", service_namespace="automation")
    token_path = tmp_path / "serviceaccount" / "token"
    token_path.parent.mkdir()
    token_path.write_text(token)
    mark = openbao.audit_mark()

    run = read(
        tmp_path, openbao, stored, auth_method="kubernetes", role=vault_prefix, kubernetes_token_path=str(token_path)
    )
    assert run.value == KEY
    assert token not in run.output
    assert login_token_revoked(openbao, mark, "auth/kubernetes/login")

    # A service account the role is not bound to is refused.
    openbao.kubernetes_auth(f"{vault_prefix}-other", [vault_prefix], service_account="someone-else")
    failed = read(
        tmp_path, openbao, stored, auth_method="kubernetes", role=f"{vault_prefix}-other",
        kubernetes_token_path=str(token_path),
    )  # fmt: skip
    assert "kubernetes login rejected by Vault" in failed.error
    assert f"bound to kubernetes auth role '{vault_prefix}-other'" in failed.error


def test_kubernetes_auth_needs_a_tokenreview_api_even_with_pem_keys(
    tmp_path: Path, openbao: OpenBao, stored: str, vault_prefix: str
) -> None:
    """OpenBao checks the signature with pem_keys and still asks the TokenReview API: none, no login."""
    mount = f"{vault_prefix}-k8s"
    token = openbao.kubernetes_auth(vault_prefix, [vault_prefix], mount=mount)
    client = openbao.client()
    config = client.read(f"auth/{mount}/config")["data"]
    client.write_data(
        f"auth/{mount}/config",
        data={
            "kubernetes_host": "http://127.0.0.1:9",  # nothing listens there
            "kubernetes_ca_cert": config["kubernetes_ca_cert"],
            "pem_keys": config["pem_keys"],
            "disable_local_ca_jwt": True,
        },
    )
    token_path = tmp_path / "token"
    token_path.write_text(token)

    failed = read(
        tmp_path, openbao, stored, auth_method="kubernetes", auth_mount_point=mount, role=vault_prefix,
        kubernetes_token_path=str(token_path),
    )  # fmt: skip
    assert f"kubernetes login rejected by Vault at {openbao.url} (auth mount '{mount}')" in failed.error
    assert token not in failed.output


# -- namespaces --------------------------------------------------------------------------------


def test_secret_in_a_child_namespace_login_in_its_parent(tmp_path: Path, openbao: OpenBao, vault_prefix: str) -> None:
    team, app = vault_prefix, "app"
    openbao.create_namespace(team)
    openbao.create_namespace(app, parent=team)
    openbao.enable_kv("secret", 2, namespace=f"{team}/{app}")
    openbao.kv2_put("gateway/prod", {"api_key": KEY}, namespace=f"{team}/{app}")
    # The policy lives in the login namespace and names the child's paths relative to it.
    openbao.read_policy(
        "reader",
        {f"{app}/secret/data/gateway/*": ["read"], f"{app}/sys/internal/ui/mounts/*": ["read"]},
        namespace=team,
    )
    openbao.userpass("alice", "ns-password", ["reader"], namespace=team)
    credentials = {"auth_method": "userpass", "username": "alice", "password": "ns-password"}
    mark = openbao.audit_mark()

    run = read(
        tmp_path, openbao, "gateway/prod", env={"VAULT_NAMESPACE": f"{team}/{app}"}, auth_namespace=team, **credentials
    )
    assert run.value == KEY
    assert login_token_revoked(openbao, mark, "auth/userpass/login/alice")
    namespaces = {
        entry["request"]["path"]: entry["request"]["namespace"]["path"]
        for entry in openbao.audit_requests(since=mark)
        if entry["request"]["path"] in ("auth/userpass/login/alice", "secret/data/gateway/prod")
    }
    assert namespaces == {"auth/userpass/login/alice": f"{team}/", "secret/data/gateway/prod": f"{team}/{app}/"}

    # Without auth_namespace the login goes to the secret's namespace, where alice does not exist.
    failed = read(tmp_path, openbao, "gateway/prod", namespace=f"{team}/{app}", **credentials)
    assert f"userpass login rejected by Vault at {openbao.url} (auth mount 'userpass' in namespace '{team}/{app}')" in (
        failed.error
    )


def test_token_and_secret_in_the_same_namespace(tmp_path: Path, openbao: OpenBao, vault_prefix: str) -> None:
    openbao.create_namespace(vault_prefix)
    openbao.enable_kv("kv", 1, namespace=vault_prefix)
    openbao.kv1_put("gateway/prod", {"api_key": KEY}, mount="kv", namespace=vault_prefix)
    role_id, secret_id = openbao.approle("ci", ["root-reader"], namespace=vault_prefix)
    openbao.read_policy("root-reader", {"kv/*": ["read"], "sys/internal/ui/mounts/*": ["read"]}, namespace=vault_prefix)

    run = read(
        tmp_path, openbao, "gateway/prod", mount="kv", return_format="full",
        env={"VAULT_NAMESPACE": vault_prefix, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
    )  # fmt: skip
    assert run.value == {"value": KEY, "version": None, "created_time": None, "fields": ["api_key"]}
