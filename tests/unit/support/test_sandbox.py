"""The sandbox API server that stands in for the external AI API."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import (
    DEFAULT_MODELS,
    SandboxConfigError,
    SandboxServer,
    key_fingerprint,
    key_sha256,
)
from tests.support.sandbox_fixtures import SANDBOX_KEY

REPO_ROOT = Path(__file__).resolve().parents[3]
CANARY_KEY = "sk-canary-sandbox-4e8f1d2c9b7a"


def call(
    url: str,
    *,
    method: str = "GET",
    key: str | None = SANDBOX_KEY,
    payload: Any = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], Any]:
    """Status, headers and decoded JSON body (or text) of one request."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - always the local sandbox
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()
    text = body.decode()
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


def chat(server: SandboxServer, model: str, key: str = SANDBOX_KEY) -> tuple[int, Any]:
    status, _, body = call(
        server.base_url + "/chat/completions",
        method="POST",
        key=key,
        payload={"model": model, "messages": [{"role": "user", "content": "say hello to the sandbox"}]},
    )
    return status, body


# The API -------------------------------------------------------------------------------------


def test_models_lists_the_default_models(sandbox):
    status, _, body = call(sandbox.base_url + "/models")

    assert status == 200
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == list(DEFAULT_MODELS)
    assert {model["object"] for model in body["data"]} == {"model"}
    assert [model["owned_by"] for model in body["data"]] == ["openai", "anthropic", "google", "deepseek"]


def test_single_model_lookup(sandbox):
    assert call(sandbox.base_url + "/models/gemini-2.5-flash")[2]["id"] == "gemini-2.5-flash"
    assert call(sandbox.base_url + "/models/gpt-5")[0] == 404


def test_base_url_property_shape(sandbox):
    assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}/v1"
    assert sandbox.control_url == f"http://127.0.0.1:{sandbox.port}/_sandbox"


