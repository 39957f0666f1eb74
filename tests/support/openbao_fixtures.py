"""Pytest fixtures for a real OpenBao (loaded through ``pytest_plugins`` in tests/conftest.py).

- ``openbao``: one dev-mode server for the whole session, with TLS listeners and its audit log;
  tests share it, so each writes under paths of its own (see ``vault_prefix``).
- ``openbao_factory``: ``make(mode="dev"|"persistent", tls=False)`` starts a server of the test's own, stopped
  when the test ends; use it to stop, restart, seal or unseal a server without disturbing others.
- ``vault_prefix``: a unique path prefix for one test's secrets on the shared server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.openbao import OpenBao

OpenBaoFactory = Callable[..., OpenBao]


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = OpenBao(tmp_path_factory.mktemp("openbao"), mode="dev", tls=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def openbao_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoFactory]:
    servers: list[OpenBao] = []

    def make(*, mode: str = "dev", tls: bool = False) -> OpenBao:
        server = OpenBao(tmp_path_factory.mktemp(f"openbao-{mode}"), mode=mode, tls=tls)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def vault_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
