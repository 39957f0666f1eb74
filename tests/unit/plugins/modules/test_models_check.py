"""aigateway.ops.models_check, run in-process against a real local sandbox API server."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.support.sandbox import DEFAULT_MODELS, SandboxServer
from tests.support.sandbox_fixtures import SANDBOX_KEY

# The module imports its engine by collection name; .collections links the repository in.
_COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.aigateway.ops.plugins.module_utils import _models_api  # noqa: E402
from ansible_collections.aigateway.ops.plugins.modules import models_check  # noqa: E402

CANARY_KEY = "sk-canary-5b0d6a3e9f214c7d8e1a4c2b"
ROTATED_MESSAGE = "API key has been rotated (the key was rejected; check the key in Vault)"


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> dict[str, Any]:
    """Run the module's main() with these arguments; return its JSON result (``failed`` set on failure)."""
    capsys.readouterr()
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        models_check.main()
    result = json.loads(capsys.readouterr().out)
    assert (exited.value.code == 0) != bool(result.get("failed")), result
    return result


def check(capsys: pytest.CaptureFixture[str], server: SandboxServer, **args: Any) -> dict[str, Any]:
    options = {"base_url": server.base_url, "api_key": SANDBOX_KEY, "retry_delay": 0, **args}
    return run_module(capsys, **options)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Success and model matching -------------------------------------------------------------------


def test_success_returns_models_status_and_url(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=list(DEFAULT_MODELS))

    assert not result.get("failed")
    assert result["changed"] is False
    assert result["status"] == 200
    assert result["models"] == list(DEFAULT_MODELS)
    assert result["missing"] == []
    assert result["unexpected"] == []
    assert result["attempts"] == 1
    assert result["url"] == sandbox.base_url + "/models"
    assert isinstance(result["latency_ms"], int)
    assert [(r["method"], r["path"], r["status"]) for r in sandbox.requests()] == [("GET", "/v1/models", 200)]


def test_trailing_slash_on_base_url_is_tolerated(capsys, sandbox):
    result = check(capsys, sandbox, base_url=sandbox.base_url + "/")

    assert not result.get("failed")
    assert result["url"] == sandbox.base_url + "/models"


