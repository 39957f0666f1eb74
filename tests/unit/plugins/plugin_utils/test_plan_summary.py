"""The plan summary: counts per action and each changed setting in words, from `terraform show -json` output."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.aigateway.ops.plugins.filter.plan_changes import plan_changes
from ansible_collections.aigateway.ops.plugins.plugin_utils._plan_summary import summarise

ADDRESS = "module.ai_gateway.terraform_data.gateway"


def _input(models: dict[str, int], *, rpm: int = 100, caching: bool = True, key_version: int = 6) -> dict[str, Any]:
    return {
        "gateway_config": {
            "environment": "prod",
            "api_gateway": {"base_url": "https://api.example/v1", "timeout_seconds": 30, "max_retries": 3},
            "models": {
                name: {"enabled": True, "rate_limit_rpm": limit, "cache_enabled": caching, "fallback_model": None}
                for name, limit in models.items()
            },
            "monitoring": {"alert_threshold_ms": 500, "log_requests": True, "track_latency": True},
            "credentials": {"source": "vault", "key_version": key_version, "key_fingerprint": f"f{key_version:015d}"},
            "tags": {"team": "platform"},
        },
        "rate_limit_config": {
            "rate_limits": [{"name": "global", "requests": rpm, "window_ms": 60000, "burst": rpm * 2}]
        },
    }


def _plan(before: dict[str, Any] | None, after: dict[str, Any] | None, actions: list[str]) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": ADDRESS,
                "change": {
                    "actions": actions,
                    "before": None if before is None else {"id": "x", "input": before, "output": before},
                    "after": None if after is None else {"input": after},
                    "before_sensitive": False if before is None else {"input": {}, "output": {}},
                    "after_sensitive": False if after is None else {"input": {}},
                },
            }
        ],
    }


BASE = _input({"gpt-4.1": 30, "deepseek-v3.2": 100})


def test_no_change_counts_nothing_and_says_nothing() -> None:
    summary = summarise(_plan(BASE, copy.deepcopy(BASE), ["no-op"]))
    assert summary == {"add": 0, "change": 0, "destroy": 0, "changed": False, "changes": []}


def test_a_rate_limit_change_names_every_limit_that_moves() -> None:
    summary = summarise(_plan(BASE, _input({"gpt-4.1": 60, "deepseek-v3.2": 100}), ["update"]))
    assert (summary["add"], summary["change"], summary["destroy"], summary["changed"]) == (0, 1, 0, True)
    assert summary["changes"] == ["gpt-4.1 rate limit 30 → 60"]


def test_a_removed_model_is_named_once_without_its_settings() -> None:
    summary = summarise(_plan(BASE, _input({"gpt-4.1": 30}), ["update"]))
    assert summary["changes"] == ["models removed: deepseek-v3.2"]


def test_an_added_model_and_caching_off() -> None:
    after = _input({"gpt-4.1": 30, "deepseek-v3.2": 100, "gemini-2.5-flash": 100}, caching=False)
    changes = summarise(_plan(BASE, after, ["update"]))["changes"]
    assert changes[0] == "models added: gemini-2.5-flash"
    assert "gpt-4.1 caching on → off" in changes and "deepseek-v3.2 caching on → off" in changes
    assert not any(line.startswith("gemini-2.5-flash ") for line in changes)


def test_a_key_rotation_shows_the_version_and_only_that_the_fingerprint_changed() -> None:
    changes = summarise(_plan(BASE, _input({"gpt-4.1": 30, "deepseek-v3.2": 100}, key_version=7), ["update"]))[
        "changes"
    ]
    assert changes == ["key fingerprint changed", "key version 6 → 7"]
    assert not any("f00000" in line for line in changes)


def test_the_global_limit_and_sensitive_values() -> None:
    plan = _plan(BASE, _input({"gpt-4.1": 30, "deepseek-v3.2": 100}, rpm=75), ["update"])
    plan["resource_changes"][0]["change"]["after"]["input"]["gateway_config"]["tags"]["team"] = "payments"
    plan["resource_changes"][0]["change"]["after_sensitive"] = {"input": {"gateway_config": {"tags": {"team": True}}}}
    changes = summarise(plan)["changes"]
    assert "global rate limit 100 → 75" in changes
    assert "tag team changed" in changes
    assert not any("payments" in line for line in changes)


def test_create_and_destroy_are_counted() -> None:
    created = summarise(_plan(None, BASE, ["create"]))
    assert (created["add"], created["change"], created["destroy"]) == (1, 0, 0)
    assert created["changes"] == [f"{ADDRESS} created"]
    replaced = summarise(_plan(BASE, BASE, ["delete", "create"]))
    assert (replaced["add"], replaced["change"], replaced["destroy"]) == (1, 0, 1)


def test_the_filter_rejects_what_is_not_a_plan() -> None:
    with pytest.raises(AnsibleFilterError, match="terraform show -json"):
        plan_changes("not a plan")
    assert plan_changes(_plan(BASE, BASE, ["no-op"]))["changed"] is False


def test_changed_is_what_terraform_says_the_plan_would_apply() -> None:
    # Terraform >= 1.8 records it: the answer of `terraform plan -detailed-exitcode`.
    assert summarise({**_plan(BASE, BASE, ["no-op"]), "applyable": True})["changed"] is True
    assert summarise({**_plan(BASE, _input({"gpt-4.1": 60}), ["update"]), "applyable": False})["changed"] is False


def test_without_applyable_an_output_change_alone_is_a_change() -> None:
    plan = _plan(BASE, BASE, ["no-op"])
    assert summarise(plan)["changed"] is False
    plan["output_changes"] = {"summary": {"actions": ["update"]}, "gateway_config": {"actions": ["no-op"]}}
    summary = summarise(plan)
    assert (summary["add"], summary["change"], summary["destroy"], summary["changed"]) == (0, 0, 0, True)
    assert summary["changes"] == ["outputs changed: summary"]


def test_without_applyable_a_deferred_read_or_a_move_is_a_change() -> None:
    read = _plan(BASE, BASE, ["read"])
    assert summarise(read)["changed"] is True
    assert summarise(read)["changes"] == []
    moved = _plan(BASE, BASE, ["no-op"])
    moved["resource_changes"][0]["previous_address"] = "terraform_data.gateway"
    assert summarise(moved)["changed"] is True
