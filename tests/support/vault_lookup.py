"""Run the aigateway.ops.vault_kv lookup the way users do: in a real ``ansible`` or ``ansible-playbook`` process.

Each call gets a clean environment (no VAULT_* from the caller, HOME in the test's directory) plus
what the test passes, so that the option / environment / ``~/.vault-token`` precedence is exercised
for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
_RESULT = re.compile(r"^localhost \| (?P<status>SUCCESS|FAILED!) => (?P<json>\{.*?^\})", re.MULTILINE | re.DOTALL)


@dataclass
class LookupRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def result(self) -> dict[str, Any]:
        found = _RESULT.search(self.stdout)
        if not found:
            raise AssertionError(f"no result in the output:\n{self.output[-4000:]}")
        return json.loads(found["json"])

    @property
    def value(self) -> Any:
        assert self.returncode == 0, self.explain()
        return self.result["msg"]

    @property
    def error(self) -> str:
        assert self.returncode != 0, self.explain()
        return str(self.result["msg"])

    @property
    def warnings(self) -> list[str]:
        return [" ".join(line.split()) for line in re.findall(r"\[WARNING\]: (.*)", self.output)]

    def explain(self) -> str:
        return f"rc={self.returncode}\n--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-3000:]}"


def ansible_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without VAULT_*/ANSIBLE_*, HOME set to ``home``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "ANSIBLE_", "AIGATEWAY_"))}
    home.mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    env.update(
        {
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python"),
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        }
    )
    env.update(extra or {})
    return env


def lookup(
    home: Path,
    *terms: str,
    env: Mapping[str, str] | None = None,
    verbosity: int = 0,
    timeout: int = 180,
    **options: Any,
) -> LookupRun:
    """``ansible localhost -m debug -a msg={{ lookup('aigateway.ops.vault_kv', *terms, **options) }}``.

    Option values travel as extra vars, so no value is written into the command line.
    """
    arguments = [json.dumps(term) for term in terms]
    extra_vars = {}
    for name, value in options.items():
        extra_vars[f"lookup_option_{name}"] = value
        arguments.append(f"{name}=lookup_option_{name}")
    expression = "{{ lookup('aigateway.ops.vault_kv', " + ", ".join(arguments) + ") }}"
    command = [str(VENV_BIN / "ansible"), "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={expression}"]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if verbosity:
        command.append("-" + "v" * verbosity)
    proc = subprocess.run(
        command, cwd=REPO, env=ansible_env(home, env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return LookupRun(proc.returncode, proc.stdout, proc.stderr)


def playbook(
    home: Path,
    playbook_path: Path,
    inventory: Path,
    *,
    env: Mapping[str, str] | None = None,
    verbosity: int = 0,
    args: list[str] | None = None,
    timeout: int = 600,
) -> LookupRun:
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *(args or [])]
    if verbosity:
        command.append("-" + "v" * verbosity)
    proc = subprocess.run(
        command, cwd=REPO, env=ansible_env(home, env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return LookupRun(proc.returncode, proc.stdout, proc.stderr)
