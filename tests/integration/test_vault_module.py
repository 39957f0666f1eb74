"""The vault_kv module in a real ansible-playbook run against OpenBao: idempotent writes, check mode, masked diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.openbao import OpenBao
from tests.support.vault_lookup import VENV_BIN, playbook

pytestmark = pytest.mark.slow

FIRST = "sk-module-first-1f9b3c7d"
SECOND = "sk-module-second-8a2e6d40"

PLAYBOOK = """\
---
- name: Write secrets with aigateway.ops.vault_kv
  hosts: localhost
  gather_facts: false
  vars:
    first: "{{ lookup('ansible.builtin.env', 'FIRST_KEY') }}"
    second: "{{ lookup('ansible.builtin.env', 'SECOND_KEY') }}"
  tasks:
    - name: Create the secret
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/prod"
        data: {api_key: "{{ first }}", org: platform}
      register: created

    - name: The same data again
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/prod"
        data: {api_key: "{{ first }}", org: platform}
      register: unchanged

    - name: A new key in check mode
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/prod"
        data: {api_key: "{{ second }}"}
        merge: true
      check_mode: true
      register: planned

    - name: A new key, merged into the other fields
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/prod"
        data: {api_key: "{{ second }}"}
        merge: true
      register: rotated

    - name: Report the secret without its values
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/prod"
        state: read
      register: current

    - name: Replace the whole content of a KV v1 secret, twice
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/v1"
        mount: kv1
        data: {api_key: "{{ first }}"}
      register: v1
      loop: [1, 2]

    - name: Write through an AppRole login
      aigateway.ops.vault_kv:
        path: "{{ prefix }}/approle"
        data: {api_key: "{{ first }}"}
        auth_method: approle
        role_id: "{{ lookup('ansible.builtin.env', 'APPROLE_ROLE_ID') }}"
        secret_id: "{{ lookup('ansible.builtin.env', 'APPROLE_SECRET_ID') }}"
      register: approle

    - name: A path the policy does not allow
      aigateway.ops.vault_kv:
        path: "elsewhere/{{ prefix }}"
        data: {api_key: "{{ first }}"}
        auth_method: approle
        role_id: "{{ lookup('ansible.builtin.env', 'APPROLE_ROLE_ID') }}"
        secret_id: "{{ lookup('ansible.builtin.env', 'APPROLE_SECRET_ID') }}"
      register: forbidden
      ignore_errors: true

    - name: Keep the results for the test (no values in them)
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'created': created, 'unchanged': unchanged, 'planned': planned, 'rotated': rotated,
                      'current': current, 'v1': v1.results, 'approle': approle, 'forbidden': forbidden} | to_json }}"
        mode: "0600"
"""


def test_writes_are_idempotent_checked_and_masked(tmp_path: Path, openbao: OpenBao, vault_prefix: str) -> None:
    openbao.enable_kv("kv1", version=1)
    openbao.read_policy(vault_prefix, {f"secret/data/{vault_prefix}/*": ["create", "read", "update"]})
    role_id, secret_id = openbao.approle(vault_prefix, [vault_prefix])
    playbook_path = tmp_path / "write.yml"
    playbook_path.write_text(PLAYBOOK)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {"localhost": {"ansible_connection": "local"}},
                    "vars": {
                        "ansible_python_interpreter": str(VENV_BIN / "python"),
                        "prefix": vault_prefix,
                        "results_file": str(tmp_path / "results.json"),
                    },
                }
            }
        )
    )
    env = {
        "VAULT_ADDR": openbao.url,
        "VAULT_TOKEN": openbao.root_token,
        "FIRST_KEY": FIRST,
        "SECOND_KEY": SECOND,
        "APPROLE_ROLE_ID": role_id,
        "APPROLE_SECRET_ID": secret_id,
    }
    mark = openbao.audit_mark()

    run = playbook(tmp_path / "home", playbook_path, inventory, env=env, verbosity=2, args=["--diff"])

    assert run.returncode == 0, run.explain()
    for value in (FIRST, SECOND, secret_id):
        assert value not in run.output
    results = json.loads((tmp_path / "results.json").read_text())

    created, unchanged, planned, rotated = (results[k] for k in ("created", "unchanged", "planned", "rotated"))
    assert (created["changed"], created["version"], created["previous_version"]) == (True, 1, None)
    assert created["fields"] == ["api_key", "org"] and created["kv_version"] == 2
    assert (unchanged["changed"], unchanged["version"], unchanged["previous_version"]) == (False, 1, 1)
    assert (planned["changed"], planned["version"], planned["previous_version"]) == (True, 2, 1)
    assert planned["diff"] == {
        "before": {"api_key": "(hidden)", "org": "(hidden)"},
        "after": {"api_key": "(hidden, changed)", "org": "(hidden)"},
    }
    assert (rotated["changed"], rotated["version"], rotated["previous_version"]) == (True, 2, 1)
    assert "(hidden, changed)" in run.stdout  # the diff is shown, masked

    # Check mode wrote nothing; the real write merged the new key into the other field.
    assert openbao.client().secrets.kv.v2.read_secret_version(
        path=f"{vault_prefix}/prod", version=2, raise_on_deleted_version=True
    )["data"]["data"] == {"api_key": SECOND, "org": "platform"}
    versions = openbao.client().secrets.kv.v2.read_secret_metadata(path=f"{vault_prefix}/prod")["data"]["versions"]
    assert sorted(versions) == ["1", "2"]

    current = results["current"]
    assert (current["changed"], current["version"], current["fields"]) == (False, 2, ["api_key", "org"])
    assert current["created_time"] and set(current) >= {"mount", "path", "kv_version"}

    first_v1, second_v1 = results["v1"]
    assert (first_v1["changed"], first_v1["kv_version"], first_v1["version"]) == (True, 1, None)
    assert second_v1["changed"] is False
    assert openbao.client().secrets.kv.v1.read_secret(path=f"{vault_prefix}/v1", mount_point="kv1")["data"] == {
        "api_key": FIRST
    }

    assert results["approle"]["changed"] is True
    forbidden = results["forbidden"]
    assert forbidden["failed"] is True and forbidden["kind"] == "forbidden"
    assert f"permission denied: cannot write secret 'secret/elsewhere/{vault_prefix}'" in forbidden["msg"]
    assert "needs the 'read', 'create' and 'update' capabilities on path \"secret/data/elsewhere/" in forbidden["msg"]

    # Each AppRole login of the module was revoked when its process ended.
    logins = [
        entry
        for entry in openbao.audit_entries()[mark:]
        if entry.get("type") == "response" and entry["request"]["path"] == "auth/approle/login" and entry.get("auth")
    ]
    revoked = {
        entry["request"]["client_token"] for entry in openbao.audit_requests(since=mark, path="auth/token/revoke-self")
    }
    assert len(logins) == 2
    assert {entry["auth"]["client_token"] for entry in logins} <= revoked