def test_rotated_unknown_and_missing_keys_answer_401(sandbox):
    sandbox.accept_key(CANARY_KEY)
    sandbox.rotate_key(CANARY_KEY)

    rotated = call(sandbox.base_url + "/models", key=CANARY_KEY)
    unknown = call(sandbox.base_url + "/models", key="sk-never-issued")
    missing = call(sandbox.base_url + "/models", key=None)

    assert rotated[0] == 401
    assert rotated[2] == {
        "error": {
            "message": "API key has been rotated",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert (unknown[0], unknown[2]["error"]["message"]) == (401, "Invalid API key")
    assert missing[0] == 401
    assert call(sandbox.base_url + "/models")[0] == 200


def test_key_expiry(sandbox):
    sandbox.accept_key("sk-expired-one", expires_at=time.time() - 1)
    sandbox.accept_key("sk-valid-one", expires_at=time.time() + 3600)

    assert call(sandbox.base_url + "/models", key="sk-expired-one")[2]["error"]["message"] == "API key has been rotated"
    assert call(sandbox.base_url + "/models", key="sk-valid-one")[0] == 200


def test_key_stops_working_after_a_number_of_requests(sandbox):
    sandbox.accept_key(CANARY_KEY, expires_after_requests=2)

    statuses = [call(sandbox.base_url + "/models", key=CANARY_KEY)[0] for _ in range(2)]
    third = call(sandbox.base_url + "/models", key=CANARY_KEY)

    assert statuses == [200, 200]
    assert (third[0], third[2]["error"]["message"]) == (401, "API key has been rotated")
    assert sandbox.config()["keys"][-1]["requests_used"] == 2
    # Accepting the key again starts its count afresh.
    sandbox.accept_key(CANARY_KEY, expires_after_requests=1)
    assert call(sandbox.base_url + "/models", key=CANARY_KEY)[0] == 200


def test_key_stops_working_on_command_between_requests(sandbox):
    sandbox.accept_key(CANARY_KEY)
    before = call(sandbox.base_url + "/models", key=CANARY_KEY)[0]

    sandbox.rotate_key(CANARY_KEY)

    assert before == 200
    assert call(sandbox.base_url + "/models", key=CANARY_KEY)[0] == 401
    assert call(sandbox.base_url + "/models")[0] == 200


def test_request_log_tells_which_key_was_used_when(sandbox):
    sandbox.accept_key(CANARY_KEY, label="candidate")
    call(sandbox.base_url + "/models")
    chat(sandbox, "gpt-4.1", key=CANARY_KEY)
    call(sandbox.base_url + "/models", key=CANARY_KEY)

    log = sandbox.requests()
    mine = sandbox.requests(key=CANARY_KEY)

    assert [entry["key_label"] for entry in log] == [None, "candidate", "candidate"]
    assert [(entry["path"], entry["model"]) for entry in mine] == [
        ("/v1/chat/completions", "gpt-4.1"),
        ("/v1/models", None),
    ]
    assert log[0]["key_fingerprint"] == key_fingerprint(SANDBOX_KEY)
    assert log[0]["time"] <= mine[0]["time"] <= mine[1]["time"]


def test_request_log_records_max_tokens(sandbox):
    call(
        sandbox.base_url + "/chat/completions",
        method="POST",
        payload={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    )

    assert [entry["max_tokens"] for entry in sandbox.requests()] == [1]


def test_key_given_by_digest(sandbox_factory):
    server = sandbox_factory({"keys": [{"sha256": key_sha256(CANARY_KEY), "models": ["gpt-4.1"]}]})

    status, _, body = call(server.base_url + "/models", key=CANARY_KEY)

    assert status == 200
    assert [model["id"] for model in body["data"]] == ["gpt-4.1"]


def test_chat_completion_answers_with_usage(sandbox):
    status, body = chat(sandbox, "deepseek-v3.2")

    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "deepseek-v3.2"
    assert body["choices"][0]["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_listed_but_refused_model(sandbox_factory):
    server = sandbox_factory({"keys": [{"key": SANDBOX_KEY, "refused_models": ["gpt-4.1"]}]})

    listed = [model["id"] for model in call(server.base_url + "/models")[2]["data"]]
    status, body = chat(server, "gpt-4.1")

    assert "gpt-4.1" in listed
    assert status == 403
    assert body["error"]["message"] == "model gpt-4.1 is not permitted for this key"
    assert chat(server, "gemini-2.5-flash")[0] == 200


def test_chat_with_unknown_model_or_bad_key(sandbox):
    assert chat(sandbox, "gpt-5")[0] == 404
    assert chat(sandbox, "gpt-4.1", key="sk-never-issued")[0] == 401


# Faults ----------------------------------------------------------------------------------------


def test_fault_for_the_next_requests_then_normal(sandbox):
    sandbox.fail_next(429, count=2, retry_after=5)

    first = call(sandbox.base_url + "/models")
    second = call(sandbox.base_url + "/models")
    third = call(sandbox.base_url + "/models")

    assert [first[0], second[0], third[0]] == [429, 429, 200]
    assert first[1]["Retry-After"] == "5"
    assert first[2]["error"]["type"] == "rate_limit_error"
    assert [entry["fault"] for entry in sandbox.requests()] == [True, True, False]


def test_fault_always_until_cleared(sandbox):
    sandbox.fail_next(503, count=None)
    assert [call(sandbox.base_url + "/models")[0] for _ in range(3)] == [503, 503, 503]

    sandbox.configure(fault=None)
    assert call(sandbox.base_url + "/models")[0] == 200


def test_fault_limited_to_paths(sandbox):
    sandbox.fail_next(500, count=None, paths=["/v1/chat/"])

    assert call(sandbox.base_url + "/models")[0] == 200
    assert chat(sandbox, "gpt-4.1")[0] == 500


def test_fault_with_raw_body(sandbox):
    sandbox.fail_next(200, body="<html>login</html>", content_type="text/html")

    status, headers, body = call(sandbox.base_url + "/models")

    assert (status, headers["Content-Type"], body) == (200, "text/html", "<html>login</html>")


def test_hang_outlasts_the_client_and_stop_releases_it(sandbox_factory):
    server = sandbox_factory()
    server.configure(hang=True)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        call(server.base_url + "/models", timeout=0.3)

    outcome: list[Exception] = []

    def waiting_client() -> None:
        try:
            call(server.base_url + "/models", timeout=60)
        except Exception as error:
            outcome.append(error)

    client = threading.Thread(target=waiting_client)
    client.start()
    while len(server.requests()) < 2 and client.is_alive():
        time.sleep(0.01)
    assert [entry["status"] for entry in server.requests()] == [None, None]
    server.stop()
    client.join(timeout=30)

    assert not client.is_alive()
    assert outcome, "the hanging request got an answer"


def test_turning_hang_off_releases_held_requests(sandbox):
    sandbox.configure(hang=True)
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(call(sandbox.base_url + "/models", timeout=60)[0]))
    client.start()
    while not sandbox.requests() and client.is_alive():
        time.sleep(0.01)

    sandbox.configure(hang=False)
    client.join(timeout=30)

    assert answers == [200]


# Control endpoints -----------------------------------------------------------------------------


def test_control_endpoints_over_http(sandbox):
    control = sandbox.control_url

    status, _, config = call(control + "/config", method="PUT", payload={"fault": {"status": 502, "count": 1}})
    assert status == 200
    assert config["faults"][0]["status"] == 502
    assert call(sandbox.base_url + "/models")[0] == 502
    assert call(control + "/config")[2]["faults"] == []

    log = call(control + "/requests")[2]["requests"]
    assert [(entry["method"], entry["path"], entry["status"]) for entry in log] == [("GET", "/v1/models", 502)]
    assert log[0]["key_fingerprint"] == key_fingerprint(SANDBOX_KEY)
    assert isinstance(log[0]["time"], float)

    assert call(control + "/requests", method="DELETE")[2] == {"cleared": 1}
    assert call(control + "/requests")[2]["requests"] == []
    assert call(control + "/health")[2] == {"status": "ok"}
    assert call(control + "/nowhere")[0] == 404


def test_control_rejects_bad_changes_and_keeps_the_state(sandbox):
    control = sandbox.control_url

    for change in ({"bogus": 1}, {"port": 9}, {"fault": {"status": 99}}, {"latency_ms": -5}, {"keys": "sk-x"}):
        status, _, body = call(control + "/config", method="PUT", payload=change)
        assert status == 400, change
        assert body["error"]

    assert call(control + "/config")[2]["latency_ms"] == 0
    assert call(sandbox.base_url + "/models")[0] == 200


def test_key_operations_over_http(sandbox):
    control = sandbox.control_url

    call(control + "/config", method="PUT", payload={"rotate_keys": [SANDBOX_KEY], "add_keys": [{"key": CANARY_KEY}]})

    assert call(sandbox.base_url + "/models")[2]["error"]["message"] == "API key has been rotated"
    assert call(sandbox.base_url + "/models", key=CANARY_KEY)[0] == 200


def test_reset_restores_the_starting_configuration(sandbox):
    sandbox.rotate_key(SANDBOX_KEY)
    sandbox.configure(latency_ms=50, hang=False)
    call(sandbox.base_url + "/models")

    status, _, config = call(sandbox.control_url + "/reset", method="POST")

    assert status == 200
    assert config["latency_ms"] == 0
    assert sandbox.requests() == []
    assert call(sandbox.base_url + "/models")[0] == 200


def test_config_round_trips_through_get_and_put(sandbox):
    sandbox.accept_key(CANARY_KEY, models=["gpt-4.1"], refused_models=["gpt-4.1"])
    exported = call(sandbox.control_url + "/config")[2]

    sandbox.configure(keys=[], rotated_keys=[])
    assert call(sandbox.base_url + "/models", key=CANARY_KEY)[0] == 401
    call(sandbox.control_url + "/config", method="PUT", payload=exported)

    assert call(sandbox.base_url + "/models", key=CANARY_KEY)[0] == 200
    assert chat(sandbox, "gpt-4.1", key=CANARY_KEY)[0] == 403


def test_no_key_in_config_or_log(sandbox):
    sandbox.accept_key(CANARY_KEY)
    call(sandbox.base_url + "/models", key=CANARY_KEY)
    call(sandbox.base_url + "/models?api_key=" + CANARY_KEY, key=CANARY_KEY)

    exported = json.dumps(call(sandbox.control_url + "/config")[2]) + json.dumps(sandbox.requests())

    assert CANARY_KEY not in exported
    assert key_fingerprint(CANARY_KEY) in exported
    assert {entry["path"] for entry in sandbox.requests()} == {"/v1/models"}


def test_configuration_errors_raise(sandbox):
    with pytest.raises(SandboxConfigError, match="status"):
        sandbox.configure(fault={"status": 700})
    with pytest.raises(SandboxConfigError, match="unknown sandbox settings: tls_mode"):
        sandbox.configure(tls_mode=True)


# TLS -------------------------------------------------------------------------------------------


def test_tls_is_refused_without_the_certificate_and_works_with_it(sandbox_factory):
    server = sandbox_factory(tls=True)

    with pytest.raises(urllib.error.URLError) as refused:
        call(server.base_url + "/models", context=ssl.create_default_context())
    trusted = call(server.base_url + "/models", context=ssl.create_default_context(cafile=str(server.ca_cert_path)))

    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    assert server.base_url.startswith("https://127.0.0.1:")
    assert trusted[0] == 200
    assert (server.ca_cert_path.parent / "key.pem").stat().st_mode & 0o777 == 0o600


# Command line ----------------------------------------------------------------------------------


def _wait_for(path: Path, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the sandbox wrote no {path.name}: {process.communicate()}")


def test_command_line_serves_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"models": ["gpt-4.1"], "keys": [CANARY_KEY], "latency_ms": 0}))
    port_file, pid_file = tmp_path / "port", tmp_path / "pid"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sandbox", "--host", "127.0.0.1", "--port", "0", "--config", str(config)]
        + ["--port-file", str(port_file), "--pid-file", str(pid_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    port = int(_wait_for(port_file, process))

    status, _, body = call(f"http://127.0.0.1:{port}/v1/models", key=CANARY_KEY)
    assert int(pid_file.read_text()) == process.pid
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)

    assert status == 200
    assert [model["id"] for model in body["data"]] == ["gpt-4.1"]
    assert process.returncode == 0
    assert f"sandbox API at http://127.0.0.1:{port}/v1" in stdout
    assert CANARY_KEY not in stdout + stderr
    assert not port_file.exists() and not pid_file.exists()


def test_command_line_refuses_a_bad_configuration(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"faults": [{"status": "often"}]}))

    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.sandbox", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )

    assert completed.returncode == 2
    assert "invalid configuration" in completed.stderr
