"""playbooks/verify.yml: Terraform drift, hand-edited hosts and a gateway whose models moved, and the key's age."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProject, project_with_keys

pytestmark = pytest.mark.slow

VERIFY = "playbooks/verify.yml"


@pytest.fixture
def dev_key(sandbox) -> str:
    """dev's own key, so that what it sees can change alone."""
    key = f"sk-drift-dev-{uuid.uuid4().hex}"
    sandbox.accept_key(key)
    return key


@pytest.fixture
def project(tmp_path: Path, openbao, sandbox, sandbox_key: str, dev_key: str) -> GatewayProject:
    """dev (one host) and prod (two hosts), deployed."""
    environments = {"dev": ["dev-1"], "prod": ["prod-1", "prod-2"]}
    keys = {"dev": dev_key, "prod": sandbox_key}
    project = project_with_keys(tmp_path, openbao, sandbox.base_url, environments, keys, label="drift")
    deployed = project.playbook()
    assert deployed.returncode == 0, deployed.explain()
    return project


def test_verify_reports_each_kind_of_drift_and_changes_nothing(project: GatewayProject, sandbox, dev_key: str) -> None:
    clean = project.playbook(VERIFY)
    assert clean.returncode == 0, clean.explain()
    flat = clean.flat
    for env, host in (("dev", "dev-1"), ("prod", "prod-1"), ("prod", "prod-2")):
        assert f"{env} on {host}: no drift" in flat, clean.explain()
    assert "dev: key version 1 in Vault" in flat and "prod: key version 1 in Vault" in flat
    assert "WARNING" not in clean.stdout
    assert clean.total_changed() == 0, clean.explain()

    # Terraform drift in prod, a hand edit on prod-1, a key that no longer sees one of dev's models.
    project.set("prod", gateway_rate_limit_rpm=90)
    edited = project.host_dir("prod-1") / "gateway.json"
    config = json.loads(edited.read_text())
    config["models"]["gpt-4.1"]["rate_limit_rpm"] = 999
    edited.write_text(json.dumps(config, indent=4, sort_keys=True) + "\n")
    sandbox.accept_key(dev_key, models=["gpt-4.1"])
    credentials = project.host_dir("dev-1") / "credentials.env"
    credentials.write_text(credentials.read_text() + "AI_GATEWAY_DEBUG=1\n")
    before = project.snapshot()

    drift = project.playbook(VERIFY, check=True, diff=True, extra_vars={"gateway_key_max_age_days": 0})

    assert drift.returncode != 0, drift.explain()
    assert project.snapshot() == before, "verify.yml changed a host file or the state"
    flat = drift.flat
    assert "prod: Terraform drift, the inventory no longer matches the state (0 to add, 1 to change" in flat
    assert "global rate limit 100 → 90" in flat
    assert "prod on prod-1: files differ from the deployed configuration (edited by hand?): gateway.json" in flat
    assert '"rate_limit_rpm": 999' in drift.stdout  # the diff shows the hand edit
    assert "dev on dev-1: the gateway no longer matches the allowed models" in flat
    assert "deepseek-v3.2" in flat.split("dev on dev-1: the gateway no longer matches")[1]
    assert "dev on dev-1: files differ from the deployed configuration (edited by hand?): credentials.env" in flat
    assert dev_key not in drift.stdout and "AI_GATEWAY_DEBUG" not in drift.stdout
    assert "prod on prod-2: no drift" in flat
    assert "dev: Terraform drift" not in flat
    recap = drift.recap()
    assert recap["prod-1"]["failed"] == 1 and recap["dev-1"]["failed"] == 1 and recap["prod-2"]["failed"] == 0
    assert "WARNING: dev: key version 1 is" in flat and "past gateway_key_max_age_days (0)" in flat
    assert "WARNING: prod: key version 1 is" in flat

    # For a schedule that alerts on `changed` instead of on failure.
    marked = project.playbook(VERIFY, extra_vars={"gateway_drift_action": "changed"})
    assert marked.returncode == 0, marked.explain()
    recap = marked.recap()
    assert recap["prod-1"]["changed"] > 0 and recap["dev-1"]["changed"] > 0, marked.explain()
    assert recap["prod-2"]["changed"] == 0, marked.explain()
    assert project.snapshot() == before
