"""State backends and locking: a real PostgreSQL 15, real Terraform, real ansible-playbook.

The s3 backend has no server here: its generated configuration is checked by Terraform itself
(``init -backend=false`` + ``validate`` of the root, and the s3 backend's own argument checks on
``init``, which then fails to connect to an address nothing listens on).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import REPO, GatewayProject, files_containing
from tests.support.postgres import PostgreSQL

pytestmark = pytest.mark.slow

TERRAFORM_ENV = {
    "TF_CLI_CONFIG_FILE": str(REPO / "terraform" / "terraformrc"),
    "CHECKPOINT_DISABLE": "1",
    "TF_IN_AUTOMATION": "1",
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgreSQL]:
    server = PostgreSQL.create()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path: Path, openbao, sandbox, sandbox_key: str) -> GatewayProject:
    """dev and prod, one host each, their keys in OpenBao; the local backend until a test says otherwise."""
    prefix = f"backends-{uuid.uuid4().hex[:8]}"
    for env in ("dev", "prod"):
        openbao.client().secrets.kv.v2.create_or_update_secret(
            path=f"{prefix}/{env}", secret={"api_key": sandbox_key}, mount_point="secret"
        )
    project = GatewayProject(
        root=tmp_path / "project",
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=sandbox.base_url,
        environments={"dev": ["dev-1"], "prod": ["prod-1"]},
        common={"gateway_vault_path": prefix + "/{{ gateway_environment }}", "gateway_verify": False},
    )
    project.root.mkdir()
    project.write_inventory()
    return project


def _schema() -> str:
    return f"gw_{uuid.uuid4().hex[:10]}"


class LockHolder:
    """``terraform apply`` waiting at its approval prompt: it holds the environment's state lock."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            # A change of someone else's, so that Terraform asks before applying it.
            ["terraform", "apply", "-no-color", "-var", 'tags={"changed_by"="someone else"}'],
            cwd=root,
            env={**os.environ, **TERRAFORM_ENV, "TF_INPUT": "1", **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        seen = ""
        assert self.proc.stdout is not None
        while "Enter a value:" not in seen:
            char = self.proc.stdout.read(1)
            if not char:
                raise AssertionError(f"terraform apply ended before asking for approval:\n{seen}")
            seen += char
        self.output = seen

    def kill(self) -> None:
        """SIGKILL, as a run killed in the middle of its apply."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def test_pg_backend_state_lives_in_postgres_and_its_password_nowhere_else(
    project: GatewayProject, postgres: PostgreSQL, tmp_path: Path
) -> None:
    # The connection string comes as AWX's "Terraform backend configuration" credential brings it: a file
    # named by TF_BACKEND_CONFIG_FILE. The inventory adds the schema.
    credential = tmp_path / "awx" / "backend.hcl"
    credential.parent.mkdir()
    credential.write_text(f'conn_str = "{postgres.conn_str()}"\n')
    project.extra_env["TF_BACKEND_CONFIG_FILE"] = str(credential)
    schemas = {env: _schema() for env in ("dev", "prod")}
    for env, schema in schemas.items():
        project.set(env, gateway_state_backend="pg", gateway_state_backend_config={"schema_name": schema})

    run = project.playbook(verbosity=4)

    assert run.returncode == 0, run.explain()
    assert postgres.password not in run.output
    assert files_containing(project.root, postgres.password) == []
    for env, schema in schemas.items():
        rows = postgres.states(schema)
        assert list(rows) == ["default"]
        state = json.loads(rows["default"])
        assert state["outputs"]["gateway_config"]["value"]["environment"] == env
        assert not project.state_file(env).exists()
        assert not (project.work_dir / env / ".backend").exists()
    # Terraform keeps the backend's settings in the work directory: the host and schema, not the password.
    cached = json.loads((project.work_dir / "dev" / ".terraform" / "terraform.tfstate").read_text())
    assert cached["backend"]["type"] == "pg"
    assert cached["backend"]["config"]["schema_name"] == schemas["dev"]


def test_a_second_deploy_waits_for_the_pg_lock_and_a_killed_apply_leaves_none(
    project: GatewayProject, postgres: PostgreSQL
) -> None:
    schema = _schema()
    project.environments = {"dev": ["dev-1"]}
    project.set(
        "dev",
        gateway_state_backend="pg",
        gateway_state_backend_config={"conn_str": postgres.conn_str(), "schema_name": schema},
    )
    assert (first := project.playbook()).returncode == 0, first.explain()
    serial = json.loads(postgres.states(schema)["default"])["serial"]

    # Someone else's apply of dev holds the lock; the deploy waits, and fails when its timeout runs out.
    project.set("dev", gateway_rate_limit_rpm=25)
    holder = LockHolder(project.work_dir / "dev", {"PGPASSWORD": postgres.password})
    try:
        held = project.playbook(extra_vars={"gateway_terraform_lock_timeout": 1})
        assert held.returncode != 0
        assert "is locked by another PostgreSQL session: session " in held.stdout, held.explain()
        assert '"terraform dev ' in held.stdout  # the holder's application_name: environment, user@host
        assert "there is no lock to force-unlock" in held.stdout
        assert postgres.password not in held.output

        # With time to wait, a deploy waits for the holder, which is killed in the middle of its apply.
        waiting = subprocess.Popen(
            _playbook_argv(project, {"gateway_terraform_lock_timeout": 300}),
            cwd=REPO,
            env=project.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Its plan is running and cannot finish while the holder lives.
        _wait_for_terraform("plan", "-lock-timeout=300s")
        assert waiting.poll() is None
        holder.kill()
        output, _ = waiting.communicate(timeout=600)
    finally:
        if holder.proc.poll() is None:
            holder.kill()

    assert waiting.returncode == 0, output
    state = json.loads(postgres.states(schema)["default"])
    assert state["serial"] == serial + 1
    assert state["outputs"]["gateway_config"]["value"]["models"]["deepseek-v3.2"]["rate_limit_rpm"] == 25
    assert (
        json.loads((project.host_dir("dev-1") / "gateway.json").read_text())["models"]["gpt-4.1"]["rate_limit_rpm"]
        == 10
    )


def _playbook_argv(project: GatewayProject, extra_vars: dict[str, object]) -> list[str]:
    """ansible-playbook deploy.yml as GatewayProject.playbook runs it, to start in the background."""
    binary = REPO / ".venv" / "bin" / "ansible-playbook"
    return [str(binary), "-i", str(project.inventory_dir), str(REPO / "deploy.yml"), "-e", json.dumps(extra_vars)]


def _wait_for_terraform(*words: str) -> None:
    """Until a terraform process whose command line has every one of ``words`` runs."""
    for _ in range(2400):
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"terraform") and all(word.encode() in argv for word in words):
                return
        subprocess.run(["sleep", "0.25"], check=True)
    raise AssertionError(f"no terraform process with {words} started")


def test_a_held_local_lock_names_its_holder_and_the_force_unlock_command(project: GatewayProject) -> None:
    project.environments = {"dev": ["dev-1"]}
    project.write_inventory()
    assert (first := project.playbook()).returncode == 0, first.explain()
    before = project.snapshot()

    project.set("dev", gateway_rate_limit_rpm=25)
    holder = LockHolder(project.work_dir / "dev")
    try:
        info = json.loads((project.state_dir / "dev" / ".terraform.tfstate.lock.info").read_text())
        run = project.playbook(extra_vars={"gateway_terraform_lock_timeout": 1})
        assert run.returncode != 0
        root = project.work_dir / "dev"
        assert f"is locked by {info['Who']} (apply since " in run.stdout, run.explain()
        assert f"lock ID {info['ID']}" in run.stdout
        assert f"terraform -chdir={root} force-unlock -force {info['ID']}" in run.stdout
        assert project.snapshot() == before

        # Killed in the middle of its apply: the next deploy converges.
        holder.kill()
    finally:
        if holder.proc.poll() is None:
            holder.kill()
    rerun = project.playbook()
    assert rerun.returncode == 0, rerun.explain()
    assert project.state("dev")["outputs"]["rate_limit_config"]["value"]["rate_limits"][0]["requests"] == 25
    assert json.loads((project.host_dir("dev-1") / "rate-limits.json").read_text())["rate_limits"][0]["requests"] == 25


def test_invalid_backend_settings_fail_before_anything_is_touched(project: GatewayProject, sandbox) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    project.set(
        "dev",
        gateway_state_backend="pg",
        gateway_state_backend_config={"conn_str": f"postgres://u:{password}@db/tf", "schema": "x"},
    )
    project.set("prod", gateway_state_backend="s3", gateway_state_backend_config={"access_key": "AKIA" + password})
    sandbox.clear_requests()

    run = project.playbook(verbosity=3)

    assert run.returncode != 0
    assert "gateway_state_backend_config.schema is not a pg backend setting" in run.stdout, run.explain()
    assert "gateway_state_backend_config.bucket is required for the s3 backend" in run.stdout
    assert "access_key and secret_key go together" in run.stdout
    assert password not in run.output
    assert not project.work_dir.exists()
    assert project.snapshot() == {}
    assert sandbox.requests() == []  # not even the preflight ran


def test_s3_backend_configuration_is_accepted_by_terraform(project: GatewayProject, unused_tcp_port: int) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    project.environments = {"dev": ["dev-1"]}
    project.set(
        "dev",
        gateway_state_backend="s3",
        gateway_state_backend_config={
            "bucket": "gateway-state",
            "region": "eu-west-1",
            "access_key": "AKIAGATEWAYTEST",
            "secret_key": secret,
            "endpoints": {"s3": f"http://127.0.0.1:{unused_tcp_port}"},
            "use_path_style": True,
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "skip_region_validation": True,
            "max_retries": 1,
        },
    )

    run = project.playbook(verbosity=4)

    # Terraform took every generated setting (no "Unsupported argument") and then found no S3 to talk to.
    assert run.returncode != 0
    assert "cannot initialise the state backend of environment 'dev'" in run.stdout, run.explain()
    assert "s3://gateway-state/aigateway/dev/terraform.tfstate" in run.stdout
    assert "Unsupported argument" not in run.output and "Invalid" not in run.stdout
    assert secret not in run.output
    # The inventory holds it, as inventories do (in Ansible Vault, in real life); nothing the run wrote does.
    assert [p for p in files_containing(project.root, secret) if project.inventory_dir not in p.parents] == []
    assert not (project.work_dir / "dev" / ".backend").exists()

    # The generated root, s3 backend block included, is valid Terraform.
    root = project.work_dir / "dev"
    assert 'backend "s3" {}' in (root / "main.tf").read_text()
    env = {**os.environ, **TERRAFORM_ENV, "TF_DATA_DIR": str(project.root / "validate")}
    for argv in (["terraform", "init", "-backend=false", "-input=false", "-no-color"], ["terraform", "validate"]):
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
