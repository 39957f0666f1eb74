"""What the deploy left on each host, read through the hosts' own connection."""

from __future__ import annotations

import json
import os

import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("gateway")
SERVICES = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "services")


def _config_dir(hostname: str) -> str:
    return os.path.join(SERVICES, "hosts", hostname)


def _environment(hostname: str) -> str:
    return hostname.split("-")[0]


def test_gateway_json_matches_the_environment(host) -> None:
    name = host.backend.get_hostname()
    gateway = json.loads(host.file(f"{_config_dir(name)}/gateway.json").content_string)
    assert gateway["environment"] == _environment(name)
    expected = {"dev": {"gpt-4.1", "deepseek-v3.2"}, "prod": {"gpt-4.1", "claude-sonnet-4-20250514",
                                                             "gemini-2.5-flash", "deepseek-v3.2"}}
    assert set(gateway["models"]) == expected[_environment(name)]
    assert gateway["credentials"]["key_version"] == 1


def test_rate_limits_follow_the_group_vars(host) -> None:
    name = host.backend.get_hostname()
    limits = json.loads(host.file(f"{_config_dir(name)}/rate-limits.json").content_string)["rate_limits"]
    global_limit = {"dev": 20, "prod": 100}[_environment(name)]
    assert limits[0] == {"name": "global", "requests": global_limit, "window_ms": 60000, "burst": 2 * global_limit}
    per_model = {entry["name"]: entry["requests"] for entry in limits[1:]}
    assert per_model == ({} if _environment(name) == "dev" else {"model:claude-sonnet-4-20250514": 25, "model:gpt-4.1": 30})


def test_credentials_are_private_and_hold_the_environment_key(host) -> None:
    name = host.backend.get_hostname()
    credentials = host.file(f"{_config_dir(name)}/credentials.env")
    assert credentials.mode == 0o600
    stored = open(os.path.join(SERVICES, "keys", _environment(name))).read().strip()
    assert f"AI_GATEWAY_API_KEY={stored}" in credentials.content_string
    assert "AI_GATEWAY_BASE_URL=http" in credentials.content_string
