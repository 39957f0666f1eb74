"""A -vvvv --diff run of the lookup path with a canary secret: the canary is in no output, log or stray file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import files_containing
from tests.support.openbao import OpenBao
from tests.support.vault_lookup import VENV_BIN, playbook

pytestmark = pytest.mark.slow

CANARY = "sk-canary-vault-path-2e7c5a91d04b"

PLAYBOOK = """\
---
- name: Use the key everywhere a playbook would
  hosts: prod
  gather_facts: false
  tasks:
    - name: Resolve the key once into a fact
      ansible.builtin.set_fact:
        resolved: "{{ lookup('aigateway.ops.vault_kv', secret_path, field='api_key', return_format='full') }}"
      no_log: true

    - name: Write the credentials file
      ansible.builtin.copy:
        dest: "{{ config_dir }}/credentials.env"
        content: "AI_GATEWAY_API_KEY={{ gateway_api_key }}\\n"
        mode: "0600"
      no_log: true
      diff: false

    - name: Show what may be shown
      ansible.builtin.debug:
        msg:
          metadata: "{{ lookup('aigateway.ops.vault_kv', secret_path, return_format='metadata') }}"
          version: "{{ resolved.version }}"
          fields: "{{ resolved.fields }}"

    - name: A field that does not exist fails with the names of those that do
      ansible.builtin.debug:
        msg: "{{ lookup('aigateway.ops.vault_kv', secret_path, field='apikey') }}"
      register: wrong_field
      ignore_errors: true

    - name: A path that does not exist
      ansible.builtin.debug:
        msg: "{{ lookup('aigateway.ops.vault_kv', secret_path ~ '-missing', field='api_key') }}"
      ignore_errors: true

    - name: The failures said what to fix
      ansible.builtin.assert:
        that:
          - wrong_field is failed
          - "'fields present: api_key, org' in wrong_field.msg"
"""


def test_canary_secret_appears_in_no_output_at_vvvv(tmp_path: Path, openbao: OpenBao, vault_prefix: str) -> None:
    path = f"{vault_prefix}/prod"
    openbao.kv2_put(path, {"api_key": CANARY, "org": "platform-canary-org"})
    openbao.read_policy(vault_prefix, {f"secret/data/{vault_prefix}/*": ["read"]})
    role_id, secret_id = openbao.approle(vault_prefix, [vault_prefix])

    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    hosts = ["prod-1", "prod-2", "prod-3"]
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"prod": {"hosts": dict.fromkeys(hosts)}}}})
    )
    (inventory / "group_vars" / "prod.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(VENV_BIN / "python"),
                "config_dir": str(tmp_path / "hosts") + "/{{ inventory_hostname }}",
                "secret_path": path,
                "gateway_api_key": "{{ lookup('aigateway.ops.vault_kv', secret_path, field='api_key') }}",
            }
        )
    )
    for host in hosts:
        (tmp_path / "hosts" / host).mkdir(parents=True)
    playbook_path = tmp_path / "use.yml"
    playbook_path.write_text(PLAYBOOK)
    env = {
        "VAULT_ADDR": openbao.url,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "ANSIBLE_LOG_PATH": str(tmp_path / "ansible.log"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "home" / "remote-tmp"),
    }

    run = playbook(tmp_path / "home", playbook_path, inventory, env=env, verbosity=4, args=["--diff"])

    assert run.returncode == 0, run.explain()
    assert "fields present: api_key, org" in run.stdout  # the failures were reported...
    assert "secret not found: mount 'secret'" in run.stdout
    assert '"version": 1' in run.stdout or "version: 1" in run.stdout  # ...and the metadata shown
    for needle in (CANARY, "platform-canary-org", secret_id):
        assert needle not in run.stdout
        assert needle not in run.stderr
    assert (tmp_path / "ansible.log").stat().st_size > 0

    # Only the hosts' credentials files hold the key: not the log, the temp dirs, nor the run cache's directory.
    expected = sorted(tmp_path / "hosts" / host / "credentials.env" for host in hosts)
    assert files_containing(tmp_path, CANARY) == expected
    cache_directory = Path(tempfile.gettempdir()) / f"aigateway-vault-{os.getuid()}"
    if cache_directory.exists():
        assert files_containing(cache_directory, CANARY) == []
