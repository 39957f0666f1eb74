"""Readable plans: check mode tells each environment's plan in words, and `changed` is the plan's own answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.gateway import EXAMPLE_SETTINGS, GatewayProject, Run, project_with_keys
from tests.support.sandbox import SandboxServer, default_config
from tests.support.sandbox_fixtures import SANDBOX_KEY

pytestmark = pytest.mark.slow

REPORT_TASK = "Report what the plan changes"


def _task_status(run: Run, task: str, host: str) -> str | None:
    """`ok`, `changed`, `skipping` ... as the default callback printed it for host under the named task."""
    match = re.search(
        rf"^TASK \[[^\]]*{re.escape(task)}\][^\n]*\n(?:(?!TASK ).*\n)*?^(\w+): \[{re.escape(host)}(?: -> [^\]]+)?\]",
        run.stdout,
        re.MULTILINE,
    )
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with SandboxServer(default_config(SANDBOX_KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, openbao, sandbox_server: SandboxServer) -> GatewayProject:
    """prod, one host, deployed once for the whole module; each test puts back what it changes."""
    project = project_with_keys(
        tmp_path_factory.mktemp("plan-review"),
        openbao,
        sandbox_server.base_url,
        {"prod": ["prod-1"]},
        {"prod": SANDBOX_KEY},
        label="review",
        gateway_verify=False,
    )
    deployed = project.playbook()
    assert deployed.returncode == 0, deployed.explain()
    return project


@pytest.fixture
def prod_settings(project: GatewayProject) -> Iterator[None]:
    """Put prod's example settings back after the test."""
    yield
    project.settings.pop("prod", None)
    project.write_inventory()


def _check(project: GatewayProject) -> Run:
    before = project.snapshot()
    run = project.playbook(check=True)
    assert run.returncode == 0, run.explain()
    assert project.snapshot() == before, "check mode changed a host file or the state"
    return run


def test_no_change_reports_nothing_to_do_and_is_not_changed(project: GatewayProject) -> None:
    run = _check(project)

    assert "prod: 0 to add, 0 to change, 0 to destroy" in run.stdout, run.explain()
    assert _task_status(run, REPORT_TASK, "prod-1") == "ok", run.explain()
    assert run.recap()["prod-1"]["changed"] == 0, run.explain()


def test_a_rate_limit_change_is_told_and_changed(project: GatewayProject, prod_settings: None) -> None:
    project.set("prod", gateway_rate_limit_rpm=75)
    run = _check(project)

    assert "prod: 0 to add, 1 to change, 0 to destroy" in run.stdout, run.explain()
    assert "global rate limit 100 → 75" in run.stdout
    assert _task_status(run, REPORT_TASK, "prod-1") == "changed", run.explain()


def test_a_removed_model_is_told_and_changed(project: GatewayProject, prod_settings: None) -> None:
    models = [m for m in EXAMPLE_SETTINGS["prod"]["gateway_allowed_models"] if m != "gemini-2.5-flash"]
    project.set("prod", gateway_allowed_models=models)
    run = _check(project)

    assert "prod: 0 to add, 1 to change, 0 to destroy" in run.stdout, run.explain()
    assert "models removed: gemini-2.5-flash" in run.stdout
    assert "gemini-2.5-flash rate limit" not in run.stdout
    assert _task_status(run, REPORT_TASK, "prod-1") == "changed", run.explain()


def test_a_new_key_version_is_told_without_the_key_and_applied_once(
    project: GatewayProject, openbao, sandbox_server: SandboxServer
) -> None:
    new_key = f"sk-review-{uuid.uuid4().hex}"
    sandbox_server.accept_key(new_key)
    prefix = project.common["gateway_vault_path"].split("/")[0]
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=f"{prefix}/prod", secret={"api_key": new_key}, mount_point="secret"
    )
    run = _check(project)

    assert "key version 1 → 2" in run.stdout, run.explain()
    assert "key fingerprint changed" in run.stdout
    assert new_key not in run.stdout and new_key[-16:] not in run.stdout
    assert _task_status(run, REPORT_TASK, "prod-1") == "changed", run.explain()

    # Outside check mode the apply carries `changed`, and only while the plan has something to do.
    serial = project.state("prod")["serial"]
    applied = project.playbook()
    assert applied.returncode == 0, applied.explain()
    assert _task_status(applied, "Apply the plan", "prod-1") == "changed", applied.explain()
    assert project.state("prod")["serial"] > serial
    again = project.playbook()
    assert again.returncode == 0, again.explain()
    assert _task_status(again, "Apply the plan", "prod-1") == "skipping", again.explain()
    assert again.total_changed() == 0, again.explain()