def test_subset_passes_when_more_models_are_listed(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-4.1", "deepseek-v3.2"])

    assert not result.get("failed")
    assert result["unexpected"] == []


def test_exact_passes_with_the_same_models_in_another_order(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=list(reversed(DEFAULT_MODELS)), match="exact")

    assert not result.get("failed")


def test_exact_fails_on_unexpected_models(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-4.1", "deepseek-v3.2"], match="exact")

    assert result["failed"]
    assert result["unexpected"] == ["claude-sonnet-4-20250514", "gemini-2.5-flash"]
    assert result["missing"] == []
    url = sandbox.base_url + "/models"
    assert result["msg"] == f"unexpected models at {url} (match is exact): claude-sonnet-4-20250514, gemini-2.5-flash"


def test_missing_models_are_named(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-4.1", "gpt-5", "o3-mini"])

    assert result["failed"]
    assert result["status"] == 200
    assert result["missing"] == ["gpt-5", "o3-mini"]
    assert result["msg"] == f"models missing from {sandbox.base_url}/models: gpt-5, o3-mini"


def test_exact_reports_missing_and_unexpected_together(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=[*DEFAULT_MODELS[:3], "gpt-5"], match="exact")

    assert result["missing"] == ["gpt-5"]
    assert result["unexpected"] == ["deepseek-v3.2"]
    assert "models missing from" in result["msg"] and "unexpected models at" in result["msg"]


def test_models_are_those_the_key_may_see(capsys, sandbox_factory):
    server = sandbox_factory({"models": list(DEFAULT_MODELS), "keys": [{"key": SANDBOX_KEY, "models": ["gpt-4.1"]}]})

    result = check(capsys, server, expected_models=["gpt-4.1", "gemini-2.5-flash"])

    assert result["models"] == ["gpt-4.1"]
    assert result["missing"] == ["gemini-2.5-flash"]


def test_check_mode_still_checks(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-5"], _ansible_check_mode=True)

    assert result["failed"]
    assert result["missing"] == ["gpt-5"]
    assert len(sandbox.requests()) == 1


# Answers that are not retried ------------------------------------------------------------------


def test_rotated_key_fails_with_the_providers_message(capsys, sandbox):
    sandbox.rotate_key(SANDBOX_KEY)

    result = check(capsys, sandbox, expected_models=list(DEFAULT_MODELS))

    assert result["failed"]
    assert result["status"] == 401
    assert result["msg"] == f"401 Unauthorized from {sandbox.base_url}/models: {ROTATED_MESSAGE}"
    assert result["models"] == []
    assert result["latency_ms"] is None


def test_expired_key_answers_rotated(capsys, sandbox):
    sandbox.accept_key(CANARY_KEY, expires_at=time.time() - 60)

    result = check(capsys, sandbox, api_key=CANARY_KEY)

    assert result["msg"] == f"401 Unauthorized from {sandbox.base_url}/models: {ROTATED_MESSAGE}"


def test_unknown_key_fails_with_invalid_api_key(capsys, sandbox):
    result = check(capsys, sandbox, api_key="sk-not-a-key-the-sandbox-knows")

    assert result["status"] == 401
    assert result["msg"].startswith(f"401 Unauthorized from {sandbox.base_url}/models: Invalid API key (")


def test_forbidden_names_status_and_message(capsys, sandbox):
    sandbox.fail_next(403, count=None, message="this key may not list models")

    result = check(capsys, sandbox)

    assert result["status"] == 403
    assert result["msg"].startswith(f"403 Forbidden from {sandbox.base_url}/models: this key may not list models (")
    assert "permissions" in result["msg"]


def test_wrong_base_url_answers_404_with_a_hint(capsys, sandbox):
    result = check(capsys, sandbox, base_url=sandbox.root_url)

    assert result["status"] == 404
    assert result["url"] == sandbox.root_url + "/models"
    assert result["msg"].startswith(f"404 Not Found from {sandbox.root_url}/models: Unknown request URL")
    assert "check base_url" in result["msg"]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_not_retried(capsys, sandbox, status):
    sandbox.fail_next(status, count=None)

    result = check(capsys, sandbox, retries=3)

    assert result["status"] == status
    assert result["attempts"] == 1
    assert len(sandbox.requests()) == 1
    assert "gave up" not in result["msg"]


# Answers that are retried ----------------------------------------------------------------------


def test_rate_limit_then_success_within_retries(capsys, sandbox):
    sandbox.fail_next(429, count=2, retry_after=0)

    result = check(capsys, sandbox, retries=2, expected_models=["gpt-4.1"])

    assert not result.get("failed")
    assert result["status"] == 200
    assert result["attempts"] == 3
    assert [r["status"] for r in sandbox.requests()] == [429, 429, 200]


def test_rate_limit_beyond_retries_fails(capsys, sandbox):
    sandbox.fail_next(429, count=None, retry_after=0)

    result = check(capsys, sandbox, retries=1)

    assert result["status"] == 429
    assert result["attempts"] == 2
    assert result["msg"].startswith(f"429 Too Many Requests from {sandbox.base_url}/models: Rate limit reached")
    assert result["msg"].endswith("; gave up after 2 attempts")


@pytest.mark.parametrize(
    ("status", "phrase"), [(500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable")]
)
def test_server_errors_are_retried_then_fail(capsys, sandbox, status, phrase):
    sandbox.fail_next(status, count=None)

    result = check(capsys, sandbox, retries=2)

    assert result["failed"]
    assert result["status"] == status
    assert result["attempts"] == 3
    assert [r["status"] for r in sandbox.requests()] == [status] * 3
    assert result["msg"].startswith(f"{status} {phrase} from {sandbox.base_url}/models: ")
    assert "retry later" in result["msg"]


def test_server_error_then_success(capsys, sandbox):
    sandbox.fail_next(500, count=1)

    result = check(capsys, sandbox, retries=1)

    assert not result.get("failed")
    assert result["attempts"] == 2


def test_retries_zero_means_one_attempt(capsys, sandbox):
    sandbox.fail_next(503, count=None)

    result = check(capsys, sandbox, retries=0)

    assert result["attempts"] == 1
    assert "gave up" not in result["msg"]


def test_timeout_is_retried_and_named(capsys, sandbox):
    sandbox.configure(hang=True)

    result = check(capsys, sandbox, timeout=0.5, retries=1)

    assert result["failed"]
    assert result["status"] is None
    assert result["attempts"] == 2
    assert result["msg"] == (
        f"no answer from {sandbox.base_url}/models within 0.5 s (check the network path, or raise timeout); "
        "gave up after 2 attempts"
    )


def test_connection_refused_is_retried_and_named(capsys):
    base_url = f"http://127.0.0.1:{closed_port()}/v1"

    result = run_module(capsys, base_url=base_url, api_key=SANDBOX_KEY, retries=1, retry_delay=0)

    assert result["status"] is None
    assert result["attempts"] == 2
    assert result["msg"].startswith(f"connection to {base_url}/models refused (")


def test_retry_waits_grow_and_honour_retry_after(sandbox):
    waits: list[float] = []
    sandbox.configure(faults=[{"status": 500, "count": 2}, {"status": 429, "count": 1, "retry_after": 7}])

    answer = _models_api.list_models(sandbox.base_url, SANDBOX_KEY, retries=3, retry_delay=0.5, sleep=waits.append)

    assert answer.attempts == 4
    assert waits == [0.5, 1.0, 7.0]


def test_retry_after_is_capped(sandbox):
    waits: list[float] = []
    sandbox.fail_next(429, count=1, retry_after=3600)

    _models_api.list_models(sandbox.base_url, SANDBOX_KEY, retries=1, sleep=waits.append)

    assert waits == [_models_api.MAX_RETRY_AFTER_SECONDS]


def test_backoff_is_capped():
    assert _models_api.backoff_seconds(10, 1) == _models_api.MAX_BACKOFF_SECONDS
    assert _models_api.backoff_seconds(3, 1) == 4


def test_retry_after_as_http_date():
    assert _models_api.parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert _models_api.parse_retry_after("soon") is None
    assert _models_api.parse_retry_after(None) is None


# TLS -------------------------------------------------------------------------------------------


def test_untrusted_certificate_fails_without_retry(capsys, sandbox_factory):
    server = sandbox_factory(tls=True)

    result = check(capsys, server, retries=2)

    assert result["failed"]
    assert result["status"] is None
    assert result["attempts"] == 1
    assert result["msg"].startswith(f"TLS certificate of {server.base_url}/models could not be verified: ")
    assert "ca_path" in result["msg"]
    assert server.requests() == []


def test_certificate_trusted_through_ca_path(capsys, sandbox_factory):
    server = sandbox_factory(tls=True)

    result = check(capsys, server, ca_path=str(server.ca_cert_path), expected_models=["gpt-4.1"])

    assert not result.get("failed"), result["msg"]
    assert result["url"].startswith("https://")


def test_validate_certs_false_accepts_the_self_signed_certificate(capsys, sandbox_factory):
    server = sandbox_factory(tls=True)

    result = check(capsys, server, validate_certs=False)

    assert not result.get("failed"), result["msg"]


def test_https_to_a_plain_http_server_is_a_tls_error(capsys, sandbox):
    base_url = sandbox.base_url.replace("http://", "https://")

    result = check(capsys, sandbox, base_url=base_url)

    assert result["msg"].startswith(f"TLS handshake with {base_url}/models failed: ")


def test_unreadable_ca_path_is_named(capsys, sandbox, tmp_path):
    result = check(capsys, sandbox, ca_path=str(tmp_path / "absent.pem"))

    assert result["msg"].startswith(f"cannot read ca_path {tmp_path / 'absent.pem'} ")
    assert sandbox.requests() == []


# Bodies ----------------------------------------------------------------------------------------


def test_non_json_answer_is_named(capsys, sandbox):
    sandbox.fail_next(200, body="<html><body>Please sign in to the corporate proxy</body></html>")

    result = check(capsys, sandbox)

    assert result["failed"]
    assert result["status"] == 200
    assert result["attempts"] == 1
    assert result["msg"].startswith(
        f"{sandbox.base_url}/models answered 200 but not with JSON: <html><body>Please sign"
    )


def test_json_without_a_model_list_is_named(capsys, sandbox):
    sandbox.fail_next(200, body={"status": "ok"})

    result = check(capsys, sandbox)

    assert "answered 200 but not with a model list" in result["msg"]


def test_error_with_top_level_message_shape(capsys, sandbox):
    sandbox.fail_next(403, body={"error": "Forbidden", "message": "key lacks the models:read scope"})

    result = check(capsys, sandbox)

    assert result["msg"].startswith(f"403 Forbidden from {sandbox.base_url}/models: key lacks the models:read scope (")


def test_error_with_plain_string_shape(capsys, sandbox):
    sandbox.fail_next(401, body={"error": "token expired"})

    result = check(capsys, sandbox)

    assert result["msg"].startswith(f"401 Unauthorized from {sandbox.base_url}/models: token expired (")


def test_plain_text_error_body_is_quoted_and_truncated(capsys, sandbox):
    sandbox.fail_next(502, count=None, body="upstream connect error " + "x" * 5000)

    result = check(capsys, sandbox, retries=0)

    said = result["msg"].split(": ", 1)[1]
    assert said.startswith("upstream connect error xxx")
    assert "..." in said
    assert len(result["msg"]) < 400


# Latency ---------------------------------------------------------------------------------------


def test_latency_above_threshold_fails_with_both_numbers(capsys, sandbox):
    sandbox.configure(latency_ms=300)

    result = check(capsys, sandbox, latency_threshold_ms=1, expected_models=list(DEFAULT_MODELS))

    assert result["failed"]
    assert result["status"] == 200
    assert result["models"] == list(DEFAULT_MODELS)
    match = re.fullmatch(
        rf"{re.escape(sandbox.base_url)}/models answered in (\d+) ms, above the latency threshold of 1 ms",
        result["msg"],
    )
    assert match, result["msg"]
    assert int(match.group(1)) == result["latency_ms"]


def test_latency_below_threshold_passes(capsys, sandbox):
    sandbox.configure(latency_ms=300)

    result = check(capsys, sandbox, latency_threshold_ms=600_000)

    assert not result.get("failed")


# Probing each model ----------------------------------------------------------------------------


def test_probe_calls_each_expected_model_once_with_one_token(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=list(DEFAULT_MODELS), probe_models=True)

    assert not result.get("failed"), result["msg"]
    assert result["cause"] is None
    assert [probe["model"] for probe in result["probes"]] == list(DEFAULT_MODELS)
    assert {probe["status"] for probe in result["probes"]} == {200}
    assert all(probe["permitted"] for probe in result["probes"])
    chats = [entry for entry in sandbox.requests() if entry["method"] == "POST"]
    assert [(entry["path"], entry["model"], entry["max_tokens"]) for entry in chats] == [
        ("/v1/chat/completions", model, 1) for model in DEFAULT_MODELS
    ]
    assert sandbox.requests()[0]["path"] == "/v1/models"


def test_probe_cost_comes_from_the_usage_and_the_default_prices(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-4.1", "deepseek-v3.2"], probe_models=True)

    gpt, deepseek = result["probes"]
    assert gpt["total_tokens"] == gpt["prompt_tokens"] + gpt["completion_tokens"] > 0
    assert gpt["price_per_million_usd"] == 8.0
    assert deepseek["price_per_million_usd"] == 0.42
    assert gpt["cost_usd"] == pytest.approx(gpt["total_tokens"] * 8.0 / 1_000_000)
    assert deepseek["cost_usd"] == pytest.approx(deepseek["total_tokens"] * 0.42 / 1_000_000)
    assert result["cost_usd"] == pytest.approx(gpt["cost_usd"] + deepseek["cost_usd"])


def test_probe_prices_option_replaces_the_table(capsys, sandbox):
    result = check(
        capsys, sandbox, expected_models=["gpt-4.1", "gemini-2.5-flash"], probe_models=True, prices={"gpt-4.1": "2"}
    )

    gpt, gemini = result["probes"]
    assert gpt["cost_usd"] == pytest.approx(gpt["total_tokens"] * 2 / 1_000_000)
    assert gemini["price_per_million_usd"] is None
    assert gemini["cost_usd"] is None
    assert result["cost_usd"] == pytest.approx(gpt["cost_usd"])


def test_a_negative_price_is_refused(capsys, sandbox):
    result = check(capsys, sandbox, probe_models=True, prices={"gpt-4.1": -1})

    assert result["msg"] == "prices: the price of gpt-4.1 must be at least 0, got -1"
    assert sandbox.requests() == []


def test_without_probe_no_model_is_called(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=list(DEFAULT_MODELS))

    assert result["probes"] == [] and result["refused"] == []
    assert result["cost_usd"] is None
    assert {entry["method"] for entry in sandbox.requests()} == {"GET"}


def test_listed_but_refused_model_is_not_permitted_not_a_rejected_key(capsys, sandbox_factory):
    server = sandbox_factory({"keys": [{"key": SANDBOX_KEY, "refused_models": ["gemini-2.5-flash"]}]})

    result = check(capsys, server, expected_models=list(DEFAULT_MODELS), probe_models=True)

    assert result["failed"]
    assert result["status"] == 200
    assert result["missing"] == []
    assert result["cause"] == "model_not_permitted"
    assert result["refused"] == ["gemini-2.5-flash"]
    by_model = {probe["model"]: probe for probe in result["probes"]}
    assert by_model["gemini-2.5-flash"]["permitted"] is False
    assert by_model["gemini-2.5-flash"]["status"] == 403
    assert by_model["deepseek-v3.2"]["permitted"] is True
    assert result["msg"] == (
        f"models listed by {server.base_url}/models but not permitted for this key: gemini-2.5-flash "
        "(403 Forbidden: model gemini-2.5-flash is not permitted for this key) (the key is accepted; ask the "
        "provider to allow these models for it, or remove them from the expected models)"
    )


def test_a_listed_model_answering_404_is_not_permitted(capsys, sandbox):
    sandbox.fail_next(404, count=1, paths=["/v1/chat/"], message="The model `gpt-4.1` does not exist")

    result = check(capsys, sandbox, expected_models=["gpt-4.1", "deepseek-v3.2"], probe_models=True)

    assert result["cause"] == "model_not_permitted"
    assert result["refused"] == ["gpt-4.1"]
    assert "gpt-4.1 (404 Not Found: The model `gpt-4.1` does not exist)" in result["msg"]


def test_rejected_key_is_told_apart_from_a_refused_model(capsys, sandbox):
    sandbox.rotate_key(SANDBOX_KEY)

    result = check(capsys, sandbox, expected_models=list(DEFAULT_MODELS), probe_models=True)

    assert result["cause"] == "key_rejected"
    assert result["refused"] == []
    assert result["probes"] == []
    assert result["msg"] == f"401 Unauthorized from {sandbox.base_url}/models: {ROTATED_MESSAGE}"


def test_key_rejected_during_the_probes_stops_them(capsys, sandbox):
    sandbox.accept_key(CANARY_KEY, expires_after_requests=2)

    result = check(capsys, sandbox, api_key=CANARY_KEY, expected_models=list(DEFAULT_MODELS), probe_models=True)

    assert result["cause"] == "key_rejected"
    assert [(probe["model"], probe["status"]) for probe in result["probes"]] == [
        ("gpt-4.1", 200),
        ("claude-sonnet-4-20250514", 401),
    ]
    assert result["msg"] == (
        f"401 Unauthorized from {sandbox.base_url}/chat/completions: {ROTATED_MESSAGE} "
        "(while probing claude-sonnet-4-20250514)"
    )


def test_missing_models_are_not_probed(capsys, sandbox):
    result = check(capsys, sandbox, expected_models=["gpt-5", "deepseek-v3.2"], probe_models=True)

    assert result["cause"] == "models_missing"
    assert [probe["model"] for probe in result["probes"]] == ["deepseek-v3.2"]


def test_probe_rate_limit_honours_retry_after(sandbox):
    waits: list[float] = []
    sandbox.fail_next(429, count=1, retry_after=7, paths=["/v1/chat/"])

    answer = _models_api.probe_model(sandbox.base_url, SANDBOX_KEY, "gpt-4.1", retries=2, sleep=waits.append)

    assert answer.status == 200
    assert answer.attempts == 2
    assert waits == [7.0]
    assert [entry["status"] for entry in sandbox.requests()] == [429, 200]


def test_probe_rate_limit_beyond_retries_is_named(capsys, sandbox):
    sandbox.fail_next(429, count=None, retry_after=0, paths=["/v1/chat/"])

    result = check(capsys, sandbox, expected_models=["gpt-4.1"], probe_models=True, retries=1)

    assert result["cause"] == "rate_limited"
    assert result["probes"][0]["attempts"] == 2
    assert result["msg"].startswith(f"probing gpt-4.1: 429 Too Many Requests from {sandbox.base_url}/chat/completions")


def test_canary_key_never_appears_in_probe_results(capsys, canary_sandbox):
    for changes in (
        {"fault": {"status": 403, "paths": ["/v1/chat/"], "message": f"key {CANARY_KEY} may not use gpt-4.1"}},
        {"fault": {"status": 401, "paths": ["/v1/chat/"], "message": f"revoked: {CANARY_KEY}"}},
        {"fault": {"status": 200, "paths": ["/v1/chat/"], "body": f"<p>{CANARY_KEY}</p>"}},
    ):
        canary_sandbox.reset()
        canary_sandbox.configure(**changes)
        result = check(
            capsys, canary_sandbox, api_key=CANARY_KEY, retries=0, expected_models=["gpt-4.1"], probe_models=True
        )
        text = json.dumps(result)
        assert result["failed"]
        assert CANARY_KEY[:12] not in text, changes


# Arguments -------------------------------------------------------------------------------------


def test_base_url_must_be_http(capsys):
    result = run_module(capsys, base_url="ftp://example.com/v1", api_key=SANDBOX_KEY)

    assert result["msg"] == "base_url must be an http:// or https:// URL with a host, got ftp://example.com/v1/models"


def test_negative_retries_are_refused(capsys, sandbox):
    result = check(capsys, sandbox, retries=-1)

    assert result["msg"] == "retries must be at least 0, got -1"
    assert sandbox.requests() == []


# The key never shows -------------------------------------------------------------------------


@pytest.fixture
def canary_sandbox(sandbox_factory):
    return sandbox_factory({"models": list(DEFAULT_MODELS), "keys": [CANARY_KEY], "echo_key_in_errors": True})


def _canary_cases(server: SandboxServer) -> list[tuple[str, dict[str, Any]]]:
    """Scenarios in which the server puts the key, or a shortened copy, into what it answers."""
    short = f"{CANARY_KEY[:8]}********{CANARY_KEY[-4:]}"
    return [
        ("success", {}),
        ("rotated, echoed", {"rotate_keys": [CANARY_KEY]}),
        ("forbidden, echoed", {"fault": {"status": 403, "message": f"key {CANARY_KEY} lacks access"}}),
        ("shortened key", {"fault": {"status": 401, "message": f"Incorrect API key provided: {short}"}}),
        ("bearer echoed", {"fault": {"status": 500, "count": None, "body": f"bad header Bearer {CANARY_KEY}"}}),
        ("non-JSON echo", {"fault": {"status": 200, "body": f"<p>welcome {CANARY_KEY}</p>"}}),
        ("model named like the key", {"fault": {"status": 200, "body": {"data": [{"id": CANARY_KEY}]}}}),
    ]


def test_canary_key_never_appears_in_module_results(capsys, canary_sandbox):
    for name, changes in _canary_cases(canary_sandbox):
        canary_sandbox.reset()
        if changes:
            canary_sandbox.configure(**changes)
        result = check(capsys, canary_sandbox, api_key=CANARY_KEY, retries=0, expected_models=["gpt-4.1"])
        text = json.dumps(result)
        assert CANARY_KEY not in text, name
        assert CANARY_KEY[:12] not in text, name


def test_canary_key_is_redacted_by_the_engine_itself(canary_sandbox):
    # AnsibleModule masks no_log values in what it prints; this proves the engine's own redaction.
    for name, changes in _canary_cases(canary_sandbox):
        canary_sandbox.reset()
        if changes:
            canary_sandbox.configure(**changes)
        result, failure = _models_api.check_models(
            canary_sandbox.base_url, CANARY_KEY, expected_models=["gpt-4.1"], retries=0
        )
        text = json.dumps(result) + (failure or "")
        assert CANARY_KEY not in text, name
        assert CANARY_KEY[:12] not in text, name
        if name != "success":
            assert failure, name


def test_key_in_base_url_is_redacted(capsys, canary_sandbox):
    base_url = f"{canary_sandbox.base_url}?key={CANARY_KEY}"

    result, failure = _models_api.check_models(base_url, CANARY_KEY, retries=0)

    assert CANARY_KEY not in result["url"]
    assert CANARY_KEY not in (failure or "")


def test_redact_keeps_ordinary_words():
    text = "401 Unauthorized from http://127.0.0.1/v1/models: invalid_api_key for sk-abc123xyz789 (Bearer tok)"

    assert _models_api.redact(text, ["unrelated-secret-value"]) == (
        "401 Unauthorized from http://127.0.0.1/v1/models: invalid_api_key for *** (Bearer ***)"
    )
