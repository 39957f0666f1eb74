"""aigateway.ops.gateway_files, run in-process on real files in a temporary directory."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

_COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.aigateway.ops.plugins.modules import gateway_files  # noqa: E402

CANARY_CREDENTIALS = "AI_GATEWAY_API_KEY=sk-canary-7f3e2d1c0b9a\n"


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> dict[str, Any]:
    """Run the module's main() with these arguments; return its JSON result."""
    capsys.readouterr()
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        gateway_files.main()
    out = capsys.readouterr().out
    assert "sk-canary" not in out
    result = json.loads(out)
    assert (exited.value.code == 0) != bool(result.get("failed")), result
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_the_directory_and_writes_every_file(capsys, tmp_path):
    target = tmp_path / "etc" / "gateway"
    result = run_module(
        capsys, path=str(target), files={"a.json": "{}\n", "b.json": "[]\n"}, directory_mode="0750", _ansible_diff=True
    )

    assert result["changed"] and result["created"]
    assert result["changed_files"] == ["a.json", "b.json"]
    assert (target / "a.json").read_text() == "{}\n" and (target / "b.json").read_text() == "[]\n"
    assert mode(target) == 0o750 and mode(target / "a.json") == 0o644
    assert {"before_header": "/dev/null", "after_header": str(target / "a.json"), "before": "", "after": "{}\n"} in (
        result["diff"]
    )


def test_unchanged_content_is_left_alone(capsys, tmp_path):
    run_module(capsys, path=str(tmp_path), files={"a.json": "{}\n"})
    inode = (tmp_path / "a.json").stat().st_ino

    result = run_module(capsys, path=str(tmp_path), files={"a.json": "{}\n"}, _ansible_diff=True)

    assert not result["changed"] and result["changed_files"] == [] and "diff" not in result
    assert (tmp_path / "a.json").stat().st_ino == inode


def test_changed_content_replaces_the_file_and_shows_the_diff(capsys, tmp_path):
    (tmp_path / "a.json").write_text('{"rpm": 100}\n')
    (tmp_path / "a.json").chmod(0o644)

    result = run_module(capsys, path=str(tmp_path), files={"a.json": '{"rpm": 75}\n'}, _ansible_diff=True)

    assert result["changed_files"] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == '{"rpm": 75}\n'
    assert result["diff"] == [
        {
            "before_header": str(tmp_path / "a.json"),
            "after_header": str(tmp_path / "a.json"),
            "before": '{"rpm": 100}\n',
            "after": '{"rpm": 75}\n',
        }
    ]
    assert sorted(os.listdir(tmp_path)) == ["a.json"]  # no temporary file left behind


def test_a_mode_change_alone_is_a_change(capsys, tmp_path):
    (tmp_path / "a.json").write_text("{}\n")
    (tmp_path / "a.json").chmod(0o666)

    result = run_module(capsys, path=str(tmp_path), files={"a.json": "{}\n"}, _ansible_diff=True)

    assert result["changed_files"] == ["a.json"]
    assert mode(tmp_path / "a.json") == 0o644
    assert result["diff"][0]["before"] == {"mode": "0666"} and result["diff"][0]["after"] == {"mode": "0644"}


def test_check_mode_reports_and_writes_nothing(capsys, tmp_path):
    (tmp_path / "a.json").write_text("old\n")

    result = run_module(
        capsys,
        path=str(tmp_path),
        files={"a.json": "new\n", "b.json": "b\n"},
        _ansible_check_mode=True,
        _ansible_diff=True,
    )

    assert result["changed"] and result["changed_files"] == ["a.json", "b.json"]
    assert (tmp_path / "a.json").read_text() == "old\n" and not (tmp_path / "b.json").exists()
    assert [d["after"] for d in result["diff"]] == ["new\n", "b\n"]


def test_secret_content_never_leaves_the_module(capsys, tmp_path):
    (tmp_path / "credentials.env").write_text("AI_GATEWAY_API_KEY=sk-canary-old\n")

    # run_module asserts that no canary reaches the module's output, diff included.
    secret_files = {"credentials.env": CANARY_CREDENTIALS}
    result = run_module(capsys, path=str(tmp_path), secret_files=secret_files, mode="0600", _ansible_diff=True)

    assert result["changed_files"] == ["credentials.env"]
    assert result["diff"] == [
        {
            "before_header": str(tmp_path / "credentials.env"),
            "after_header": str(tmp_path / "credentials.env"),
            "prepared": "[content hidden: secret file]",
        }
    ]
    assert (tmp_path / "credentials.env").read_text() == CANARY_CREDENTIALS
    assert mode(tmp_path / "credentials.env") == 0o600


def test_names_outside_the_directory_are_refused(capsys, tmp_path):
    result = run_module(capsys, path=str(tmp_path), files={"../escape": "x", "ok": "y"})

    assert result["failed"]
    assert result["msg"] == f"file names must be plain names inside {tmp_path}, not ../escape"
    assert os.listdir(tmp_path) == []


def test_a_file_where_the_directory_should_be_fails_clearly(capsys, tmp_path):
    (tmp_path / "gateway").write_text("")

    result = run_module(capsys, path=str(tmp_path / "gateway"), files={"a": "b"})

    assert result["failed"] and result["msg"] == f"{tmp_path / 'gateway'} exists and is not a directory"


def test_a_directory_in_a_file_s_place_fails_naming_it(capsys, tmp_path):
    (tmp_path / "a.json").mkdir()

    result = run_module(capsys, path=str(tmp_path), files={"a.json": "{}\n"})

    assert result["failed"] and result["msg"] == f"cannot read {tmp_path / 'a.json'}: Is a directory"
