"""Run the collection's playbooks for real against a generated inventory.

Each test gets a project directory of its own: an inventory of local-connection
hosts (each with its own gateway_config_dir), the Terraform work and state
directories, Ansible's temporary directories and its log. Everything a run
writes lands there, so a test can search all of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

EXAMPLE_SETTINGS: dict[str, dict[str, Any]] = {
    "dev": {
        "gateway_allowed_models": ["gpt-4.1", "deepseek-v3.2"],
        "gateway_rate_limit_rpm": 20,
        "gateway_model_rate_limits": {"gpt-4.1": 10},
        "gateway_fallback_models": {"gpt-4.1": "deepseek-v3.2"},
    },
    "staging": {
        "gateway_allowed_models": ["gpt-4.1", "claude-sonnet-4-20250514", "deepseek-v3.2"],
        "gateway_rate_limit_rpm": 40,
        "gateway_model_rate_limits": {"gpt-4.1": 20, "claude-sonnet-4-20250514": 15},
        "gateway_fallback_models": {"gpt-4.1": "deepseek-v3.2"},
    },
    "prod": {
        "gateway_allowed_models": ["gpt-4.1", "claude-sonnet-4-20250514", "gemini-2.5-flash", "deepseek-v3.2"],
        "gateway_rate_limit_rpm": 100,
        "gateway_model_rate_limits": {"gpt-4.1": 30, "claude-sonnet-4-20250514": 25},
        "gateway_fallback_models": {"gpt-4.1": "claude-sonnet-4-20250514"},
    },
}

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class Run:
    """The outcome of one ansible-playbook run."""

    returncode: int
    stdout: str
    stderr: str
    args: list[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters per host."""
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in _RECAP.finditer(self.stdout)
        }

    @property
    def flat(self) -> str:
        """stdout with the result callback's line wrapping undone, for phrase searches."""
        return " ".join(self.stdout.split())

    def total_changed(self) -> int:
        return sum(host["changed"] for host in self.recap().values())

    def explain(self) -> str:
        return (
            f"rc={self.returncode}\nargs={self.args}\n"
            f"--- stdout ---\n{self.stdout[-8000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@dataclass
class GatewayProject:
    """A generated inventory plus every directory a deploy run writes to."""

    root: Path
    vault_addr: str
    vault_token: str
    base_url: str
    environments: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    common: dict[str, Any] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def inventory_dir(self) -> Path:
        return self.root / "inventory"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def hosts_dir(self) -> Path:
        return self.root / "hosts"

    @property
    def log_path(self) -> Path:
        return self.root / "ansible.log"

    def host_dir(self, host: str) -> Path:
        return self.hosts_dir / host

    def state_file(self, environment: str) -> Path:
        return self.state_dir / environment / "terraform.tfstate"

    def state(self, environment: str) -> dict[str, Any]:
        return json.loads(self.state_file(environment).read_text())

    def write_inventory(self) -> None:
        """(Re)write hosts.yml and group_vars from environments and settings."""
        group_vars = self.inventory_dir / "group_vars"
        group_vars.mkdir(parents=True, exist_ok=True)
        children = {env: {"hosts": {host: None for host in hosts}} for env, hosts in self.environments.items()}
        (self.inventory_dir / "hosts.yml").write_text(yaml.safe_dump({"gateway": {"children": children}}))
        common = {
            "ansible_connection": "local",
            "ansible_python_interpreter": str(VENV_BIN / "python"),
            "gateway_config_dir": str(self.hosts_dir) + "/{{ inventory_hostname }}",
            "gateway_state_dir": str(self.state_dir),
            "gateway_work_dir": str(self.work_dir),
            "gateway_base_url": self.base_url,
            **self.common,
        }
        (group_vars / "all.yml").write_text(yaml.safe_dump(common))
        for env in self.environments:
            values = {"gateway_environment": env, **self.settings.get(env, EXAMPLE_SETTINGS.get(env, {}))}
            (group_vars / f"{env}.yml").write_text(yaml.safe_dump(values))

    def set(self, environment: str, **values: Any) -> None:
        """Change an environment's group variables and rewrite the inventory."""
        self.settings.setdefault(environment, dict(EXAMPLE_SETTINGS.get(environment, {}))).update(values)
        self.write_inventory()

    def env(self) -> dict[str, str]:
        tmp = self.root / "tmp"
        (tmp / "local").mkdir(parents=True, exist_ok=True)
        (tmp / "remote").mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VAULT_", "ANSIBLE_", "TF_", "OPENAI_", "AI_GATEWAY_"))
        }
        env.update(
            {
                "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_LOG_PATH": str(self.log_path),
                "ANSIBLE_LOCAL_TEMP": str(tmp / "local"),
                "ANSIBLE_REMOTE_TEMP": str(tmp / "remote"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "TF_CLI_CONFIG_FILE": str(REPO / "terraform" / "terraformrc"),
                "HOME": str(self.root / "home"),
                "VAULT_ADDR": self.vault_addr,
                "VAULT_TOKEN": self.vault_token,
                **self.extra_env,
            }
        )
        (self.root / "home").mkdir(exist_ok=True)
        return env

    def playbook(
        self,
        playbook: str = "deploy.yml",
        *,
        limit: str | None = None,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        extra_vars: Mapping[str, Any] | None = None,
        args: Iterable[str] = (),
        timeout: int = 600,
        stream: bool = False,
        wrapper: Sequence[str] = (),
    ) -> Run:
        """Run a playbook of the collection; ``stream`` shows its output instead of capturing it.

        ``wrapper`` is a command that runs ansible-playbook, its argv appended (``unshare ...``, say).
        """
        cmd = [*wrapper, str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory_dir), str(REPO / playbook)]
        if limit:
            cmd += ["-l", limit]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if extra_vars:
            cmd += ["-e", json.dumps(dict(extra_vars))]
        cmd += list(args)
        proc = subprocess.run(cmd, cwd=REPO, env=self.env(), capture_output=not stream, text=True, timeout=timeout)
        return Run(proc.returncode, proc.stdout or "", proc.stderr or "", cmd)

    def snapshot(self) -> dict[str, bytes]:
        """Bytes of every host file and state file: what a failed run must leave alone."""
        files: dict[str, bytes] = {}
        for base in (self.hosts_dir, self.state_dir):
            if base.exists():
                for path in sorted(base.rglob("*")):
                    if path.is_file() and not path.name.endswith(".lock.info"):
                        files[str(path.relative_to(self.root))] = path.read_bytes()
        return files


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under root whose bytes contain needle."""
    data = needle.encode()
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and data in p.read_bytes())


def project_with_keys(
    root: Path,
    openbao: Any,
    base_url: str,
    environments: Mapping[str, list[str]],
    keys: Mapping[str, str],
    *,
    label: str,
    **common: Any,
) -> GatewayProject:
    """A project whose environments' keys are stored in OpenBao under a path prefix of its own."""
    prefix = f"{label}-{uuid.uuid4().hex[:8]}"
    for environment, key in keys.items():
        openbao.kv2_put(f"{prefix}/{environment}", {"api_key": key})
    project = GatewayProject(
        root=root,
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=base_url,
        environments=dict(environments),
        common={"gateway_vault_path": prefix + "/{{ gateway_environment }}", **common},
    )
    project.write_inventory()
    return project
