# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller side of aigateway.ops.state_backend (documented in plugins/modules/state_backend.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.aigateway.ops.plugins.filter.state_backend import _plain
from ansible_collections.aigateway.ops.plugins.plugin_utils import _state_backend as engine

MINIMUM_VERSION = (1, 6)
INIT_ATTEMPTS = 3
INIT_TIMEOUT_SECONDS = 300


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "state",
            "directory",
            "terraform",
            "root_dir",
            "backend",
            "config",
            "environment_name",
            "credential_file",
            "plugin_cache_dir",
            "terraform_environment",
        )
    )

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        result["changed"] = False
        args = self._task.args
        directory = Path(str(args["directory"]))
        if str(args.get("state", "present")) == "absent":
            shutil.rmtree(directory, ignore_errors=True)
            return result
        try:
            result.update(self._prepare(args, directory))
        except _Failure as exc:
            result.update(failed=True, msg=str(exc))
        return result

    def _prepare(self, args: Mapping[str, Any], directory: Path) -> dict[str, Any]:
        terraform = str(args.get("terraform") or "")
        env = {**os.environ, **{str(k): str(v) for k, v in dict(args.get("terraform_environment") or {}).items()}}
        version = _terraform_version(terraform, env)
        if args.get("plugin_cache_dir"):
            Path(str(args["plugin_cache_dir"])).mkdir(mode=0o700, parents=True, exist_ok=True)

        backend = str(args.get("backend") or "local")
        environment = str(args.get("environment_name") or "")
        done = {"terraform_version": version, "description": backend, "pgpass_file": ""}
        if backend == "local":
            return done
        credential_file = str(args["credential_file"]) if args.get("credential_file") else None
        config = _plain(args.get("config"))
        files = engine.backend_files(
            backend, config, environment, str(directory), credential_file=credential_file, terraform_version=version
        )
        if files["errors"]:
            raise _Failure("invalid state backend settings: " + "; ".join(files["errors"]))

        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        names = {
            "backend.tfbackend": files["backend_file"],
            "pgpass": files["pgpass"],
            "aws-credentials": files["aws_credentials"],
            "pg_service.conf": files["pg_service"],
        }
        for name, content in names.items():
            if content:
                _write_private(directory / name, content)
        pgpass = str(directory / "pgpass") if files["pgpass"] else env.get("PGPASSFILE", "")
        env["PGPASSFILE"] = pgpass

        secrets = _secret_values(backend, engine.merged_config(backend, config, credential_file)[0])
        _init(terraform, Path(str(args["root_dir"])), directory / "backend.tfbackend", env, environment, files, secrets)
        return {**done, "description": files["description"], "pgpass_file": pgpass if files["pgpass"] else ""}


class _Failure(Exception):
    pass


def _terraform_version(terraform: str, env: Mapping[str, str]) -> str:
    if not terraform or not Path(terraform).is_file():
        raise _Failure(
            f"cannot find the Terraform binary '{terraform}': install Terraform or OpenTofu 1.6 or later,"
            " or point gateway_terraform_binary at it"
        )
    proc = subprocess.run(
        [terraform, "version", "-json"], env=dict(env), capture_output=True, text=True, check=False, timeout=120
    )
    try:
        version = str(json.loads(proc.stdout)["terraform_version"])
    except (ValueError, KeyError, TypeError):
        version = ""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if not numbers or numbers < MINIMUM_VERSION:
        raise _Failure(
            f"{terraform} is version {version or 'unknown (no answer to version -json)'}; the gateway needs Terraform"
            " or OpenTofu 1.6 or later: install one, or point gateway_terraform_binary at it"
        )
    return version


def _write_private(path: Path, content: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def _secret_values(backend: str, settings: Mapping[str, Any]) -> list[str]:
    if backend == "pg" and isinstance(settings.get("conn_str"), str):
        password = engine.parse_conn_str(settings["conn_str"])[1]
        return [password] if password else []
    return [str(settings[key]) for key in engine.S3_SECRET_KEYS if settings.get(key)]


def _init(
    terraform: str,
    root: Path,
    backend_file: Path,
    env: Mapping[str, str],
    environment: str,
    files: Mapping[str, Any],
    secrets: list[str],
) -> None:
    """terraform init with the backend file; creating the pg schema can race another environment's, so retry."""
    argv = [terraform, "init", "-input=false", "-no-color", "-reconfigure", f"-backend-config={backend_file}"]
    proc: subprocess.CompletedProcess[str] | None = None
    for attempt in range(INIT_ATTEMPTS):
        if attempt:
            time.sleep(2 * attempt)
        try:
            proc = subprocess.run(
                argv, cwd=root, env=dict(env), capture_output=True, text=True, check=False, timeout=INIT_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired as exc:
            raise _Failure(
                f"terraform init of environment '{environment}' ({files['description']}) did not finish within"
                f" {INIT_TIMEOUT_SECONDS} s: check that the backend's server answers from the controller"
            ) from exc
        if proc.returncode == 0:
            return
    if proc is None:
        raise AssertionError("terraform init never ran")
    errors = re.findall(r"Error: (.+)", proc.stderr) or [proc.stderr.strip()[-300:]]
    detail = "; ".join(dict.fromkeys(line.strip() for line in errors))
    for secret in secrets:
        detail = detail.replace(secret, "***")
    raise _Failure(
        f"cannot initialise the state backend of environment '{environment}' ({files['description']}): {detail}."
        " Check gateway_state_backend_config (or the TF_BACKEND_CONFIG_FILE credential) and that the server is"
        " reachable from the controller and accepts the user"
    )
