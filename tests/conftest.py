"""Shared pytest fixtures: real OpenBao, the sandbox API, and the repository layout."""

pytest_plugins = [
    "tests.support.sandbox_fixtures",
    "tests.support.openbao_fixtures",
]
