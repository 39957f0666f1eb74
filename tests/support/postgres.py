"""A real PostgreSQL 15 server for tests and molecule scenarios: the pg state backend's database.

The server comes from Debian's ``postgresql-15`` package (``tools/ensure-postgresql`` installs it).
Each server gets a data directory of its own under /tmp, listens on 127.0.0.1 at a free port and on
a unix socket in that directory, and authenticates with a password (scram-sha-256), so the
password in the connection string is really needed. ``initdb`` refuses to run as root: as root the
server runs as the ``postgres`` system user.

Command line, for molecule (the server keeps running after the command returns)::

    python -m tests.support.postgres start --dir D
    python -m tests.support.postgres stop --dir D

``start`` writes ``D/conn_str`` (0600, with the password), ``D/data_dir`` and ``D/port``, and for the
PostgreSQL clients ``D/pg_service.conf`` (service ``gateway``) and ``D/pgpass`` (0600).
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "gateway"
DATABASE = "tfstate"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the postgres user; nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid, "extra_groups": []}


@dataclass
class PostgreSQL:
    """One server: its data directory, port and superuser password."""

    data_dir: Path
    port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(12))

    @classmethod
    def create(cls) -> PostgreSQL:
        """A fresh, stopped server in a new directory the postgres user owns."""
        base = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        base.chmod(0o700)
        if os.geteuid() == 0:
            os.chown(base, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        return cls(base / "data")

    @property
    def base(self) -> Path:
        return self.data_dir.parent

    def conn_str(self, *, password: bool = True, database: str = DATABASE) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgres://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def start(self) -> None:
        password_file = self.base / "initdb.pw"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres")
        try:
            subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "-A",
                    "scram-sha-256",
                    f"--pwfile={password_file}",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                **_run_as(),
            )
        finally:
            password_file.unlink()
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.base / "server.log"), "-o", options]
            + ["-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            **_run_as(),
        )
        self.psql(f"CREATE DATABASE {DATABASE}", database="postgres")

    def stop(self) -> None:
        if self.data_dir.exists():
            subprocess.run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                **_run_as(),
            )
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql: str, *, database: str = DATABASE) -> str:
        """Run SQL as the superuser; rows come back as '|'-separated lines."""
        proc = subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-U", SUPERUSER, "-d", database, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed on {sql!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def states(self, schema: str) -> dict[str, str]:
        """The pg backend's state rows in a schema: workspace name -> state JSON."""
        rows = self.psql(f"SELECT name, data::jsonb::text FROM {schema}.states ORDER BY name")  # noqa: S608 (a test schema)
        return dict(row.split("|", 1) for row in rows.splitlines() if row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.postgres", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    if args.command == "start":
        directory.mkdir(parents=True, exist_ok=True)
        server = PostgreSQL.create()
        server.start()
        conn_str = directory / "conn_str"
        conn_str.write_text(server.conn_str() + "\n")
        conn_str.chmod(0o600)
        (directory / "data_dir").write_text(f"{server.data_dir}\n")
        service = (
            f"[gateway]\nhost=127.0.0.1\nport={server.port}\ndbname={DATABASE}\nuser={SUPERUSER}\nsslmode=disable\n"
        )
        (directory / "pg_service.conf").write_text(service)
        pgpass = directory / "pgpass"
        pgpass.write_text(f"*:*:*:{SUPERUSER}:{server.password}\n")
        pgpass.chmod(0o600)
        (directory / "port").write_text(f"{server.port}\n")
        return 0
    data_dir = directory / "data_dir"
    if data_dir.exists():
        PostgreSQL(Path(data_dir.read_text().strip()), port=0).stop()
        data_dir.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
