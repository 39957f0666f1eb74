"""Pytest fixtures for the sandbox AI API (loaded through ``pytest_plugins`` in tests/conftest.py).

- ``sandbox``: a started server accepting :data:`SANDBOX_KEY` and listing :data:`SANDBOX_MODELS`;
- ``sandbox_factory``: ``make(config=None, *, tls=False, host=None, port=None)`` starts more,
  each stopped when the test ends (``config=None`` gives the ``sandbox`` configuration);
- ``sandbox_key``: the key the default configuration accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.sandbox import DEFAULT_MODELS, SandboxServer, default_config

SANDBOX_KEY = "sk-test-sandbox-0001"
SANDBOX_MODELS = list(DEFAULT_MODELS)

SandboxFactory = Callable[..., SandboxServer]


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    servers: list[SandboxServer] = []

    def make(
        config: dict[str, Any] | None = None,
        *,
        tls: bool = False,
        host: str | None = None,
        port: int | None = None,
    ) -> SandboxServer:
        cert_dir = tmp_path_factory.mktemp("sandbox-tls") if tls else None
        server = SandboxServer(
            default_config(SANDBOX_KEY) if config is None else config,
            host=host,
            port=port,
            tls=tls,
            cert_dir=cert_dir,
        )
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    return sandbox_factory()


@pytest.fixture
def sandbox_key() -> str:
    return SANDBOX_KEY
