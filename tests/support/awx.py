"""What AWX does around a job, redone for tests that cannot have an AWX server.

- :func:`credential_type` loads a definition from ``awx/credential_types/``;
- :func:`inject_credential` renders its injectors the way AWX does for a job
  (sandboxed Jinja2, empty inputs left undefined, each file template written
  0600 under the private data directory's ``env/``), giving the environment
  variables and extra variables the job would receive;
- :func:`copy_checkout` copies the repository as a project update checks it out;
- :func:`module_argument_spec` captures an ``awx.awx`` module's real argument
  spec, so task arguments can be validated without a server.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_TYPES_DIR = REPO / "awx" / "credential_types"


def credential_type(name: str) -> dict[str, Any]:
    """The definition in awx/credential_types/<name>.yml."""
    return yaml.safe_load((CREDENTIAL_TYPES_DIR / f"{name}.yml").read_text())


def inject_credential(
    definition: dict[str, Any], inputs: dict[str, Any], private_data_dir: Path
) -> tuple[dict[str, str], dict[str, Any]]:
    """Environment variables and extra variables a job gets from one credential."""
    namespace: dict[str, Any] = {key: value for key, value in inputs.items() if value}
    for field in definition["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False

    sandbox = ImmutableSandboxedEnvironment()
    injectors = definition.get("injectors", {})
    single_file: str | None = None
    named_files: dict[str, str] = {}
    env_dir = private_data_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for label, template in injectors.get("file", {}).items():
        fd, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." in label:
            named_files[label.split(".", 1)[1]] = path
        else:
            single_file = path
    tower = SimpleNamespace(filename=single_file or SimpleNamespace(**named_files))

    env = {
        key: sandbox.from_string(template).render(tower=tower, **namespace)
        for key, template in injectors.get("env", {}).items()
    }
    extra_vars = {
        key: sandbox.from_string(template).render(tower=tower, **namespace)
        for key, template in injectors.get("extra_vars", {}).items()
    }
    return env, extra_vars


def copy_checkout(destination: Path) -> None:
    """The repository's files that git does not ignore, as AWX's project update checks them out (symlinks kept)."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source, target = REPO / name, destination / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def documented_argument_spec(options: dict[str, Any]) -> dict[str, Any]:
    """An argument spec built from a module's documented options (ansible-doc --json), suboptions included.

    awx.awx declares some nested structures (workflow nodes) only in its
    documentation; this spec checks them too.
    """
    spec: dict[str, Any] = {}
    for name, doc in options.items():
        entry: dict[str, Any] = {"type": doc.get("type", "str")}
        for key in ("choices", "elements", "aliases"):
            if key in doc:
                entry[key] = doc[key]
        if doc.get("required"):
            entry["required"] = True
        if "suboptions" in doc:
            entry["options"] = documented_argument_spec(doc["suboptions"])
        spec[name] = entry
    return spec


class _SpecCaptured(Exception):
    pass


def module_argument_spec(module: str) -> dict[str, Any]:
    """The keyword arguments awx.awx.<module> hands to AnsibleModule: argument_spec and its constraints."""
    from ansible.module_utils import basic

    captured: dict[str, Any] = {}
    original = basic.AnsibleModule.__init__

    def capture(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            kwargs["argument_spec"] = args[0]
        captured.update(kwargs)
        raise _SpecCaptured

    basic.AnsibleModule.__init__ = capture  # type: ignore[method-assign]
    try:
        plugin = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{module}")
        with contextlib.suppress(_SpecCaptured):
            plugin.main()
    finally:
        basic.AnsibleModule.__init__ = original  # type: ignore[method-assign]
    if "argument_spec" not in captured:
        raise AssertionError(f"awx.awx.{module} did not build an AnsibleModule")
    return captured
