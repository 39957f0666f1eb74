"""Retries against a real OpenBao with persistent storage that goes away and comes back.

The assertions are about the messages and the number of attempts, never about wall-clock time.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hvac.exceptions
import pytest

from tests.support.openbao import OpenBao
from tests.support.vault_lookup import lookup

pytestmark = pytest.mark.slow

KEY = "sk-retry-canary-58e2b1f04c9d"
PATH = "gateway/prod"


@pytest.fixture(scope="module")
def persistent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao with raft storage for the module: initialising one is the slow part, restarting is not."""
    server = OpenBao(tmp_path_factory.mktemp("openbao-persistent"), mode="persistent")
    server.start()
    # A KV v2 mount just enabled on raft storage upgrades itself for a moment before it takes writes.
    for _ in range(100):
        try:
            server.kv2_put(PATH, {"api_key": KEY})
            break
        except hvac.exceptions.InvalidRequest:
            time.sleep(0.1)
    else:
        raise RuntimeError("the KV v2 mount of the persistent server never became writable")
    yield server
    server.close()


@pytest.fixture
def persistent(persistent_server: OpenBao) -> OpenBao:
    """The module's server, running and unsealed, whatever the previous test did to it."""
    if not persistent_server.running():
        persistent_server.start()
    elif persistent_server.client().sys.is_sealed():
        persistent_server.unseal()
    return persistent_server


def read(tmp_path: Path, server: OpenBao, **options):
    options.setdefault("kv_version", 2)
    return lookup(
        tmp_path / "home",
        PATH,
        env={"VAULT_ADDR": server.url, "VAULT_TOKEN": server.root_token},
        field="api_key",
        **options,
    )


def retry_warnings(output: str) -> list[str]:
    return re.findall(r"\[WARNING\]: (Vault GET .+? failed \([^)]*\): attempt \d+ of \d+)", output)


def test_a_restart_within_the_retry_window_succeeds_with_a_warning_per_retry(
    tmp_path: Path, persistent: OpenBao
) -> None:
    persistent.stop()
    # Hold the port until the lookup's first attempt arrives, hang up on it, then start the server:
    # at least one attempt fails whatever the machine's speed, and the restart begins right after.
    holder = socket.create_server(("127.0.0.1", persistent.port))

    def bring_back() -> None:
        with holder:
            first, _ = holder.accept()
            first.close()
        persistent.start()

    helper = threading.Thread(target=bring_back)
    helper.start()
    try:
        run = read(tmp_path, persistent, retries=8, retry_max_seconds=90)
    finally:
        helper.join()

    assert run.value == KEY
    warnings = retry_warnings(run.output)
    assert warnings, run.explain()
    url = f"{persistent.url}/v1/secret/data/{PATH}"
    for number, warning in enumerate(warnings, start=1):
        assert warning.startswith(f"Vault GET {url} failed (")
        assert warning.endswith(f"attempt {number} of 9")
    assert KEY not in run.stderr  # the value is only in the debug result itself


def test_stopped_for_good_fails_after_the_configured_attempts(tmp_path: Path, persistent: OpenBao) -> None:
    persistent.stop()

    # Without kv_version, the first request is the mount's KV version check; its warnings name the secret too.
    run = read(tmp_path, persistent, retries=2, retry_max_seconds=30, kv_version=None)

    assert f"cannot reach Vault at {persistent.url}: connection refused (after 3 attempts)" in run.error
    assert "check VAULT_ADDR (or the url option) and that the server is running" in run.error
    check = f"Vault GET {persistent.url}/v1/sys/internal/ui/mounts/secret (KV version of mount 'secret', for secret"
    assert retry_warnings(run.output) == [
        f"{check} 'secret/{PATH}') failed (connection refused): attempt 1 of 3",
        f"{check} 'secret/{PATH}') failed (connection refused): attempt 2 of 3",
    ]


def test_the_time_bound_ends_retries_before_the_attempts_run_out(tmp_path: Path, persistent: OpenBao) -> None:
    persistent.stop()

    run = read(tmp_path, persistent, retries=50, retry_max_seconds=2)

    found = re.search(r"connection refused \(after (\d+) attempts\)", run.error)
    assert found, run.explain()
    # Backoff 0.5 s, 1 s, then whatever is left of the 2 s: a handful of attempts, far fewer than 51.
    assert 2 <= int(found.group(1)) <= 5
    assert len(retry_warnings(run.output)) == int(found.group(1)) - 1


def test_a_sealed_server_is_retried_then_reported_as_sealed(tmp_path: Path, persistent: OpenBao) -> None:
    persistent.seal()

    run = read(tmp_path, persistent, retries=1, retry_max_seconds=10)

    assert f"Vault at {persistent.url} is sealed (after 2 attempts); unseal it" in run.error
    assert [warning.split(" failed ")[1] for warning in retry_warnings(run.output)] == [
        "(HTTP 503, sealed): attempt 1 of 2"
    ]
