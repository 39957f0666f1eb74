# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller side of aigateway.ops.terraform_root (documented in plugins/modules/terraform_root.py).

An environment's Terraform root lives on the controller, so its files are written here, in the
worker that runs the task: no module is sent anywhere and no Python starts for them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "files", "directories"))
    _supports_check_mode = True

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        root = Path(str(args.get("path") or ""))
        files = args.get("files") or {}
        if not root.is_absolute():
            return {**result, "failed": True, "msg": f"path must be an absolute directory, got '{root}'"}
        if not isinstance(files, Mapping):
            return {**result, "failed": True, "msg": "files must be a mapping of file names to their content"}
        bad = sorted(str(name) for name in files if not _plain_name(str(name)))
        if bad:
            return {**result, "failed": True, "msg": f"files must be plain names inside path, not {', '.join(bad)}"}

        check = bool(self._task.check_mode)
        directories = [root, *(Path(str(path)) for path in args.get("directories") or [])]
        try:
            created = [str(path) for path in directories if _ensure_directory(path, check)]
            changed_files, diffs = [], []
            for name, content in files.items():
                path = root / str(name)
                before = _write(path, str(content), check)
                if before is not None:
                    changed_files.append(str(name))
                    diffs.append(
                        {"before": before, "after": str(content), "before_header": str(path), "after_header": str(path)}
                    )
        except OSError as exc:
            return {**result, "failed": True, "msg": f"cannot write the Terraform root {root}: {exc.strerror}"}

        result.update(changed=bool(created or diffs), created_directories=created, changed_files=changed_files)
        if self._task.diff and diffs:
            result["diff"] = diffs
        return result


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _ensure_directory(path: Path, check: bool) -> bool:
    """Create the directory (0700) if missing; True when it was (or would be) created."""
    if path.is_dir():
        return False
    if not check:
        path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        path.chmod(DIRECTORY_MODE)
    return True


def _write(path: Path, content: str, check: bool) -> str | None:
    """Replace the file (0600) when its content differs; the content before, or None when unchanged."""
    try:
        before: str | None = path.read_text()
    except FileNotFoundError:
        before = None
    if before == content:
        if not check and path.stat().st_mode & 0o777 != FILE_MODE:
            path.chmod(FILE_MODE)
        return None
    if not check:
        # A reader never sees half a file: the new content is renamed over the old.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return before or ""
