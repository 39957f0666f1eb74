"""One login and one read per secret per ansible-playbook run, for fifty hosts templating the lookup.

The secret is referenced from group_vars, the way users write it, so every host and every task
templates the lookup again in a worker process of its own. OpenBao's audit log is the witness.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import project_with_keys
from tests.support.openbao import OpenBao
from tests.support.vault_lookup import VENV_BIN, playbook

pytestmark = pytest.mark.slow

HOSTS = 50
KEY = "sk-run-cache-7d41c09e2b5a"

PLAYBOOK = """\
---
- name: Distribute the key to every host
  hosts: prod
  gather_facts: false
  tasks:
    - name: Write the credentials file
      ansible.builtin.copy:
        dest: "{{ config_dir }}/credentials.env"
        content: "AI_GATEWAY_API_KEY={{ gateway_api_key }}\\n"
        mode: "0600"
      no_log: true
      diff: false

    - name: Template the variables again in another task
      ansible.builtin.assert:
        that:
          - lookup('ansible.builtin.file', config_dir ~ '/credentials.env') == 'AI_GATEWAY_API_KEY=' ~ gateway_api_key
          - gateway_key_version | int == 2
        quiet: true
      no_log: true
"""


def write_project(root: Path, path: str) -> tuple[Path, Path]:
    inventory = root / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    hosts = {f"prod-{number:02d}": None for number in range(1, HOSTS + 1)}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"prod": {"hosts": hosts}}}}))
    group_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(VENV_BIN / "python"),
        "config_dir": str(root / "hosts") + "/{{ inventory_hostname }}",
        "gateway_api_key": "{{ lookup('aigateway.ops.vault_kv', '" + path + "', field='api_key') }}",
        "gateway_key_version": "{{ lookup('aigateway.ops.vault_kv', '" + path + "', return_format='version') }}",
    }
    (inventory / "group_vars" / "prod.yml").write_text(yaml.safe_dump(group_vars))
    for host in hosts:
        (root / "hosts" / host).mkdir(parents=True)
    playbook_path = root / "distribute.yml"
    playbook_path.write_text(PLAYBOOK)
    return playbook_path, inventory


def test_fifty_hosts_one_login_one_read_and_the_token_revoked(
    tmp_path: Path, openbao: OpenBao, vault_prefix: str
) -> None:
    path = f"{vault_prefix}/prod"
    openbao.kv2_put(path, {"api_key": "sk-old-version"})
    openbao.kv2_put(path, {"api_key": KEY})
    openbao.read_policy(vault_prefix, {f"secret/data/{vault_prefix}/*": ["read"]})
    role_id, secret_id = openbao.approle(vault_prefix, [vault_prefix])
    playbook_path, inventory = write_project(tmp_path, path)
    env = {"VAULT_ADDR": openbao.url, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    mark = openbao.audit_mark()
    sockets_before = set(agent_sockets())

    run = playbook(tmp_path / "home", playbook_path, inventory, env=env)

    assert run.returncode == 0, run.explain()
    recap = run.stdout[run.stdout.index("PLAY RECAP") :]
    assert recap.count("ok=2 ") == HOSTS and recap.count("failed=0 ") == HOSTS
    for number in range(1, HOSTS + 1):
        credentials = tmp_path / "hosts" / f"prod-{number:02d}" / "credentials.env"
        assert credentials.read_text() == f"AI_GATEWAY_API_KEY={KEY}\n"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert KEY not in run.output

    # 50 hosts x 2 tasks templated both lookups: one login, one mount check, one read.
    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 1
    assert len(openbao.audit_requests(since=mark, path=f"secret/data/{path}")) == 1
    assert len(openbao.audit_requests(since=mark, path="sys/internal/ui/mounts/secret")) == 1

    # The login token is revoked once the run is over, and the agent is gone with its socket.
    login = next(
        entry
        for entry in openbao.audit_entries()[mark:]
        if entry.get("type") == "response" and entry["request"]["path"] == "auth/approle/login"
    )
    issued = login["auth"]["client_token"]
    revoked = []
    for _ in range(100):
        revoked = [
            entry
            for entry in openbao.audit_requests(since=mark, path="auth/token/revoke-self")
            if entry["request"].get("client_token") == issued
        ]
        if revoked:
            break
        time.sleep(0.1)
    assert len(revoked) == 1
    assert not leftover_sockets(sockets_before), "the agent of a finished run left its socket behind"

    # A second run is a second run: it logs in once again.
    mark = openbao.audit_mark()
    again = playbook(tmp_path / "home", playbook_path, inventory, env=env, args=["--limit", "prod-01"])
    assert again.returncode == 0, again.explain()
    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 1
    assert len(openbao.audit_requests(since=mark, path=f"secret/data/{path}")) == 1


def agent_sockets() -> list[Path]:
    return list((Path(tempfile.gettempdir()) / f"aigateway-vault-{os.getuid()}").glob("*.sock"))


def leftover_sockets(before: set[Path]) -> list[Path]:
    """Sockets that appeared during the run and whose run (the pid in the name) is over, after a moment."""
    found: list[Path] = []
    for _ in range(50):
        found = [
            path
            for path in agent_sockets()
            if path not in before and not Path("/proc", path.name.split("-", 1)[0]).exists()
        ]
        if not found:
            break
        time.sleep(0.1)
    return found


def test_hosts_asking_an_unreachable_vault_share_one_failure(tmp_path: Path, unused_tcp_port: int) -> None:
    """The agent hands a fresh failure to the hosts queued behind it instead of retrying once per host."""
    url = f"http://127.0.0.1:{unused_tcp_port}"
    inventory = tmp_path / "hosts.yml"
    hosts = {f"web-{number}": None for number in range(1, 11)}
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": hosts,
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": str(VENV_BIN / "python")},
                }
            }
        )
    )
    playbook_path = tmp_path / "read.yml"
    playbook_path.write_text(
        "---\n"
        "- name: Read from a Vault that is down\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Read the key\n"
        "      ansible.builtin.debug:\n"
        "        msg: \"{{ lookup('aigateway.ops.vault_kv', 'gateway/prod', field='api_key', retries=2) }}\"\n"
    )

    run = playbook(tmp_path / "home", playbook_path, inventory, env={"VAULT_ADDR": url, "VAULT_TOKEN": "s.unused"})

    assert run.returncode != 0
    failure = f"cannot reach Vault at {url}: connection refused (after 3 attempts)"
    assert run.stdout.count(failure) >= len(hosts), run.explain()
    assert "failed=1" in run.stdout and run.stdout.count("failed=1 ") == len(hosts)
    # One host's request spent the retries; the others got its answer.
    assert len([line for line in run.output.splitlines() if "[WARNING]: Vault GET" in line]) == 2


def test_a_fifty_host_deploy_logs_in_once_and_reads_the_key_once(
    tmp_path: Path, openbao: OpenBao, sandbox, sandbox_key: str
) -> None:
    """deploy.yml itself, one environment of fifty hosts, logging in with AppRole from the environment."""
    hosts = [f"prod-{number:02d}" for number in range(1, HOSTS + 1)]
    project = project_with_keys(
        tmp_path, openbao, sandbox.base_url, {"prod": hosts}, {"prod": sandbox_key}, label="fifty"
    )
    prefix = project.common["gateway_vault_path"].split("/")[0]
    openbao.read_policy(prefix, {f"secret/data/{prefix}/*": ["read"]})
    role_id, secret_id = openbao.approle(prefix, [prefix])
    project.vault_token = ""
    project.extra_env = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    mark = openbao.audit_mark()

    run = project.playbook(limit="prod")

    assert run.returncode == 0, run.explain()
    recap = run.recap()
    assert sorted(recap) == hosts and all(counts["failed"] == 0 for counts in recap.values())
    for host in hosts:
        assert (project.host_dir(host) / "credentials.env").read_text().count(sandbox_key) >= 1
    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 1
    assert len(openbao.audit_requests(since=mark, path=f"secret/data/{prefix}/prod")) == 1
