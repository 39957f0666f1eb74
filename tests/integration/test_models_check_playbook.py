"""aigateway.ops.models_check in a real ansible-playbook run (local connection, -vvvv) against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.sandbox import DEFAULT_MODELS, SandboxServer

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CANARY_KEY = "sk-canary-playbook-93c1e07a5f2d48b6"
ROTATED_CANARY_KEY = "sk-canary-rotated-1a6e4f90c3b27d85"

PLAYBOOK = """\
---
- name: Check the sandbox API with aigateway.ops.models_check
  hosts: all
  gather_facts: false
  vars:
    api_key: "{{ lookup('ansible.builtin.env', 'MODELS_CHECK_KEY') }}"
    rotated_key: "{{ lookup('ansible.builtin.env', 'MODELS_CHECK_ROTATED_KEY') }}"
  tasks:
    - name: The accepted key lists the expected models
      aigateway.ops.models_check:
        base_url: "{{ base_url }}"
        api_key: "{{ api_key }}"
        expected_models: "{{ expected_models }}"
        retry_delay: 0
      register: accepted

    - name: The rotated key fails with the provider's message
      aigateway.ops.models_check:
        base_url: "{{ base_url }}"
        api_key: "{{ rotated_key }}"
        retry_delay: 0
      register: rotated
      ignore_errors: true

    - name: Both results read as documented
      ansible.builtin.assert:
        that:
          - accepted is not failed
          - accepted is not changed
          - accepted.status == 200
          - accepted.missing == []
          - accepted.attempts == 1
          - accepted.url == base_url ~ '/models'
          - rotated is failed
          - rotated is not changed
          - rotated.status == 401
          - "'API key has been rotated' in rotated.msg"
"""


@pytest.fixture
def canary_sandbox(sandbox_factory) -> SandboxServer:
    return sandbox_factory(
        {
            "models": list(DEFAULT_MODELS),
            "keys": [CANARY_KEY],
            "rotated_keys": [ROTATED_CANARY_KEY],
            "echo_key_in_errors": True,
        }
    )


def run_playbook(tmp_path: Path, server: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "models_check.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        textwrap.dedent(
            f"""\
            [all]
            localhost ansible_connection=local ansible_python_interpreter={VENV_BIN / "python"}
            """
        )
    )
    for directory in ("home", "tmp-local", "tmp-remote"):
        (tmp_path / directory).mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        HOME=str(tmp_path / "home"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOG_PATH=str(tmp_path / "ansible.log"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp-remote"),
        ANSIBLE_NOCOLOR="1",
        MODELS_CHECK_KEY=CANARY_KEY,
        MODELS_CHECK_ROTATED_KEY=ROTATED_CANARY_KEY,
    )
    command = [str(VENV_BIN / "ansible-playbook"), "-vvvv", "-i", str(inventory), str(playbook)]
    command += ["-e", f"base_url={server.base_url}", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def everything_written(tmp_path: Path, run: subprocess.CompletedProcess[str]) -> str:
    """The run's output plus every file it left under tmp_path (log, temporary files)."""
    texts = [run.stdout, run.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("models_check.yml", "hosts.ini"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def assert_no_canary(text: str) -> None:
    for key in (CANARY_KEY, ROTATED_CANARY_KEY):
        assert key not in text
        assert key[:16] not in text


def test_playbook_passes_and_never_shows_the_key(tmp_path, canary_sandbox):
    run = run_playbook(tmp_path, canary_sandbox, "-e", '{"expected_models": ["gpt-4.1", "deepseek-v3.2"]}')

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "All assertions passed" in run.stdout
    assert f"401 Unauthorized from {canary_sandbox.base_url}/models: API key has been rotated" in run.stdout
    assert [entry["status"] for entry in canary_sandbox.requests()] == [200, 401]
    assert_no_canary(everything_written(tmp_path, run))


def test_playbook_fails_on_missing_models_also_in_check_mode(tmp_path, canary_sandbox):
    run = run_playbook(tmp_path, canary_sandbox, "--check", "-e", '{"expected_models": ["gpt-4.1", "gpt-5"]}')

    assert run.returncode == 2, run.stdout[-6000:] + run.stderr[-3000:]
    assert f"models missing from {canary_sandbox.base_url}/models: gpt-5" in run.stdout
    assert "Both results read as documented" not in run.stdout
    assert len(canary_sandbox.requests()) == 1
    assert_no_canary(everything_written(tmp_path, run))
