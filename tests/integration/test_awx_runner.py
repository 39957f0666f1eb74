"""deploy.yml the way AWX runs it: ansible-runner over a private data directory.

AWX cannot run here (it needs Kubernetes), but each AWX job is an
``ansible-runner run`` of a private data directory that AWX prepares:

- ``project/``: the project's checkout (here a copy of the repository's tracked files);
- ``inventory/``: the job's inventory;
- ``env/extravars``: the survey answers and AWX's own variables;
- ``env/envvars``: what the job's credentials inject, rendered from awx/credential_types/vault.yml
  the way AWX renders it (the CA file lands in ``env/`` too);
- ``env/cmdline``: ``--check`` for a job of type Check.

The runner process gets no Vault variable of its own: the job can only reach
OpenBao through what the credential injected. Real OpenBao (over TLS, so the
injected CA file is used), real Terraform, the sandbox API.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.awx import copy_checkout, credential_type, inject_credential
from tests.support.gateway import EXAMPLE_SETTINGS, files_containing

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PLAN_JOB_ID = "41"
JOB_ID = "42"


def _runner_env(home: Path) -> dict[str, str]:
    """The runner's own environment: nothing about Vault, Ansible or Terraform from the caller."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VAULT_", "ANSIBLE_", "TF_", "OPENAI_", "AI_GATEWAY_"))
    }
    env.update({"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "HOME": str(home), "ANSIBLE_NOCOLOR": "1"})
    return env


def _job_events(artifacts: Path) -> list[dict[str, Any]]:
    events = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    return sorted(events, key=lambda event: event["counter"])


@pytest.fixture
def job(tmp_path: Path, openbao, sandbox) -> dict[str, Any]:
    """A private data directory for a deploy job of dev, with a canary key and a token of its own."""
    prefix = f"awx-{uuid.uuid4().hex[:8]}"
    canary = f"sk-canary-{uuid.uuid4().hex}"
    sandbox.accept_key(canary)
    for environment in ("dev", "prod"):
        openbao.kv2_put(f"{prefix}/{environment}", {"api_key": canary}, mount="secret")
    openbao.read_policy(f"{prefix}-read", {f"secret/data/{prefix}/*": ["read"], "sys/internal/ui/mounts/*": ["read"]})
    token = openbao.client().auth.token.create(policies=[f"{prefix}-read"], ttl="1h")["auth"]["client_token"]

    data_dir = tmp_path / "private_data_dir"
    hosts_dir = tmp_path / "hosts"
    copy_checkout(data_dir / "project")

    inventory = data_dir / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {"gateway": {"children": {"dev": {"hosts": {"dev-1": None}}, "prod": {"hosts": {"prod-1": None}}}}}
        )
    )
    (inventory / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(VENV_BIN / "python"),
                "gateway_config_dir": f"{hosts_dir}/{{{{ inventory_hostname }}}}",
                "gateway_base_url": sandbox.base_url,
                "gateway_vault_path": prefix + "/{{ gateway_environment }}",
            }
        )
    )
    for environment in ("dev", "prod"):
        (inventory / "group_vars" / f"{environment}.yml").write_text(
            yaml.safe_dump({"gateway_environment": environment, **EXAMPLE_SETTINGS[environment]})
        )

    # The survey's answer and what AWX adds to every job; then the Vault credential's injection.
    extravars = {"gateway_target_environment": "dev", "awx_job_id": int(JOB_ID), "awx_job_template_name": "deploy"}
    pem = openbao.tls_files.ca_cert.read_text()
    envvars, injected_extravars = inject_credential(
        credential_type("vault"), {"url": openbao.tls_url, "token": token, "cacert": pem}, data_dir
    )
    (data_dir / "env" / "extravars").write_text(yaml.safe_dump({**extravars, **injected_extravars}))
    (data_dir / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    return {"data_dir": data_dir, "hosts_dir": hosts_dir, "canary": canary, "token": token, "envvars": envvars}


def _run_job(data_dir: Path, ident: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "ansible-runner"), "run", str(data_dir), "--playbook", "deploy.yml", "--ident", ident],
        env=_runner_env(data_dir.parent / "home"),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_check_job_plans_then_a_run_job_deploys_and_no_secret_reaches_events_or_artifacts(
    job: dict[str, Any],
) -> None:
    data_dir: Path = job["data_dir"]
    assert Path(job["envvars"]["VAULT_CACERT"]).parent == data_dir / "env"

    # Job type Check (the workflow's plan node): AWX adds --check. It plans and writes nothing.
    (data_dir / "env" / "cmdline").write_text("--check")
    check = _run_job(data_dir, PLAN_JOB_ID)
    assert check.returncode == 0, check.stdout[-8000:] + check.stderr[-3000:]
    plan_events = json.dumps(_job_events(data_dir / "artifacts" / PLAN_JOB_ID))
    assert "dev: 1 to add, 0 to change, 0 to destroy" in plan_events
    assert not (job["hosts_dir"] / "dev-1").exists()
    assert not (data_dir / "project" / ".gateway" / "state" / "dev" / "terraform.tfstate").exists()
    (data_dir / "env" / "cmdline").unlink()

    # Job type Run.
    proc = _run_job(data_dir, JOB_ID)
    artifacts = data_dir / "artifacts" / JOB_ID
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert (artifacts / "status").read_text() == "successful"

    # The events AWX would store: the play ran on the surveyed environment only, and dev-1 was verified.
    events = _job_events(artifacts)
    (stats,) = [event for event in events if event["event"] == "playbook_on_stats"]
    assert set(stats["event_data"]["ok"]) == {"dev-1"}
    assert not stats["event_data"]["failures"] and not stats["event_data"]["dark"]
    verified = [
        event
        for event in events
        if event["event"] == "runner_on_ok" and event["event_data"]["task"] == "Report the verification"
    ]
    assert [event["event_data"]["host"] for event in verified] == ["dev-1"]
    assert "answered 200" in json.dumps(verified[0]["event_data"]["res"])

    # The effects: dev-1 got its files, prod-1 was not touched; the state lives in the job's project copy.
    credentials = job["hosts_dir"] / "dev-1" / "credentials.env"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"AI_GATEWAY_API_KEY={job['canary']}" in credentials.read_text()
    assert not (job["hosts_dir"] / "prod-1").exists()
    assert (data_dir / "project" / ".gateway" / "state" / "dev" / "terraform.tfstate").is_file()

    # No secret in the job's events, its stdout, the project copy (work roots, state) or any other artifact.
    # The key exists only on the host. The token is where AWX put it (env/envvars) and in ansible-runner's
    # own record of the environment it started the job with (artifacts/<job>/command, 0600).
    for run in (check, proc):
        assert job["canary"] not in run.stdout + run.stderr
        assert job["token"] not in run.stdout + run.stderr
    assert files_containing(data_dir, job["canary"]) == []
    commands = {data_dir / "artifacts" / ident / "command" for ident in (PLAN_JOB_ID, JOB_ID)}
    assert set(files_containing(data_dir, job["token"])) == {data_dir / "env" / "envvars", *commands}
    assert all(stat.S_IMODE(command.stat().st_mode) == 0o600 for command in commands)
