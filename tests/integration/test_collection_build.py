"""The collection as people install it: build the artifact, install it into a clean path, deploy from it.

The build runs on a copy of the checkout with a run's leftovers planted in it
(state, plans, a venv, .terraform), so build_ignore is tested against what a
working checkout really holds. The deploy runs from a project of its own with
only the installed copy on its collections path: nothing may reach back into
the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.awx import copy_checkout
from tests.support.gateway import EXAMPLE_SETTINGS, files_containing

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

# What a run, a test or a developer leaves in a checkout; none of it may ship.
LEFTOVERS = [
    ".gateway/state/dev/terraform.tfstate",
    ".gateway/work/dev/gateway.tfplan",
    ".venv/bin/python",
    ".demo/inventory/hosts.yml",
    ".pytest_cache/README.md",
    "terraform/modules/ai_gateway/.terraform/modules/modules.json",
    "terraform/modules/ai_gateway/terraform.tfstate",
    "terraform/modules/ai_gateway/.terraform.lock.hcl",
    "tests/output/junit.xml",
]
SHIPPED = [
    "MANIFEST.json",
    "FILES.json",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "bindep.txt",
    "requirements/runtime.txt",
    "deploy.yml",
    "playbooks/deploy.yml",
    "playbooks/awx_configure.yml",
    "awx/credential_types/vault.yml",
    "roles/gateway/meta/argument_specs.yml",
    "roles/gateway/tasks/main.yml",
    "plugins/lookup/vault_kv.py",
    "plugins/modules/models_check.py",
    "terraform/modules/ai_gateway/main.tf",
    "terraform/terraformrc",
]
KEPT_OUT = ("tests/", "molecule/", "tools/", "bench/", ".collections/", "changelogs/fragments/", "Makefile")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VAULT_", "ANSIBLE_", "TF_", "OPENAI_", "AI_GATEWAY_"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update({"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "HOME": str(home), "ANSIBLE_NOCOLOR": "1"})
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build the artifact from a used checkout and install it into an empty collections path."""
    root = tmp_path_factory.mktemp("collection")
    source = root / "checkout"
    copy_checkout(source)
    for leftover in LEFTOVERS:
        (source / leftover).parent.mkdir(parents=True, exist_ok=True)
        (source / leftover).write_text("left behind by a run\n")

    env = _env(root / "home")
    build = _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(root / "dist")], source, env
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (artifact,) = (root / "dist").glob("aigateway-ops-*.tar.gz")

    # community.general comes with the ansible package here; a clean machine gets it from Galaxy.
    path = root / "collections"
    install = _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(path), str(artifact)],
        root,
        env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    with tarfile.open(artifact) as archive:
        members = archive.getnames()
    return {"root": root, "artifact": artifact, "members": members, "path": path}


def test_the_artifact_ships_the_collection_and_keeps_run_leftovers_and_tests_out(installed: dict[str, Any]) -> None:
    members = set(installed["members"])
    assert set(SHIPPED) <= members, set(SHIPPED) - members
    for leftover in LEFTOVERS:
        assert leftover not in members
    assert not [m for m in members if m.startswith(KEPT_OUT) or "/.terraform" in m or m.endswith((".tfstate", ".pyc"))]
    assert not [m for m in members if m.startswith(".") and m not in {"."}]


def test_the_installed_collection_is_complete(installed: dict[str, Any]) -> None:
    collection = installed["path"] / "ansible_collections" / "aigateway" / "ops"
    manifest = json.loads((collection / "MANIFEST.json").read_text())["collection_info"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("aigateway", "ops", galaxy["version"])
    for path in ("roles/gateway/tasks/main.yml", "terraform/modules/ai_gateway/variables.tf", "playbooks/deploy.yml"):
        assert (collection / path).is_file(), path


def test_deploy_runs_from_the_installed_copy_without_the_source_tree(
    installed: dict[str, Any], openbao, sandbox, tmp_path: Path
) -> None:
    prefix = f"build-{uuid.uuid4().hex[:8]}"
    key = f"sk-installed-{uuid.uuid4().hex}"
    sandbox.accept_key(key)
    openbao.kv2_put(f"{prefix}/dev", {"api_key": key}, mount="secret")
    collection = installed["path"] / "ansible_collections" / "aigateway" / "ops"

    # A user's project: its own ansible.cfg and inventory, the installed collection on its path.
    site = tmp_path / "site"
    (site / "inventory" / "group_vars").mkdir(parents=True)
    (site / "ansible.cfg").write_text(f"[defaults]\ncollections_path = {installed['path']}\n")
    (site / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"dev": {"hosts": {"dev-1": None}}}))
    (site / "inventory" / "group_vars" / "dev.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(VENV_BIN / "python"),
                "gateway_environment": "dev",
                "gateway_config_dir": str(tmp_path / "hosts" / "{{ inventory_hostname }}"),
                "gateway_base_url": sandbox.base_url,
                "gateway_vault_path": f"{prefix}/dev",
                **EXAMPLE_SETTINGS["dev"],
            }
        )
    )
    env = _env(
        tmp_path / "home",
        ANSIBLE_CONFIG=str(site / "ansible.cfg"),
        VAULT_ADDR=openbao.url,
        VAULT_TOKEN=openbao.root_token,
    )
    run = _run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory", "aigateway.ops.deploy"], site, env)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]

    # The role's tasks, the Terraform module and the CLI settings all came from the installed copy.
    assert f"included: {collection}/roles/gateway/tasks/controller.yml" in run.stdout, run.stdout[-4000:]
    assert str(REPO) not in run.stdout + run.stderr
    root = site / ".gateway" / "work" / "dev"
    module_source = root / _module_source(root / "main.tf")
    assert module_source.resolve() == (collection / "terraform" / "modules" / "ai_gateway").resolve()
    assert (site / ".gateway" / "state" / "dev" / "terraform.tfstate").is_file()
    assert files_containing(site / ".gateway", str(REPO)) == []
    assert (tmp_path / "hosts" / "dev-1" / "gateway.json").is_file()


def _module_source(main_tf: Path) -> str:
    for line in main_tf.read_text().splitlines():
        if line.strip().startswith("source"):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError(f"no module source in {main_tf}")
