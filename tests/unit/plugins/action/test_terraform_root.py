"""aigateway.ops.terraform_root, run by real ``ansible`` ad-hoc commands against real files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[4]
ANSIBLE = REPO / ".venv" / "bin" / "ansible"


def run(args: dict[str, Any], *flags: str) -> tuple[int, dict[str, Any], str]:
    """The action on localhost; its exit code, its result and the whole output."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    cmd = [str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local", "-m", "aigateway.ops.terraform_root"]
    proc = subprocess.run(
        [*cmd, "-a", json.dumps(args), *flags], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result, proc.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_root_then_changes_nothing(tmp_path: Path) -> None:
    root, state = tmp_path / "work" / "prod", tmp_path / "state" / "prod"
    args = {"path": str(root), "directories": [str(state)], "files": {"main.tf": "# root\n", "x.json": "{}\n"}}

    code, first, _ = run(args)
    assert code == 0 and first["changed"], first
    assert first["changed_files"] == ["main.tf", "x.json"]
    assert first["created_directories"] == [str(root), str(state)]
    assert (root / "main.tf").read_text() == "# root\n"
    assert mode(root) == mode(state) == 0o700 and mode(root / "x.json") == 0o600

    code, again, _ = run(args)
    assert code == 0 and not again["changed"] and again["changed_files"] == []


def test_diff_shows_a_changed_input_and_check_mode_writes_nothing(tmp_path: Path) -> None:
    run({"path": str(tmp_path), "files": {"x.json": '{"rpm": 100}\n', "main.tf": "# root\n"}})

    args = {"path": str(tmp_path), "files": {"x.json": '{"rpm": 75}\n', "main.tf": "# root\n"}}
    code, result, out = run(args, "--check", "--diff")

    assert code == 0 and result["changed"] and result["changed_files"] == ["x.json"]
    assert result["diff"] == [
        {
            "before": '{"rpm": 100}\n',
            "after": '{"rpm": 75}\n',
            "before_header": str(tmp_path / "x.json"),
            "after_header": str(tmp_path / "x.json"),
        }
    ]
    assert (tmp_path / "x.json").read_text() == '{"rpm": 100}\n'


def test_a_name_outside_the_root_is_refused(tmp_path: Path) -> None:
    code, result, _ = run({"path": str(tmp_path / "root"), "files": {"../main.tf": "x"}})

    assert code != 0 and result["msg"] == "files must be plain names inside path, not ../main.tf"
    assert not (tmp_path / "root").exists() and not (tmp_path / "main.tf").exists()


def test_a_relative_root_is_refused(tmp_path: Path) -> None:
    code, result, _ = run({"path": "work/prod", "files": {"main.tf": "x"}})

    assert code != 0 and result["msg"] == "path must be an absolute directory, got 'work/prod'"
