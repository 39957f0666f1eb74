# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to the aigateway.ops collection: nothing here is a public interface,
# and it may change without notice between releases.

"""A Terraform plan of the ai_gateway module, told in words: counts per action and each setting that changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MASKED = "(sensitive)"

# Settings of gateway.json by where they live in it, and how a reader calls them.
_SETTING_NAMES = {
    ("api_gateway", "base_url"): "base URL",
    ("api_gateway", "timeout_seconds"): "timeout (s)",
    ("api_gateway", "max_retries"): "max retries",
    ("monitoring", "alert_threshold_ms"): "alert threshold (ms)",
    ("credentials", "key_version"): "key version",
    ("credentials", "key_fingerprint"): "key fingerprint",
}
_MODEL_FIELDS = {
    "rate_limit_rpm": "rate limit",
    "fallback_model": "fallback",
    "cache_enabled": "caching",
    "enabled": "enabled",
}


def summarise(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of resources to add, change and destroy, and one line per changed setting."""
    counts = {"add": 0, "change": 0, "destroy": 0}
    changes: list[str] = []
    for resource in plan.get("resource_changes") or []:
        change = resource.get("change") or {}
        actions = list(change.get("actions") or [])
        if actions in (["no-op"], ["read"]):
            continue
        if "create" in actions:
            counts["add"] += 1
        if "delete" in actions:
            counts["destroy"] += 1
        if actions == ["update"]:
            counts["change"] += 1
        before = _settings(change.get("before"), change.get("before_sensitive"))
        after = _settings(change.get("after"), change.get("after_sensitive"))
        if before is None and after is not None:
            changes.append(f"{resource.get('address')} created")
        elif after is None and before is not None:
            changes.append(f"{resource.get('address')} destroyed")
        elif before is not None and after is not None:
            changes.extend(_compare(before, after))
    outputs = sorted(
        name
        for name, change in (plan.get("output_changes") or {}).items()
        if list((change or {}).get("actions") or ["no-op"]) != ["no-op"]
    )
    if outputs and not any(counts.values()):
        changes.append("outputs changed: " + ", ".join(outputs))
    return {**counts, "changed": plan_changed(plan), "changes": changes}


def plan_changed(plan: Mapping[str, Any]) -> bool:
    """Whether applying the plan would change anything: what ``terraform plan -detailed-exitcode`` exits 2 for.

    Terraform 1.8 and later write that answer into the plan JSON as ``applyable``. Older releases do
    not, so the same rule is applied to the plan's changes: any resource action other than no-op
    (a data source read deferred to the apply counts), a move or an import, and any root output
    whose value changes.
    """
    applyable = plan.get("applyable")
    if isinstance(applyable, bool):
        return applyable
    for resource in plan.get("resource_changes") or []:
        change = resource.get("change") or {}
        if (
            list(change.get("actions") or []) != ["no-op"]
            or resource.get("previous_address")
            or change.get("importing")
        ):
            return True
    return any(
        list((change or {}).get("actions") or ["no-op"]) != ["no-op"]
        for change in (plan.get("output_changes") or {}).values()
    )


def _settings(state: Any, sensitive: Any) -> dict[str, Any] | None:
    """The settings a gateway resource holds, flattened to reader-facing names."""
    if not isinstance(state, Mapping):
        return None
    document = state.get("input") if isinstance(state.get("input"), Mapping) else state
    masks = sensitive.get("input") if isinstance(sensitive, Mapping) else sensitive
    config = document.get("gateway_config") or {}
    limits = (document.get("rate_limit_config") or {}).get("rate_limits") or []
    config_masks = masks.get("gateway_config") if isinstance(masks, Mapping) else masks

    settings: dict[str, Any] = {}
    for (section, key), name in _SETTING_NAMES.items():
        if key in (config.get(section) or {}):
            settings[name] = _masked(config[section][key], config_masks, section, key)
    for limit in limits:
        if limit.get("name") == "global":
            settings["global rate limit"] = limit.get("requests")
    for key, value in (config.get("tags") or {}).items():
        settings[f"tag {key}"] = _masked(value, config_masks, "tags", key)
    models = config.get("models") or {}
    settings["models"] = sorted(models)
    for model, fields in models.items():
        for key, label in _MODEL_FIELDS.items():
            if key in (fields or {}):
                settings[f"{model} {label}"] = fields[key]
    return settings


def _masked(value: Any, masks: Any, *path: str) -> Any:
    """Terraform's *_sensitive mirror says which values must not be shown."""
    for key in path:
        if masks is True:
            return MASKED
        masks = masks.get(key) if isinstance(masks, Mapping) else None
    return MASKED if masks is True else value


def _compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    added = [model for model in after["models"] if model not in before["models"]]
    removed = [model for model in before["models"] if model not in after["models"]]
    if added:
        lines.append("models added: " + ", ".join(added))
    if removed:
        lines.append("models removed: " + ", ".join(removed))
    dropped = {f"{model} {label}" for model in added + removed for label in _MODEL_FIELDS.values()}
    for name in sorted(set(before) | set(after)):
        if name == "models" or name in dropped:
            continue
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name == "key fingerprint" or MASKED in (old, new):
            lines.append(f"{name} changed")
        else:
            lines.append(f"{name} {_word(old)} → {_word(new)}")
    return lines


def _word(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
