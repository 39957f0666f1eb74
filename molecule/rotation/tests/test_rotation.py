"""What the rotation left on each host, in Terraform, and in the sandbox's request log."""

from __future__ import annotations

import json
import os
import urllib.request

import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("all")
HOSTS = ["prod-app-1", "prod-app-2", "prod-app-3"]
SERVICES = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "services")
MODELS = ["gpt-4.1", "claude-sonnet-4-20250514", "gemini-2.5-flash", "deepseek-v3.2"]
# The controller's proof, then one host's: /models and one probe per model each.
PROOF_REQUESTS = 2 * (1 + len(MODELS))


def _read(*parts: str) -> str:
    with open(os.path.join(SERVICES, *parts)) as stream:
        return stream.read().strip()


def _config_dir(hostname: str) -> str:
    return os.path.join(SERVICES, "hosts", hostname)


def _candidate_requests() -> list[dict]:
    control = _read("sandbox", "base_url").removesuffix("/v1") + "/_sandbox/requests"
    with urllib.request.urlopen(control, timeout=10) as answer:  # noqa: S310 - the scenario's own sandbox
        log = json.load(answer)["requests"]
    return [entry for entry in log if entry["key_label"] == "candidate"]


def test_every_host_runs_the_candidate_as_version_2(host) -> None:
    name = host.backend.get_hostname()
    credentials = host.file(f"{_config_dir(name)}/credentials.env")
    gateway = json.loads(host.file(f"{_config_dir(name)}/gateway.json").content_string)

    assert credentials.mode == 0o600
    assert f"AI_GATEWAY_API_KEY={_read('keys', 'prod-candidate')}" in credentials.content_string
    assert f"AI_GATEWAY_API_KEY={_read('keys', 'prod')}" not in credentials.content_string
    assert gateway["credentials"]["key_version"] == 2


def test_terraform_state_records_version_2() -> None:
    state = json.loads(_read("state", "prod", "terraform.tfstate"))

    credentials = state["outputs"]["gateway_config"]["value"]["credentials"]
    assert credentials["key_version"] == 2
    assert _read("keys", "prod-candidate") not in json.dumps(state)


def test_the_candidate_was_proven_before_any_host_switched() -> None:
    used = _candidate_requests()
    proofs = used[:PROOF_REQUESTS]
    first_switch = min(os.stat(f"{_config_dir(name)}/credentials.env").st_mtime for name in HOSTS)

    assert [entry["path"] for entry in proofs] == 2 * (["/v1/models"] + ["/v1/chat/completions"] * len(MODELS))
    assert {entry["max_tokens"] for entry in proofs if entry["model"]} == {1}
    assert proofs[-1]["time"] < first_switch
    # Then each host verified the candidate right after it switched.
    assert [entry["path"] for entry in used[PROOF_REQUESTS : PROOF_REQUESTS + 3]] == ["/v1/models"] * 3
    assert {entry["status"] for entry in used} == {200}
