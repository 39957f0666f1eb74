# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to the aigateway.ops collection: nothing here is a public interface,
# and it may change without notice between releases.

"""One Vault login and one read per secret for a whole ``ansible-playbook`` run.

Ansible runs every task of every host in a forked worker process that ends after the task, so a
cache inside the lookup lasts one task. Here the first lookup of a run starts a small cache agent:

- a process of its own (forked twice from the worker, in a new session), keyed by the run's main
  process (the worker's parent) and that process's start time, so a reused pid is not mistaken;
- listening on a unix socket in a directory only this user may enter (0700, checked);
- holding the login token and the secrets it read in memory only: nothing is written to disk but
  the socket and a lock file, which hold no data;
- serving the requests of later workers one at a time, through the shared engine, whose caches
  then give one login per identity and one read per secret;
- revoking the tokens it obtained by login and exiting as soon as the run's main process is gone,
  after ``IDLE_SECONDS`` without a request, or on SIGTERM.

A request carries the settings and credentials of the lookup; the engine's cache keys include a
digest of the credentials, so a client must present them to get anything back. A worker that cannot
reach or start the agent reads in its own process instead, after a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import multiprocessing
import os
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import time
from typing import Any

from ansible_collections.aigateway.ops.plugins.module_utils import _vault

IDLE_SECONDS = 900.0
POLL_SECONDS = 0.5
ERROR_REUSE_SECONDS = 10.0
START_WAIT_SECONDS = 10.0
_HEADER = struct.Struct("!I")
_MAX_MESSAGE = 16 * 1024 * 1024


class AgentUnavailable(Exception):
    """The run's cache agent could not be reached or started; the caller reads directly."""


def read_secret(
    connection: _vault.Connection,
    login: _vault.Login,
    path: str,
    *,
    mount: str,
    version: int | None,
    kv: int | None,
    warn: _vault.Warn,
) -> _vault.Secret:
    """Read through the run's cache agent, starting it if needed; read directly if it is unavailable."""
    request = {
        "connection": dataclasses.asdict(connection),
        "login": dataclasses.asdict(login),
        "path": path,
        "mount": mount,
        "version": version,
        "kv": kv,
    }
    try:
        answer = _ask_agent(request, _wait_bound(connection))
    except AgentUnavailable as problem:
        warn(f"Vault run cache unavailable ({problem}); reading {mount}/{path} in this worker instead")
        return _vault.read_secret(connection, login, path, mount=mount, version=version, kv=kv, warn=warn)

    for message in answer.get("warnings") or []:
        warn(str(message))
    if "error" in answer:
        error = answer["error"]
        raise _vault.VaultError(str(error["message"]), str(error["kind"]), attempts=int(error["attempts"]))
    return _vault.Secret(**answer["secret"])


def run_owner() -> int:
    """The process whose end ends the run: the worker's parent, else this process."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


# -- client side ----------------------------------------------------------------------------------


def _wait_bound(connection: _vault.Connection) -> float:
    """How long a client waits for an answer: the agent serves one request at a time."""
    per_request = connection.retry_max_seconds + connection.timeout * 2
    return 3 * per_request + 60.0


def _ask_agent(request: dict[str, Any], wait: float) -> dict[str, Any]:
    owner = run_owner()
    socket_path, lock_path = _paths(owner)
    try:
        return _exchange(socket_path, request, wait)
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    except OSError as error:
        raise AgentUnavailable(_os_reason(error)) from None

    try:
        with open(lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return _exchange(socket_path, request, wait)
            except (FileNotFoundError, ConnectionRefusedError):
                _remove_leftovers(os.path.dirname(socket_path))
                _start_agent(socket_path, owner)
    except OSError as error:
        raise AgentUnavailable(_os_reason(error)) from None
    try:
        return _exchange(socket_path, request, wait)
    except OSError as error:
        raise AgentUnavailable(_os_reason(error)) from None


def _exchange(socket_path: str, request: dict[str, Any], wait: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(START_WAIT_SECONDS)
        client.connect(socket_path)
        client.settimeout(wait)
        _send(client, request)
        answer = _receive(client)
    if answer is None:
        raise AgentUnavailable("the agent closed the connection without an answer")
    return answer


def _os_reason(error: OSError) -> str:
    if isinstance(error, socket.timeout):
        return "no answer in time"
    return error.strerror or type(error).__name__


def _paths(owner: int) -> tuple[str, str]:
    directory = _private_directory()
    name = f"{owner}-{_start_time(owner) or 'x'}"
    return os.path.join(directory, name + ".sock"), os.path.join(directory, name + ".lock")


def _private_directory() -> str:
    """A directory only this user may enter; refuses one that anybody else owns or can open."""
    directory = os.path.join(os.path.abspath(tempfile.gettempdir()), f"aigateway-vault-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise AgentUnavailable(f"{directory} must be a directory owned by this user with mode 0700")
    return directory


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), which tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def _remove_leftovers(directory: str) -> None:
    """Sockets and lock files of runs that are over, left by an agent that was killed."""
    for name in os.listdir(directory):
        stem, _dot, suffix = name.rpartition(".")
        pid, _dash, start_time = stem.partition("-")
        if suffix not in ("sock", "lock") or not pid.isdigit():
            continue
        if not _alive(int(pid), None if start_time == "x" else start_time):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start_time is None or _start_time(pid) == start_time


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    payload = json.dumps(message).encode()
    channel.sendall(_HEADER.pack(len(payload)) + payload)


def _receive(channel: socket.socket) -> dict[str, Any] | None:
    header = _read_exactly(channel, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > _MAX_MESSAGE:
        return None
    payload = _read_exactly(channel, length)
    return json.loads(payload) if payload is not None else None


def _read_exactly(channel: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = channel.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


# -- the agent --------------------------------------------------------------------------------------


def _start_agent(socket_path: str, owner: int) -> None:
    """Bind the socket here, then fork the agent off (twice, in a new session) to serve it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            listener.bind(socket_path)
        finally:
            os.umask(old_umask)
        listener.listen(128)
        socket_inode = os.stat(socket_path).st_ino
        owner_start = _start_time(owner)
        child = os.fork()
        if child == 0:
            # Nothing may return from here into the caller's code, whatever happens.
            try:
                os.setsid()
                if os.fork() == 0:
                    _serve(listener, socket_path, socket_inode, owner, owner_start)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    finally:
        listener.close()


