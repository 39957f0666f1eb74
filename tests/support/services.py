"""Start and stop the test services a molecule scenario needs: OpenBao and the sandbox API.

    python -m tests.support.services start --dir D [--environment ENV ...] [--host H]
    python -m tests.support.services stop --dir D

``start`` leaves both servers running and writes what the scenario reads:
``D/openbao/{url,token}``, ``D/sandbox/base_url``, and, per environment, a fresh key stored in
OpenBao at ``secret/molecule/<env>`` (field ``api_key``) and accepted by the sandbox. The keys are
also written to ``D/keys/<env>`` (0600) so the scenario's verifier can compare the hosts' files:
they are throwaway test keys inside the scenario's own directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tests.support import openbao
from tests.support.openbao import OpenBao
from tests.support.sandbox import DEFAULT_MODELS

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0


def start(directory: Path, environments: list[str], host: str, vault_prefix: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    keys = {env: f"sk-molecule-{env}-{secrets.token_hex(12)}" for env in environments}

    vault_dir = directory / "openbao"
    openbao.main(["start", "--dir", str(vault_dir)])
    vault = OpenBao(
        vault_dir, port=int(_read(vault_dir / "url").rsplit(":", 1)[1]), root_token=_read(vault_dir / "token")
    )
    for env, key in keys.items():
        vault.kv2_put(f"{vault_prefix}/{env}", {"api_key": key})

    sandbox_dir = directory / "sandbox"
    sandbox_dir.mkdir(exist_ok=True)
    config = sandbox_dir / "config.json"
    config.write_text(json.dumps({"models": list(DEFAULT_MODELS), "keys": [{"key": key} for key in keys.values()]}))
    config.chmod(0o600)
    port_file = sandbox_dir / "port"
    port_file.unlink(missing_ok=True)
    log = (sandbox_dir / "server.log").open("ab")
    subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.sandbox",
            "--host",
            host,
            "--port",
            "0",
            "--config",
            str(config),
            "--pid-file",
            str(sandbox_dir / "pid"),
            "--port-file",
            str(port_file),
        ],
        cwd=REPO,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not port_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the sandbox API did not start within {START_TIMEOUT_SECONDS:.0f} s: see {log.name}")
        time.sleep(0.1)
    (sandbox_dir / "base_url").write_text(f"http://{host}:{_read(port_file)}/v1\n")

    keys_dir = directory / "keys"
    keys_dir.mkdir(exist_ok=True)
    for env, key in keys.items():
        path = keys_dir / env
        path.write_text(key + "\n")
        path.chmod(0o600)


def stop(directory: Path) -> None:
    pid_file = directory / "sandbox" / "pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(_read(pid_file)), 15)
    openbao.main(["stop", "--dir", str(directory / "openbao")])


def _read(path: Path) -> str:
    return path.read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.services", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start")
    start_parser.add_argument("--dir", required=True, type=Path)
    start_parser.add_argument("--environment", action="append", default=[])
    start_parser.add_argument("--host", default="127.0.0.1")
    start_parser.add_argument("--vault-prefix", default="molecule")
    stop_parser = commands.add_parser("stop")
    stop_parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args.dir.resolve(), args.environment, args.host, args.vault_prefix)
    else:
        stop(args.dir.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
