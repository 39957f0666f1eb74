"""The per-run cache agent of the vault_kv lookup: its directory, its owner, its protocol and its end."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

_COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.aigateway.ops.plugins.module_utils import _vault  # noqa: E402
from ansible_collections.aigateway.ops.plugins.plugin_utils import _vault_run_cache  # noqa: E402

from tests.support.openbao import OpenBao  # noqa: E402

KEY = "sk-agent-unit-91c3e5a7"


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temporary directory of the test's own, so that the agents started here are the test's."""
    base = tmp_path / "t"
    base.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(base))
    return base / f"aigateway-vault-{os.getuid()}"


def test_the_directory_is_created_private_and_a_symlink_is_refused(private_tmp: Path, tmp_path: Path) -> None:
    assert _vault_run_cache._private_directory() == str(private_tmp)
    assert private_tmp.stat().st_mode & 0o777 == 0o700

    private_tmp.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    private_tmp.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(_vault_run_cache.AgentUnavailable, match="owned by this user with mode 0700"):
        _vault_run_cache._private_directory()


def _report_owner(queue: multiprocessing.Queue) -> None:
    queue.put(_vault_run_cache.run_owner())


def test_the_run_owner_is_the_parent_of_a_worker_and_itself_otherwise() -> None:
    assert _vault_run_cache.run_owner() == os.getpid()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_report_owner, args=(queue,))
    worker.start()
    worker.join(30)
    assert queue.get(timeout=5) == os.getpid()


def test_a_finished_or_reused_pid_is_not_alive() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert not _vault_run_cache._alive(finished.pid, None)
    assert _vault_run_cache._alive(os.getpid(), _vault_run_cache._start_time(os.getpid()))
    assert not _vault_run_cache._alive(os.getpid(), "0")  # same pid, another start time


def test_messages_are_length_framed_json() -> None:
    left, right = socket.socketpair()
    with left, right:
        _vault_run_cache._send(left, {"path": "a/b", "data": {"k": "v" * 100_000}})
        assert _vault_run_cache._receive(right) == {"path": "a/b", "data": {"k": "v" * 100_000}}
        left.sendall(struct.pack("!I", 10) + b"{}")
        left.close()
        assert _vault_run_cache._receive(right) is None  # cut short: no answer rather than a wrong one


def test_sigterm_makes_the_agent_revoke_its_login_and_remove_its_socket(
    private_tmp: Path, openbao: OpenBao, vault_prefix: str
) -> None:
    openbao.kv2_put(f"{vault_prefix}/prod", {"api_key": KEY})
    openbao.read_policy(vault_prefix, {f"secret/data/{vault_prefix}/*": ["read"]})
    role_id, secret_id = openbao.approle(vault_prefix, [vault_prefix])
    connection, login = _vault.settings_from_options(
        {"url": openbao.url, "role_id": role_id, "secret_id": secret_id}, environ={}
    )
    mark = openbao.audit_mark()
    warnings: list[str] = []

    for _ in range(2):
        secret = _vault_run_cache.read_secret(
            connection, login, f"{vault_prefix}/prod", mount="secret", version=None, kv=None, warn=warnings.append
        )
        assert secret.field("api_key") == KEY
    assert warnings == []
    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 1
    assert len(openbao.audit_requests(since=mark, path=f"secret/data/{vault_prefix}/prod")) == 1

    [socket_path] = list(private_tmp.glob("*.sock"))
    assert socket_path.stat().st_mode & 0o777 == 0o600
    assert socket_path.name.startswith(f"{os.getpid()}-")
    agent_pid = _vault_run_cache._exchange(str(socket_path), {"op": "status"}, 10)["pid"]
    assert agent_pid != os.getpid()

    os.kill(agent_pid, signal.SIGTERM)
    for _ in range(100):
        if not socket_path.exists() and openbao.audit_requests(since=mark, path="auth/token/revoke-self"):
            break
        time.sleep(0.1)
    assert not socket_path.exists()
    assert len(openbao.audit_requests(since=mark, path="auth/token/revoke-self")) == 1
    # The run goes on: the lock file stays for the next agent, and the next read starts one.
    assert list(private_tmp.glob("*.lock"))
    again = _vault_run_cache.read_secret(
        connection, login, f"{vault_prefix}/prod", mount="secret", version=None, kv=2, warn=warnings.append
    )
    assert again.field("api_key") == KEY and warnings == []
    assert len(openbao.audit_requests(since=mark, path="auth/approle/login")) == 2


def test_a_new_agent_clears_what_killed_agents_of_finished_runs_left(
    private_tmp: Path, openbao: OpenBao, vault_prefix: str
) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    private_tmp.mkdir(mode=0o700)
    leftovers = [private_tmp / f"{finished.pid}-1.sock", private_tmp / f"{finished.pid}-1.lock"]
    for path in leftovers:
        path.write_text("")
    openbao.kv2_put(f"{vault_prefix}/prod", {"api_key": KEY})
    connection, login = _vault.settings_from_options({"url": openbao.url, "token": openbao.root_token}, environ={})

    secret = _vault_run_cache.read_secret(
        connection, login, f"{vault_prefix}/prod", mount="secret", version=None, kv=2, warn=pytest.fail
    )

    assert secret.field("api_key") == KEY
    assert not any(path.exists() for path in leftovers)
    assert len(list(private_tmp.glob(f"{os.getpid()}-*.sock"))) == 1