def _serve(listener: socket.socket, socket_path: str, socket_inode: int, owner: int, owner_start: str | None) -> None:
    _detach(keep=listener.fileno())
    _vault.forget_inherited_state()
    with contextlib.suppress(OSError):
        os.chdir("/")  # hold no directory of the run busy
    with contextlib.suppress(OSError), open("/proc/self/comm", "w", encoding="ascii") as name:
        name.write("vault-run-cache")  # what ps -o comm and top show, instead of the worker's name
    stopping: list[int] = []
    with contextlib.suppress(ValueError):  # only possible from the main thread; the defaults do otherwise
        signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    failures: dict[str, tuple[float, dict[str, Any]]] = {}
    last_request = time.monotonic()
    try:
        while not stopping and _alive(owner, owner_start) and time.monotonic() - last_request < IDLE_SECONDS:
            try:
                ready = select.select([listener], [], [], POLL_SECONDS)[0]
            except InterruptedError:
                continue
            if not ready:
                continue
            try:
                channel = listener.accept()[0]
            except OSError:
                continue
            last_request = time.monotonic()
            with channel:
                _answer(channel, failures)
    finally:
        with contextlib.suppress(Exception):
            _vault.revoke_login_tokens()
        # Another agent may have taken the name over after an idle exit; only remove our own socket, and
        # the lock file only once the run is over (a client may still be waiting on it otherwise).
        with contextlib.suppress(OSError):
            if os.stat(socket_path).st_ino == socket_inode:
                os.unlink(socket_path)
        if not _alive(owner, owner_start):
            with contextlib.suppress(OSError):
                os.unlink(socket_path[: -len(".sock")] + ".lock")


def _detach(keep: int) -> None:
    """Let go of the caller's terminal, pipes and sockets, keeping their descriptor numbers taken.

    Pointing every inherited descriptor at /dev/null (instead of closing it) means that a Python
    object of the caller that still holds one can never close a descriptor the agent opens later.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for descriptor in _open_descriptors():
            if descriptor not in (keep, null):
                with contextlib.suppress(OSError):
                    os.dup2(null, descriptor)
    finally:
        os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the agent


def _open_descriptors() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        limit = min(os.sysconf("SC_OPEN_MAX"), 4096)
        found = []
        for descriptor in range(limit):
            try:
                os.fstat(descriptor)
            except OSError:
                continue
            found.append(descriptor)
        return found


def _answer(channel: socket.socket, failures: dict[str, tuple[float, dict[str, Any]]]) -> None:
    channel.settimeout(START_WAIT_SECONDS)
    if not _same_user(channel):
        return
    try:
        request = _receive(channel)
    except (OSError, ValueError):
        return
    if not request:
        return
    if request.get("op") == "status":  # for diagnostics and tests: which process serves the run
        with contextlib.suppress(OSError):
            _send(channel, {"pid": os.getpid()})
        return
    try:
        answer = _read(request, failures)
    except Exception as error:  # noqa: BLE001 - the agent must keep serving; the message holds no value
        answer = {"error": {"message": f"the Vault run cache failed ({type(error).__name__})", "kind": "server"}}
        answer["error"]["attempts"] = 1
    with contextlib.suppress(OSError):
        _send(channel, answer)


def _same_user(channel: socket.socket) -> bool:
    peer_credentials = getattr(socket, "SO_PEERCRED", None)
    if peer_credentials is None:
        return True  # the directory's 0700 mode is the guard where the peer cannot be asked
    try:
        _pid, uid, _gid = struct.unpack("3i", channel.getsockopt(socket.SOL_SOCKET, peer_credentials, 12))
    except OSError as error:
        return error.errno == errno.ENOPROTOOPT
    return uid == os.getuid()


def _read(request: dict[str, Any], failures: dict[str, tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    connection = _vault.Connection(**request["connection"])
    login = _vault.Login(**request["login"])
    # A failure is handed to the requests queued behind it for a few seconds: fifty hosts asking for an
    # unreachable Vault fail together instead of each spending the whole retry budget again.
    failure_key = json.dumps(
        [connection.transport_key(), connection.namespace, login.identity(), request["mount"], request["path"]],
        default=str,
    ) + json.dumps([request["version"], request["kv"]])
    recent = failures.get(failure_key)
    if recent is not None and time.monotonic() - recent[0] < ERROR_REUSE_SECONDS:
        return recent[1]

    warnings: list[str] = []
    try:
        secret = _vault.read_secret(
            connection,
            login,
            request["path"],
            mount=request["mount"],
            version=request["version"],
            kv=request["kv"],
            warn=warnings.append,
        )
    except _vault.VaultError as error:
        answer = {"error": {"message": error.message, "kind": error.kind, "attempts": error.attempts}}
        failures[failure_key] = (time.monotonic(), answer)
        return {**answer, "warnings": warnings}
    failures.pop(failure_key, None)
    return {"secret": dataclasses.asdict(secret), "warnings": warnings}
