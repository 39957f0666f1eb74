"""ansible-doc renders every plugin of the collection, and none is undocumented."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
# plugins/<directory> -> ansible-doc's plugin type.
TYPES = {"modules": "module", "lookup": "lookup", "filter": "filter", "test": "test", "callback": "callback"}


def _ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
    return subprocess.run([str(VENV_BIN / "ansible-doc"), *args], cwd=REPO, env=env, capture_output=True, text=True)


def _listed() -> dict[str, dict[str, str]]:
    listed = {}
    for directory, plugin_type in TYPES.items():
        if (REPO / "plugins" / directory).is_dir():
            proc = _ansible_doc("-t", plugin_type, "--list", "--json", "aigateway.ops")
            assert proc.returncode == 0, proc.stderr
            listed[plugin_type] = json.loads(proc.stdout)
    return listed


LISTED = _listed()
PLUGINS = [(plugin_type, name) for plugin_type, names in LISTED.items() for name in sorted(names)]


def test_every_plugin_file_is_listed() -> None:
    for directory, plugin_type in TYPES.items():
        for path in (REPO / "plugins" / directory).glob("*.py"):
            if directory in {"modules", "lookup", "callback"} and not path.name.startswith("_"):
                assert f"aigateway.ops.{path.stem}" in LISTED[plugin_type], path


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[subprocess.CompletedProcess[str], dict]]:
    """Per plugin type: ansible-doc's text rendering of all its plugins at once, and their JSON docs."""
    result = {}
    for plugin_type, names in LISTED.items():
        text = _ansible_doc("-t", plugin_type, *names)
        docs = json.loads(_ansible_doc("-t", plugin_type, "--json", *names).stdout)
        result[plugin_type] = (text, docs)
    return result


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS, ids=[f"{t}:{n}" for t, n in PLUGINS])
def test_ansible_doc_renders_the_plugin(plugin_type: str, name: str, rendered: dict) -> None:
    assert LISTED[plugin_type][name] != "UNDOCUMENTED", f"{name} has no documentation"
    text, docs = rendered[plugin_type]
    assert text.returncode == 0, text.stderr
    assert "[WARNING]" not in text.stderr and "[ERROR]" not in text.stderr, text.stderr
    assert f"> {plugin_type.upper()} {name}" in text.stdout or name in text.stdout
    doc = docs[name]
    assert doc["doc"]["short_description"] and doc["doc"]["description"] and doc["doc"]["author"]
    assert doc["examples"], f"{name} has no examples"
