"""deploy.yml end to end: real OpenBao, real Terraform, real ansible-playbook, the sandbox API."""

from __future__ import annotations

import json
import re
import stat
import uuid
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProject, files_containing, project_with_keys

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path, openbao, sandbox, sandbox_key: str) -> GatewayProject:
    """dev (one host) and prod (two hosts), each with its key in OpenBao."""
    environments = {"dev": ["dev-1"], "prod": ["prod-1", "prod-2"]}
    keys = dict.fromkeys(environments, sandbox_key)
    return project_with_keys(tmp_path, openbao, sandbox.base_url, environments, keys, label="deploy")


def test_deploy_writes_every_host_and_a_second_run_changes_nothing(project: GatewayProject, sandbox_key: str) -> None:
    first = project.playbook()
    assert first.returncode == 0, first.explain()
    assert first.total_changed() > 0

    for host, env in (("dev-1", "dev"), ("prod-1", "prod"), ("prod-2", "prod")):
        config = json.loads((project.host_dir(host) / "gateway.json").read_text())
        assert config["environment"] == env
        limits = json.loads((project.host_dir(host) / "rate-limits.json").read_text())
        assert limits["rate_limits"][0]["name"] == "global"
        credentials = project.host_dir(host) / "credentials.env"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert f"AI_GATEWAY_API_KEY={sandbox_key}" in credentials.read_text()

    prod = json.loads((project.host_dir("prod-1") / "gateway.json").read_text())
    assert prod["models"]["gpt-4.1"]["rate_limit_rpm"] == 30
    assert prod["models"]["gemini-2.5-flash"]["rate_limit_rpm"] == 100
    assert prod["models"]["gpt-4.1"]["fallback_model"] == "claude-sonnet-4-20250514"
    assert prod["credentials"]["key_version"] == 1

    # Each environment has its own Terraform root and state; neither holds the key.
    for env in ("dev", "prod"):
        assert (project.work_dir / env / ".terraform").is_dir()
        assert project.state(env)["resources"], f"{env} state has no resources"
    assert files_containing(project.state_dir, sandbox_key) == []
    assert files_containing(project.work_dir, sandbox_key) == []

    serials = {env: project.state(env)["serial"] for env in ("dev", "prod")}
    second = project.playbook()
    assert second.returncode == 0, second.explain()
    assert second.total_changed() == 0, second.explain()
    assert {env: project.state(env)["serial"] for env in ("dev", "prod")} == serials


def test_limit_touches_only_the_selected_environment(project: GatewayProject) -> None:
    run = project.playbook(limit="dev")
    assert run.returncode == 0, run.explain()
    assert (project.host_dir("dev-1") / "gateway.json").is_file()
    assert not project.host_dir("prod-1").exists()
    assert not (project.work_dir / "prod").exists()
    assert not project.state_file("prod").exists()


def test_check_diff_shows_the_change_and_writes_nothing(project: GatewayProject) -> None:
    assert project.playbook().returncode == 0
    before = project.snapshot()

    project.set("prod", gateway_rate_limit_rpm=75)
    run = project.playbook(check=True, diff=True)

    assert run.returncode == 0, run.explain()
    assert project.snapshot() == before
    # The plan is told in words; the Terraform inputs and the hosts' gateway.json show it as a diff.
    assert "prod: 0 to add, 1 to change, 0 to destroy" in run.stdout, run.explain()
    assert "global rate limit 100 → 75" in run.stdout
    assert "deepseek-v3.2 rate limit 100 → 75" in run.stdout
    assert "gpt-4.1 rate limit" not in run.stdout  # its own limit, 30, stays
    removed = re.findall(r'^-\s+"rate_limit_rpm": 100,?$', run.stdout, re.MULTILINE)
    added = re.findall(r'^\+\s+"rate_limit_rpm": 75,?$', run.stdout, re.MULTILINE)
    # terraform.tfvars.json once, then gemini-2.5-flash and deepseek-v3.2 in each prod host's gateway.json.
    assert len(added) == len(removed) == 5, run.explain()
    assert run.recap()["prod-1"]["changed"] > 0
    assert run.recap()["dev-1"]["changed"] == 0


def test_a_rejected_key_fails_with_the_status_and_changes_nothing(
    project: GatewayProject, sandbox, sandbox_key: str
) -> None:
    assert project.playbook().returncode == 0
    before = project.snapshot()

    sandbox.rotate_key(sandbox_key)
    run = project.playbook(limit="prod")

    assert run.returncode != 0
    assert "401" in run.stdout and "API key has been rotated" in run.stdout, run.explain()
    assert project.snapshot() == before


def test_an_unreachable_vault_fails_before_any_state_changes(project: GatewayProject, unused_tcp_port: int) -> None:
    project.vault_addr = f"http://127.0.0.1:{unused_tcp_port}"
    run = project.playbook()

    assert run.returncode != 0
    assert "cannot reach Vault" in run.stdout, run.explain()
    assert project.snapshot() == {}
    assert not project.work_dir.exists()


def test_the_key_lands_only_in_the_hosts_credentials_at_vvvv(project: GatewayProject, openbao, sandbox) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    sandbox.accept_key(canary)
    prefix = project.common["gateway_vault_path"].split("/")[0]
    for env in ("dev", "prod"):
        openbao.kv2_put(f"{prefix}/{env}", {"api_key": canary})

    run = project.playbook(verbosity=4, diff=True)
    assert run.returncode == 0, run.explain()
    assert canary not in run.stdout and canary not in run.stderr

    found = {str(p.relative_to(project.root)) for p in files_containing(project.root, canary)}
    expected = {f"hosts/{host}/credentials.env" for host in ("dev-1", "prod-1", "prod-2")}
    assert found == expected
