"""The vault_kv lookup, in-process, against a real OpenBao: return formats, KV versions, TLS and error messages.

These calls set run_cache=false (through AIGATEWAY_VAULT_RUN_CACHE) so that each test sees its own
requests; the run-wide cache is tested at the end of this file and in tests/integration.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleLookupError

_COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.aigateway.ops.plugins.doc_fragments import vault_connection  # noqa: E402
from ansible_collections.aigateway.ops.plugins.lookup import vault_kv  # noqa: E402
from ansible_collections.aigateway.ops.plugins.module_utils import _vault  # noqa: E402
from ansible_collections.aigateway.ops.plugins.plugin_utils import _vault_run_cache  # noqa: E402

from tests.support.openbao import OpenBao  # noqa: E402

CANARY = "sk-canary-lookup-unit-6f1e2d9a"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIGATEWAY_VAULT_RUN_CACHE", "false")
    _vault.clear_caches()


def run_lookup(*terms: str, **options: Any) -> list[Any]:
    definitions = {
        **yaml.safe_load(vault_connection.ModuleDocFragment.DOCUMENTATION)["options"],
        **yaml.safe_load(vault_kv.DOCUMENTATION)["options"],
    }
    C.config.initialize_plugin_configuration_definitions("lookup", "aigateway.ops.vault_kv", definitions)
    plugin = vault_kv.LookupModule()
    plugin._load_name = "aigateway.ops.vault_kv"
    return plugin.run(list(terms), variables={}, **options)


def lookup_error(*terms: str, **options: Any) -> str:
    with pytest.raises(AnsibleLookupError) as raised:
        run_lookup(*terms, **options)
    message = str(raised.value)
    assert CANARY not in message
    return message


@pytest.fixture
def secret(openbao: OpenBao, vault_prefix: str) -> str:
    openbao.kv2_put(f"{vault_prefix}/prod", {"api_key": CANARY + "-v1", "org": "platform"})
    openbao.kv2_put(f"{vault_prefix}/prod", {"api_key": CANARY, "org": "platform"})
    return f"{vault_prefix}/prod"


@pytest.fixture
def root(openbao: OpenBao) -> dict[str, str]:
    return {"url": openbao.url, "token": openbao.root_token}


# -- return formats, versions, KV v1 -----------------------------------------------------------------


def test_value_field_data_version_metadata_and_full(secret: str, root: dict[str, str]) -> None:
    assert run_lookup(secret, field="api_key", **root) == [CANARY]
    assert run_lookup(secret, **root) == [{"api_key": CANARY, "org": "platform"}]
    assert run_lookup(secret, return_format="data", field="org", **root) == [{"api_key": CANARY, "org": "platform"}]
    assert run_lookup(secret, return_format="version", **root) == [2]

    [metadata] = run_lookup(secret, return_format="metadata", **root)
    assert metadata["version"] == 2 and metadata["created_time"] and metadata["destroyed"] is False
    assert CANARY not in str(metadata)

    [full] = run_lookup(secret, field="api_key", return_format="full", **root)
    assert full["value"] == CANARY and full["version"] == 2 and full["fields"] == ["api_key", "org"]
    assert full["created_time"] == metadata["created_time"]


def test_version_pins_an_earlier_kv2_version(secret: str, root: dict[str, str]) -> None:
    assert run_lookup(secret, field="api_key", version=1, **root) == [CANARY + "-v1"]
    assert run_lookup(secret, field="api_key", version="2", **root) == [CANARY]
    message = lookup_error(secret, field="api_key", version=9, **root)
    assert "version 9 does not exist; check the version option" in message


def test_several_terms_give_one_item_each(openbao: OpenBao, vault_prefix: str, root: dict[str, str]) -> None:
    openbao.kv2_put(f"{vault_prefix}/a", {"api_key": "one"})
    openbao.kv2_put(f"{vault_prefix}/b", {"api_key": "two"})
    assert run_lookup(f"{vault_prefix}/a", f"/{vault_prefix}/b/", field="api_key", **root) == ["one", "two"]


def test_kv1_is_detected_from_the_mount(openbao: OpenBao, vault_prefix: str, root: dict[str, str]) -> None:
    openbao.enable_kv("kv1", version=1)
    openbao.kv1_put(f"{vault_prefix}/prod", {"api_key": CANARY}, mount="kv1")

    assert run_lookup(f"{vault_prefix}/prod", mount="kv1", field="api_key", **root) == [CANARY]
    assert run_lookup(f"{vault_prefix}/prod", mount="kv1", return_format="version", **root) == [None]
    assert "is KV v1, which has no versions" in lookup_error(f"{vault_prefix}/prod", mount="kv1", version=1, **root)
    # Forcing the wrong version shows the API path that was tried.
    message = lookup_error(f"{vault_prefix}/prod", mount="kv1", kv_version=2, **root)
    assert f"API path kv1/data/{vault_prefix}/prod" in message


# -- errors: what to fix, never a value ---------------------------------------------------------


def test_missing_field_lists_the_field_names_only(secret: str, root: dict[str, str]) -> None:
    message = lookup_error(secret, field="apikey", **root)
    assert f"field 'apikey' not found in secret 'secret/{secret}'" in message
    assert "fields present: api_key, org" in message
    assert "platform" not in message


def test_not_found_explains_the_data_prefix_and_the_mount(secret: str, root: dict[str, str]) -> None:
    message = lookup_error(f"data/{secret}", **root)
    assert "secret not found: mount 'secret'" in message and "KV v2" in message
    assert f"give the path without 'data/' (the API path adds it): path '{secret}'" in message

    message = lookup_error(f"secret/{secret}", **root)
    assert f"should not start with the mount name: path '{secret}'" in message

    message = lookup_error(secret, mount="nothing", **root)
    assert "cannot read the mount settings of 'nothing/'" in message and "no secrets engine is mounted" in message


def test_forbidden_names_the_path_and_the_capability(openbao: OpenBao, secret: str, vault_prefix: str) -> None:
    openbao.read_policy(f"{vault_prefix}-other", {f"secret/data/{vault_prefix}/other": ["read"]})
    token = openbao.client().auth.token.create(policies=[f"{vault_prefix}-other"], ttl="10m")["auth"]["client_token"]
    message = lookup_error(secret, url=openbao.url, token=token, kv_version=2)
    assert f"permission denied: cannot read secret 'secret/{secret}'" in message
    assert f"'read' capability on path \"secret/data/{secret}\"" in message
    assert token not in message


def test_bad_token_and_bad_login_say_which_credentials(openbao: OpenBao, secret: str, vault_prefix: str) -> None:
    bad_token = "s.not-a-real-token-canary"  # noqa: S105 - test data
    message = lookup_error(secret, url=openbao.url, token=bad_token, kv_version=2)
    assert "rejected the token from option or VAULT_TOKEN (invalid or expired)" in message
    assert bad_token not in message

    openbao.userpass(f"{vault_prefix}-u", "right-password", ["default"])
    wrong = "wrong-password-canary"
    message = lookup_error(
        secret, url=openbao.url, auth_method="userpass", username=f"{vault_prefix}-u", password=wrong
    )
    assert "userpass login rejected by Vault" in message and "check username and password" in message
    assert wrong not in message

    message = lookup_error(
        secret, url=openbao.url, auth_method="userpass", auth_mount_point="nowhere", username="u", password=wrong
    )
    assert "userpass login rejected by Vault" in message
    assert "or no auth method is mounted at 'auth/nowhere' in that namespace: check auth_mount_point" in message


def test_unreachable_vault_names_the_address_and_the_attempts(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    options = {"url": url, "token": "s.unused", "retries": 1, "retry_max_seconds": 1}
    message = lookup_error("any/path", **options)
    assert f"cannot reach Vault at {url}: connection refused (after 2 attempts)" in message


def test_sealed_vault_says_unseal(openbao_factory: Any, vault_prefix: str) -> None:
    server = openbao_factory()
    server.kv2_put(f"{vault_prefix}/prod", {"api_key": CANARY})
    server.seal()
    message = lookup_error(f"{vault_prefix}/prod", url=server.url, token=server.root_token, retries=0)
    assert "is sealed" in message and "unseal it" in message


def test_configuration_errors_come_before_any_request() -> None:
    assert "set the url option or VAULT_ADDR" in lookup_error("x")
    unreachable = {"url": "http://127.0.0.1:1", "token": "s.unused", "kv_version": 2, "retries": 0}
    with pytest.raises(AnsibleError, match="return_format"):
        run_lookup("x", return_format="yaml", **unreachable)


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_with_the_ca_bundle_and_a_client_certificate(openbao: OpenBao, secret: str) -> None:
    tls = openbao.tls_files
    assert tls is not None
    token = {"token": openbao.root_token, "field": "api_key"}
    assert run_lookup(secret, url=openbao.tls_url, ca_cert=str(tls.ca_cert), **token) == [CANARY]
    assert run_lookup(secret, url=openbao.tls_url, validate_certs=False, **token) == [CANARY]

    message = lookup_error(secret, url=openbao.tls_url, retries=0, **token)
    assert f"TLS error talking to Vault at {openbao.tls_url}: certificate verify failed" in message
    assert "check ca_cert (VAULT_CACERT)" in message

    client = {"client_cert": str(tls.client_cert), "client_key": str(tls.client_key)}
    assert run_lookup(secret, url=openbao.mtls_url, ca_cert=str(tls.ca_cert), **client, **token) == [CANARY]
    message = lookup_error(secret, url=openbao.mtls_url, ca_cert=str(tls.ca_cert), retries=0, **token)
    assert f"TLS error talking to Vault at {openbao.mtls_url}: certificate required" in message
    assert "client_cert/client_key (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY)" in message


# -- the run cache ------------------------------------------------------------------------------


def _read_in_child(queue: Any, options: dict[str, Any], path: str) -> None:
    os.environ["AIGATEWAY_VAULT_RUN_CACHE"] = "true"
    try:
        queue.put(run_lookup(path, **options))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        queue.put(repr(error))


def test_forked_workers_share_one_login_and_one_read(openbao: OpenBao, secret: str, vault_prefix: str) -> None:
    """Like Ansible's workers: children of one process, each reading through the run cache agent."""
    openbao.read_policy(f"{vault_prefix}-read", {f"secret/data/{vault_prefix}/*": ["read"]})
    role_id, secret_id = openbao.approle(f"{vault_prefix}-r", [f"{vault_prefix}-read"])
    options = {"url": openbao.url, "role_id": role_id, "secret_id": secret_id, "field": "api_key", "kv_version": 2}
    mark = openbao.audit_mark()

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    for _ in range(3):
        worker = context.Process(target=_read_in_child, args=(queue, options, secret))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0
    assert [queue.get(timeout=5) for _ in range(3)] == [[CANARY]] * 3

    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 1
    assert len(openbao.audit_requests(since=mark, path=f"secret/data/{secret}")) == 1


def test_an_unsafe_cache_directory_falls_back_to_reading_in_the_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, openbao: OpenBao, secret: str
) -> None:
    shared = tmp_path / "shared-tmp"
    (shared / f"aigateway-vault-{os.getuid()}").mkdir(parents=True, mode=0o755)
    (shared / f"aigateway-vault-{os.getuid()}").chmod(0o755)
    monkeypatch.setattr("tempfile.tempdir", str(shared))
    warnings: list[str] = []
    connection, login = _vault.settings_from_options({"url": openbao.url, "token": openbao.root_token})
    found = _vault_run_cache.read_secret(
        connection, login, secret, mount="secret", version=None, kv=2, warn=warnings.append
    )
    assert found.field("api_key") == CANARY
    assert len(warnings) == 1 and "must be a directory owned by this user with mode 0700" in warnings[0]
    assert f"reading secret/{secret} in this worker instead" in warnings[0]
    assert CANARY not in warnings[0]
