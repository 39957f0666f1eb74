"""Secret canary: at -vvvv, the key lands in the hosts' credentials.env and in no other byte a run writes.

Runs, each at -vvvv and with --diff where it applies: a deploy; check mode after the key rotated in
Vault (the new key must land nowhere, not even on the hosts); playbooks/verify.yml when the
collection has one (deploy's own verification step, which every deploy runs, otherwise); and a
failing deploy whose API echoes the rejected key in its error message.

Every run writes inside the test's directory: hosts' files, Terraform work directories (plans,
.terraform), state, Ansible's log (ANSIBLE_LOG_PATH), its local and remote temporary directories,
retry files, a jsonfile fact cache, HOME and TMPDIR. All of it is searched, along with the runs'
stdout and stderr and every file under the repository that changed while the test ran.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from tests.support.gateway import REPO, GatewayProject, Run, files_containing
from tests.support.openbao import OpenBao
from tests.support.sandbox import DEFAULT_MODELS, SandboxServer

pytestmark = pytest.mark.slow

HOSTS = {"dev": ["dev-1"], "prod": ["prod-1", "prod-2"]}
SKIPPED_IN_REPO = {".git", ".venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache"}


def _canary() -> str:
    return f"sk-canary-{uuid.uuid4().hex}"


def _changed_repo_files(since: float) -> list[Path]:
    """Files under the repository modified since ``since``, outside caches and the virtualenv."""
    found = []
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_IN_REPO]
        for name in files:
            path = Path(directory, name)
            try:
                if not path.is_symlink() and path.stat().st_mtime >= since:
                    found.append(path)
            except FileNotFoundError:
                continue
    return found


@pytest.fixture
def project(tmp_path: Path, openbao: OpenBao, sandbox: SandboxServer) -> GatewayProject:
    prefix = f"canary-{uuid.uuid4().hex[:8]}"
    for directory in ("retry", "facts", "systmp"):
        (tmp_path / directory).mkdir()
    project = GatewayProject(
        root=tmp_path,
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=sandbox.base_url,
        environments=HOSTS,
        common={"gateway_vault_path": prefix + "/{{ gateway_environment }}"},
        extra_env={
            "ANSIBLE_RETRY_FILES_ENABLED": "1",
            "ANSIBLE_RETRY_FILES_SAVE_PATH": str(tmp_path / "retry"),
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
            "TMPDIR": str(tmp_path / "systmp"),
        },
    )
    project.write_inventory()
    return project


def _store(openbao: OpenBao, project: GatewayProject, key: str) -> None:
    prefix = project.common["gateway_vault_path"].split("/")[0]
    for environment in HOSTS:
        openbao.kv2_put(f"{prefix}/{environment}", {"api_key": key})


def test_the_key_appears_only_in_the_hosts_credentials(
    project: GatewayProject, openbao: OpenBao, sandbox: SandboxServer
) -> None:
    started = time.time() - 1
    canary = _canary()
    sandbox.configure(models=list(DEFAULT_MODELS))
    sandbox.accept_key(canary)
    _store(openbao, project, canary)
    runs: dict[str, Run] = {}

    runs["deploy"] = project.playbook(verbosity=4, diff=True)
    assert runs["deploy"].returncode == 0, runs["deploy"].explain()

    # Check mode after a rotation in Vault: it reads the new key and plans, and must write it nowhere.
    rotated = _canary()
    sandbox.accept_key(rotated)
    _store(openbao, project, rotated)
    runs["check"] = project.playbook(verbosity=4, check=True, diff=True)
    assert runs["check"].returncode == 0, runs["check"].explain()
    assert "1 to change" in runs["check"].stdout, runs["check"].explain()
    _store(openbao, project, canary)

    if (REPO / "playbooks" / "verify.yml").exists():
        runs["verify"] = project.playbook("playbooks/verify.yml", verbosity=4, diff=True)

    # The API rejects the key and repeats it in its error; the hosts' verification must not pass it on.
    sandbox.configure(echo_key_in_errors=True)
    sandbox.rotate_key(canary)
    runs["failing"] = project.playbook(verbosity=4, diff=True, extra_vars={"gateway_preflight": False})
    assert runs["failing"].returncode != 0, runs["failing"].explain()
    assert "API key has been rotated" in runs["failing"].stdout, runs["failing"].explain()

    for name, run in runs.items():
        for secret in (canary, rotated):
            assert secret not in run.stdout, f"the key is in the stdout of the {name} run"
            assert secret not in run.stderr, f"the key is in the stderr of the {name} run"

    searched = [path for path in project.root.rglob("*") if path.is_file()]
    assert project.log_path in searched and any(project.work_dir.rglob("*.tfplan"))
    assert any((project.root / "retry").iterdir()), "the failing run wrote no retry file"
    found = {str(path.relative_to(project.root)) for path in files_containing(project.root, canary)}
    assert found == {f"hosts/{host}/credentials.env" for hosts in HOSTS.values() for host in hosts}
    assert files_containing(project.root, rotated) == []

    leaked = [path for path in _changed_repo_files(started) if canary.encode() in path.read_bytes()]
    leaked += [path for path in _changed_repo_files(started) if rotated.encode() in path.read_bytes()]
    assert leaked == []
