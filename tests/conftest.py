"""Shared pytest fixtures: real OpenBao, the sandbox API, and the repository layout."""

import socket

import pytest

pytest_plugins = [
    "tests.support.sandbox_fixtures",
    "tests.support.openbao_fixtures",
]


@pytest.fixture
def unused_tcp_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
