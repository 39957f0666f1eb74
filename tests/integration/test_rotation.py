"""playbooks/rotate.yml end to end: real OpenBao, Terraform and ansible-playbook, the sandbox API.

Each test deploys prod (three hosts) on key version 1, stores a candidate as version 2 and
rotates. The sandbox's request log tells which key was used when.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.support.gateway import EXAMPLE_SETTINGS, GatewayProject, Run
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.slow

HOSTS = ["prod-1", "prod-2", "prod-3"]
MODELS = EXAMPLE_SETTINGS["prod"]["gateway_allowed_models"]
# Each proof (controller, then one host) lists the models and probes each one.
PROOF_REQUESTS = 2 * (1 + len(MODELS))


class Rotation:
    """A deployed prod on the previous key, and a candidate stored as the next version."""

    def __init__(self, project: GatewayProject, openbao, sandbox: SandboxServer, prefix: str) -> None:
        self.project = project
        self.openbao = openbao
        self.sandbox = sandbox
        self.path = f"{prefix}/prod"
        self.previous = f"sk-previous-{uuid.uuid4().hex}"
        self.candidate = f"sk-candidate-{uuid.uuid4().hex}"

    def store(self, key: str) -> None:
        self.openbao.client().secrets.kv.v2.create_or_update_secret(
            path=self.path, secret={"api_key": key}, mount_point="secret"
        )

    def run(self, **extra_vars: object) -> Run:
        return self.project.playbook("playbooks/rotate.yml", limit="prod", extra_vars=extra_vars or None)

    def key_on(self, host: str) -> str:
        lines = (self.project.host_dir(host) / "credentials.env").read_text().splitlines()
        return next(line.split("=", 1)[1] for line in lines if line.startswith("AI_GATEWAY_API_KEY="))

    def version_on(self, host: str) -> int:
        return json.loads((self.project.host_dir(host) / "gateway.json").read_text())["credentials"]["key_version"]

    def terraform_version(self) -> int:
        return self.project.state("prod")["outputs"]["gateway_config"]["value"]["credentials"]["key_version"]


def failure_message(run: Run) -> str:
    """The message of the task that failed the run, from its one-line error report."""
    marker = "[ERROR]: Task failed: Action failed: "
    lines = [line.split(marker, 1)[1] for line in run.output.splitlines() if marker in line]
    assert lines, run.explain()
    return lines[-1]


@pytest.fixture
def rotation(tmp_path: Path, openbao, sandbox: SandboxServer) -> Rotation:
    prefix = f"rotate-{uuid.uuid4().hex[:8]}"
    project = GatewayProject(
        root=tmp_path,
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=sandbox.base_url,
        environments={"prod": HOSTS},
        common={"gateway_vault_path": prefix + "/{{ gateway_environment }}", "gateway_alert_threshold_ms": 5000},
    )
    project.write_inventory()
    state = Rotation(project, openbao, sandbox, prefix)
    sandbox.accept_key(state.previous, label="previous")
    state.store(state.previous)
    deployed = project.playbook(limit="prod")
    assert deployed.returncode == 0, deployed.explain()
    assert {state.version_on(host) for host in HOSTS} == {1}
    state.store(state.candidate)
    sandbox.clear_requests()
    return state


def test_good_rotation_proves_the_candidate_before_any_host_switches(rotation: Rotation) -> None:
    rotation.sandbox.accept_key(rotation.candidate, label="candidate")
    # A newer version the provider never issued: the pinned version 2 is rotated to, not the newest.
    rotation.store(f"sk-unissued-{uuid.uuid4().hex}")

    run = rotation.run(gateway_rotate_serial=2, gateway_rotate_version=2)

    assert run.returncode == 0, run.explain()
    assert {host: rotation.key_on(host) for host in HOSTS} == dict.fromkeys(HOSTS, rotation.candidate)
    assert {rotation.version_on(host) for host in HOSTS} == {2}
    assert rotation.terraform_version() == 2
    assert "prod: key version 1 -> 2" in run.stdout, run.explain()
    assert "hosts switched: 3 of 3" in run.stdout
    for host in HOSTS:
        assert f"{host} " in run.stdout.split("verification latency: ", 1)[1].splitlines()[0]

    # The candidate's first requests are the two proofs, every model probed with one token; the
    # last of them came before the first host's credentials changed.
    used = rotation.sandbox.requests(key=rotation.candidate)
    proofs = used[:PROOF_REQUESTS]
    assert [entry["path"] for entry in proofs] == 2 * (["/v1/models"] + ["/v1/chat/completions"] * len(MODELS))
    assert [entry["model"] for entry in proofs if entry["model"]] == 2 * MODELS
    assert {entry["max_tokens"] for entry in proofs if entry["model"]} == {1}
    assert {entry["status"] for entry in used} == {200}
    first_switch = min((rotation.project.host_dir(host) / "credentials.env").stat().st_mtime for host in HOSTS)
    assert proofs[-1]["time"] < first_switch
    # Then one verification per host, right after it switched.
    assert [entry["path"] for entry in used[PROOF_REQUESTS:]] == ["/v1/models"] * len(HOSTS)
    assert rotation.sandbox.requests(key=rotation.previous) == []


def test_check_mode_proves_and_plans_but_changes_nothing(rotation: Rotation) -> None:
    rotation.sandbox.accept_key(rotation.candidate)
    before = rotation.project.snapshot()

    run = rotation.project.playbook("playbooks/rotate.yml", limit="prod", check=True)

    assert run.returncode == 0, run.explain()
    words = run.flat
    assert "prod: key version 1 -> 2" in words
    assert "check mode: proven and planned, nothing applied or written" in words
    assert "hosts that would switch: 3 of 3" in words
    assert "prod: 0 to add, 1 to change, 0 to destroy" in words
    assert rotation.project.snapshot() == before
    assert rotation.terraform_version() == 1


def test_a_rejected_candidate_changes_nothing(rotation: Rotation) -> None:
    before = rotation.project.snapshot()

    run = rotation.run()

    assert run.returncode != 0
    message = failure_message(run)
    assert message.startswith("prod: candidate key version 2 of secret/"), message
    assert "was rejected from the controller (key_rejected): 401 Unauthorized" in message
    assert "Invalid API key" in message
    assert message.endswith("Nothing changed: every host still runs key version 1.")
    assert rotation.project.snapshot() == before
    assert rotation.candidate not in run.stdout + run.stderr


def test_the_probe_catches_a_listed_but_refused_model(rotation: Rotation) -> None:
    rotation.sandbox.accept_key(rotation.candidate, refused_models=["gemini-2.5-flash"])
    before = rotation.project.snapshot()

    run = rotation.run()

    assert run.returncode != 0
    message = failure_message(run)
    assert "was rejected from the controller (model_not_permitted)" in message, message
    assert "not permitted for this key: gemini-2.5-flash (403 Forbidden" in message
    assert rotation.project.snapshot() == before


def test_a_failure_mid_rollout_puts_the_previous_key_back_on_every_touched_host(rotation: Rotation) -> None:
    # The candidate survives the proofs and the first host's verification, then the provider revokes it.
    rotation.sandbox.accept_key(rotation.candidate, expires_after_requests=PROOF_REQUESTS + 1)
    untouched = (rotation.project.host_dir("prod-3") / "credentials.env").read_bytes()

    run = rotation.run()

    assert run.returncode != 0
    report = failure_message(run)
    failed_task = '"Verify that /models answers with every allowed model"'
    assert report.startswith(f"prod: rotation from key version 1 to 2 failed on prod-2 at {failed_task}: "), report
    assert "401 Unauthorized" in report and "API key has been rotated" in report
    assert "Put back on key version 1 and verified: prod-1, prod-2." in report
    assert "Terraform records version 1 again." in report
    assert {host: rotation.key_on(host) for host in HOSTS} == dict.fromkeys(HOSTS, rotation.previous)
    assert {rotation.version_on(host) for host in HOSTS} == {1}
    assert (rotation.project.host_dir("prod-3") / "credentials.env").read_bytes() == untouched
    assert rotation.terraform_version() == 1
    # prod-1 and prod-2 verified the previous key after the rollback.
    assert [entry["status"] for entry in rotation.sandbox.requests(key=rotation.previous)] == [200, 200]
    assert rotation.candidate not in run.stdout + run.stderr
