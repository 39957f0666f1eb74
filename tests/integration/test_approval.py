"""Approval for protected environments: only the saved plan whose SHA-256 a reviewer approved is applied."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProject, Run, project_with_keys

pytestmark = pytest.mark.slow

_SHA = re.compile(r"plan SHA-256 ([0-9a-f]{64})")


def _approval_hash(run: Run) -> str:
    found = _SHA.findall(run.stdout)
    assert len(found) == 1, run.explain()
    return found[0]


@pytest.fixture
def project(tmp_path: Path, openbao, sandbox, sandbox_key: str) -> GatewayProject:
    """prod, one host, deployed once without approval; then protected."""
    project = project_with_keys(
        tmp_path,
        openbao,
        sandbox.base_url,
        {"prod": ["prod-1"]},
        {"prod": sandbox_key},
        label="approval",
        gateway_verify=False,
    )
    deployed = project.playbook()
    assert deployed.returncode == 0, deployed.explain()
    project.set("prod", gateway_require_approval=True)
    return project


def test_only_the_approved_plan_is_applied(project: GatewayProject) -> None:
    plan_file = project.work_dir / "prod" / "gateway.tfplan"
    serial = project.state("prod")["serial"]
    project.set("prod", gateway_rate_limit_rpm=75)

    # The plan job: it reports the change and the saved plan's hash, and stops before any host.
    first = project.playbook()
    assert first.returncode == 0, first.explain()
    assert "global rate limit 100 → 75" in first.stdout
    first_hash = _approval_hash(first)
    assert first_hash == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert project.state("prod")["serial"] == serial
    config = json.loads((project.host_dir("prod-1") / "gateway.json").read_text())
    assert config["models"]["deepseek-v3.2"]["rate_limit_rpm"] == 100

    # A second plan of the same change is a different file: the first approval no longer holds.
    second = project.playbook()
    assert second.returncode == 0, second.explain()
    second_hash = _approval_hash(second)
    assert second_hash != first_hash

    before = project.snapshot()
    refused = project.playbook(extra_vars={"gateway_approved_plan": first_hash})
    assert refused.returncode != 0
    assert f"has SHA-256 {second_hash}, not the approved {first_hash}" in refused.flat, refused.explain()
    assert project.snapshot() == before
    assert project.state("prod")["serial"] == serial

    applied = project.playbook(extra_vars={"gateway_approved_plan": second_hash})
    assert applied.returncode == 0, applied.explain()
    assert project.state("prod")["serial"] > serial
    config = json.loads((project.host_dir("prod-1") / "gateway.json").read_text())
    assert config["models"]["deepseek-v3.2"]["rate_limit_rpm"] == 75
    limits = json.loads((project.host_dir("prod-1") / "rate-limits.json").read_text())
    assert limits["rate_limits"][0]["requests"] == 75

    # An approval applies once: the same hash again names a plan the state has moved past.
    applied_state = project.snapshot()
    again = project.playbook(extra_vars={"gateway_approved_plan": second_hash})
    assert again.returncode != 0, again.explain()
    assert "stale" in again.flat.lower(), again.explain()
    assert project.snapshot() == applied_state


def test_an_approved_plan_whose_inputs_moved_is_refused(project: GatewayProject) -> None:
    project.set("prod", gateway_rate_limit_rpm=75)
    planned = project.playbook()
    assert planned.returncode == 0, planned.explain()
    approved = _approval_hash(planned)

    # The inventory changes after the review: the approved plan no longer says what the hosts would get.
    project.set("prod", gateway_rate_limit_rpm=80)
    before = project.snapshot()
    refused = project.playbook(extra_vars={"gateway_approved_plan": approved})
    assert refused.returncode != 0
    assert "since the approved plan was made, rate_limit_rpm changed" in refused.flat, refused.explain()
    assert project.snapshot() == before
