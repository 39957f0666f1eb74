"""Each role's README agrees with its meta/argument_specs.yml (tools/role-readme writes it)."""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "role-readme"
ROLES = sorted(path.parent.parent for path in REPO.glob("roles/*/meta/argument_specs.yml"))


def _tool() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("role_readme", str(TOOL))
    spec = importlib.util.spec_from_loader("role_readme", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _specs(role: Path) -> dict[str, Any]:
    return yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def test_every_role_readme_is_what_the_tool_writes_from_its_specs() -> None:
    proc = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_the_readme_lists_every_variable_with_its_type_and_default(role: Path) -> None:
    readme = (role / "README.md").read_text()
    for entry_point, entry in _specs(role).items():
        section = readme.split(f"## Entry point `{entry_point}`", 1)[1].split("\n## ", 1)[0]
        rows = {line.split("|")[1].strip().strip("`"): line for line in section.splitlines() if line.startswith("| `")}
        assert set(rows) == set(entry.get("options") or {}), entry_point
        for option, spec in (entry.get("options") or {}).items():
            cells = [cell.strip() for cell in rows[option].split("|")[1:-1]]
            assert cells[1].startswith(spec.get("type", "str")), option
            if spec.get("required"):
                assert cells[2] == "required", option
            elif isinstance(spec.get("default"), (int, bool)):
                assert cells[2] == f"`{str(spec['default']).lower()}`", option


def test_a_change_in_the_specs_makes_the_readme_stale() -> None:
    tool = _tool()
    role = REPO / "roles" / "gateway"
    specs = _specs(role)
    assert tool.render("gateway", specs) == (role / "README.md").read_text()

    changed = copy.deepcopy(specs)
    changed["main"]["options"]["gateway_rate_limit_rpm"]["default"] = 61
    assert tool.render("gateway", changed) != (role / "README.md").read_text()


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("C(gateway.json) in O(gateway_config_dir)", "`gateway.json` in `gateway_config_dir`"),
        ("O(main/gateway_vault_version) pinned", "`gateway_vault_version` pinned"),
        ("O(aigateway.ops.vault_kv#lookup:run_cache=false)", "`run_cache=false`"),
        ("O(aigateway.ops.gateway#role:main:gateway_vault_version)", "`gateway_vault_version`"),
        ("with P(aigateway.ops.models_check#module), V(true)", "with `aigateway.ops.models_check`, `true`"),
        ("masked as C((hidden)) or E(VAULT_ADDR)", "masked as `(hidden)` or `VAULT_ADDR`"),
        ("see L(the docs,https://example.com/x)", "see [the docs](https://example.com/x)"),
        ("two\n   lines", "two lines"),
    ],
)
def test_ansible_markup_becomes_markdown(markup: str, markdown: str) -> None:
    assert _tool().markdown(markup) == markdown
