# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to the aigateway.ops collection: nothing here is a public interface,
# and it may change without notice between releases.

"""Ask an OpenAI-compatible API for its model list, with bounded retries and key-safe errors.

Optionally probe each expected model with a minimal chat completion (``max_tokens: 1``), telling a
rejected key (401) from a model the key may not call (403 or 404 for a listed model), and estimate
what each probe cost from the usage the API returns and a price table.

Runs on managed hosts, so it needs only the Python standard library and ansible.module_utils.
"""

from __future__ import annotations

import email.utils
import http
import http.client
import json
import re
import socket
import ssl
import time
import urllib.error
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ansible.module_utils.urls import ConnectionError as AnsibleConnectionError
from ansible.module_utils.urls import Request

USER_AGENT = "aigateway.ops-models_check"
REDACTED = "***"
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 60.0
EXCERPT_LENGTH = 200

# Tokens that look like API keys or bearer credentials, whoever's they are.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)[-_][A-Za-z0-9][A-Za-z0-9_\-*.]{5,}")
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;()]+")
_WHITESPACE = re.compile(r"\s+")

_HINTS = {
    401: "the key was rejected; check the key in Vault",
    403: "the key is valid but may not list models; check the key's permissions with the provider",
    404: "check base_url: it should be the API root, usually ending in /v1",
    429: "the key's rate limit is exhausted; retry later or raise the limit",
}
_SERVER_HINT = "the provider or gateway is failing; retry later"

# Dollars per million tokens, input and output alike, for the probe's cost estimate.
DEFAULT_PRICES: dict[str, float] = {
    "gpt-4.1": 8.0,
    "claude-sonnet-4-20250514": 15.0,
    "gemini-2.5-flash": 2.5,
    "deepseek-v3.2": 0.42,
}
PROBE_PROMPT = "Reply with one word."
_REFUSED_STATUSES = (403, 404)

# What a failed check returns as ``cause``, by the status of the answer that ended it.
_CAUSE_BY_STATUS = {401: "key_rejected", 403: "forbidden", 404: "not_found", 429: "rate_limited"}


class ModelsApiError(Exception):
    """A /models check that could not succeed; the message names the cause and the URL, never the key."""

    def __init__(self, message: str, *, url: str, status: int | None = None, attempts: int = 0, said: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.attempts = attempts
        self.said = said

    @property
    def cause(self) -> str:
        """A short word for what went wrong: key_rejected, forbidden, not_found, rate_limited, ..."""
        if self.status is None:
            return "unreachable"
        if self.status == 200:
            return "bad_answer"
        return _CAUSE_BY_STATUS.get(self.status, "server_error" if self.status >= 500 else "http_error")


class ModelsAnswer:
    """A successful answer: the listed model ids and how the request went."""

    def __init__(self, *, url: str, status: int, models: list[str], latency_ms: int, attempts: int) -> None:
        self.url = url
        self.status = status
        self.models = models
        self.latency_ms = latency_ms
        self.attempts = attempts


class ProbeAnswer:
    """A successful minimal chat completion: its status, timing and the token usage the API reported."""

    def __init__(
        self, *, model: str, status: int, latency_ms: int, attempts: int, usage: dict[str, int | None]
    ) -> None:
        self.model = model
        self.status = status
        self.latency_ms = latency_ms
        self.attempts = attempts
        self.usage = usage


class _AttemptFailed(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        said: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.said = said


def models_url(base_url: str) -> str:
    """The /models URL under an API base URL such as https://api.example.com/v1."""
    return base_url.rstrip("/") + "/models"


def chat_url(base_url: str) -> str:
    """The /chat/completions URL under an API base URL."""
    return base_url.rstrip("/") + "/chat/completions"


def list_models(
    base_url: str,
    api_key: str,
    *,
    timeout: float = 10,
    retries: int = 2,
    retry_delay: float = 1,
    validate_certs: bool = True,
    ca_path: str | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ModelsAnswer:
    """GET {base_url}/models with the key as a Bearer token.

    Connection errors, timeouts, 429 and 5xx answers are retried up to ``retries`` more times,
    waiting ``retry_delay`` seconds and doubling each time (at most 30 s), or what a 429's
    Retry-After asks (at most 60 s). Other failures end the check at once. Raises
    :class:`ModelsApiError`. ``sleep`` waits between attempts (default :func:`time.sleep`).
    """
    api_key = str(api_key)
    secrets = [api_key]
    url = redact(models_url(str(base_url)), secrets, key_like=False)
    status, body, latency_ms, attempts = _send(
        "GET",
        models_url(str(base_url)),
        api_key,
        url=url,
        parse=lambda raw: _model_ids(raw, url, secrets),
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
        validate_certs=validate_certs,
        ca_path=ca_path,
        sleep=sleep,
    )
    return ModelsAnswer(
        url=url,
        status=status,
        models=[redact(model, secrets, key_like=False) for model in body],
        latency_ms=latency_ms,
        attempts=attempts,
    )


def probe_model(
    base_url: str,
    api_key: str,
    model: str,
    *,
    timeout: float = 10,
    retries: int = 2,
    retry_delay: float = 1,
    validate_certs: bool = True,
    ca_path: str | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ProbeAnswer:
    """POST {base_url}/chat/completions for ``model`` with ``max_tokens: 1``: the cheapest call that proves use.

    Retries as :func:`list_models` does. Raises :class:`ModelsApiError`; its ``status`` tells a
    rejected key (401) from a model the key may not call (403, 404).
    """
    api_key = str(api_key)
    url = redact(chat_url(str(base_url)), [api_key], key_like=False)
    payload = {"model": str(model), "messages": [{"role": "user", "content": PROBE_PROMPT}], "max_tokens": 1}
    status, usage, latency_ms, attempts = _send(
        "POST",
        chat_url(str(base_url)),
        api_key,
        url=url,
        payload=payload,
        parse=lambda raw: _usage(raw, url, [api_key]),
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
        validate_certs=validate_certs,
        ca_path=ca_path,
        sleep=sleep,
    )
    return ProbeAnswer(model=str(model), status=status, latency_ms=latency_ms, attempts=attempts, usage=usage)


def cost_usd(usage: dict[str, int | None], price_per_million: float | None) -> float | None:
    """Dollars a call cost: its total tokens at the model's price per million; None when either is unknown."""
    if price_per_million is None or usage.get("total_tokens") is None:
        return None
    return round(float(usage["total_tokens"]) * float(price_per_million) / 1_000_000, 10)


def check_models(
    base_url: str,
    api_key: str,
    *,
    expected_models: Iterable[str] = (),
    match: str = "subset",
    latency_threshold_ms: int | None = None,
    probe: bool = False,
    prices: dict[str, float] | None = None,
    **request_options: Any,
) -> tuple[dict[str, Any], str | None]:
    """Run the whole check: the result fields, and the failure message (None when it passed).

    ``request_options`` go to :func:`list_models` and :func:`probe_model`. The check fails when the
    list cannot be read, when an expected model is missing (or, for ``match="exact"``, an unexpected
    one is listed), or when the answer took longer than ``latency_threshold_ms``. With ``probe``,
    each expected model that is listed is also called once; a 401 there fails the check as a
    rejected key, a 403 or 404 as a model the key may not call. ``prices`` (dollars per million
    tokens, default :data:`DEFAULT_PRICES`) turn each probe's usage into a cost estimate.
    """
    api_key = str(api_key)
    expected = [str(model) for model in expected_models]
    result: dict[str, Any] = {
        "status": None,
        "models": [],
        "missing": [],
        "unexpected": [],
        "latency_ms": None,
        "attempts": 0,
        "url": redact(models_url(str(base_url)), [api_key], key_like=False),
        "cause": None,
        "probes": [],
        "refused": [],
        "cost_usd": None,
    }
    try:
        answer = list_models(base_url, api_key, **request_options)
    except ModelsApiError as error:
        result.update(status=error.status, attempts=error.attempts, url=error.url, cause=error.cause)
        return result, error.message

    missing, unexpected = compare_models(answer.models, expected, match)
    result.update(
        status=answer.status,
        models=answer.models,
        missing=missing,
        unexpected=unexpected,
        latency_ms=answer.latency_ms,
        attempts=answer.attempts,
        url=answer.url,
    )
    problems: list[tuple[str, str]] = []
    if missing:
        problems.append(("models_missing", f"models missing from {answer.url}: {', '.join(missing)}"))
    if unexpected:
        problems.append(
            ("unexpected_models", f"unexpected models at {answer.url} (match is exact): {', '.join(unexpected)}")
        )
    if probe:
        listed = [model for model in _unique(expected) if model not in missing]
        problems.extend(_probe_all(base_url, api_key, listed, answer.url, result, prices, request_options))
    if latency_threshold_ms is not None and answer.latency_ms > latency_threshold_ms:
        problems.append(
            (
                "too_slow",
                f"{answer.url} answered in {answer.latency_ms} ms, "
                f"above the latency threshold of {latency_threshold_ms} ms",
            )
        )
    if not problems:
        return result, None
    result["cause"] = problems[0][0]
    return result, redact("; ".join(message for _cause, message in problems), [api_key], key_like=False)


def _probe_all(
    base_url: str,
    api_key: str,
    models: list[str],
    listed_at: str,
    result: dict[str, Any],
    prices: dict[str, float] | None,
    request_options: dict[str, Any],
) -> list[tuple[str, str]]:
    """Probe each model into ``result``; the problems found, as (cause, message) pairs."""
    prices = DEFAULT_PRICES if prices is None else prices
    problems: list[tuple[str, str]] = []
    refusals: list[str] = []
    total = 0.0
    for model in models:
        price = prices.get(model)
        entry: dict[str, Any] = {
            "model": model,
            "status": None,
            "permitted": None,
            "latency_ms": None,
            "attempts": 0,
            "prompt_tokens": None,
            "completion_tokens": None,
            "total_tokens": None,
            "price_per_million_usd": None if price is None else float(price),
            "cost_usd": None,
            "error": None,
        }
        result["probes"].append(entry)
        try:
            answer = probe_model(base_url, api_key, model, **request_options)
        except ModelsApiError as error:
            entry.update(status=error.status, attempts=error.attempts, error=error.message)
            if error.status == 401:
                # The key itself is refused: every further probe would say the same.
                entry["permitted"] = False
                problems.insert(0, ("key_rejected", f"{error.message} (while probing {model})"))
                break
            if error.status in _REFUSED_STATUSES:
                entry["permitted"] = False
                result["refused"].append(model)
                refusals.append(f"{model} ({error.status} {_phrase(error.status)}: {error.said})")
            else:
                problems.append((error.cause, f"probing {model}: {error.message}"))
            continue
        cost = cost_usd(answer.usage, price)
        entry.update(
            status=answer.status, permitted=True, latency_ms=answer.latency_ms, attempts=answer.attempts, cost_usd=cost
        )
        entry.update(answer.usage)
        total += cost or 0.0
    if result["probes"]:
        result["cost_usd"] = round(total, 10)
    if refusals:
        problems.insert(
            0 if not problems or problems[0][0] != "key_rejected" else 1,
            (
                "model_not_permitted",
                f"models listed by {listed_at} but not permitted for this key: {'; '.join(refusals)} "
                "(the key is accepted; ask the provider to allow these models for it, or remove them from "
                "the expected models)",
            ),
        )
    return problems


def compare_models(
    listed: Iterable[str], expected: Iterable[str], match: str = "subset"
) -> tuple[list[str], list[str]]:
    """Models expected but not listed, and (for ``exact``) models listed but not expected."""
    listed = list(listed)
    expected = list(expected)
    missing = [model for model in _unique(expected) if model not in listed]
    unexpected = [model for model in _unique(listed) if model not in expected] if match == "exact" else []
    return missing, unexpected


def backoff_seconds(attempt: int, retry_delay: float, retry_after: float | None = None) -> float:
    """Wait before the attempt after ``attempt`` (1-based): Retry-After when given, else exponential."""
    if retry_after is not None:
        return max(0.0, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return max(0.0, min(float(retry_delay) * (2 ** (attempt - 1)), MAX_BACKOFF_SECONDS))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header, given as seconds or as an HTTP date; None if absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def provider_message(body: bytes | str | None) -> str:
    """The provider's own words from an error body: JSON ``error.message``, ``message``, ``error``, or text."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and error.get("message"):
            return excerpt(str(error["message"]))
        for field in ("message", "detail", "error_description"):
            if isinstance(document.get(field), str) and document[field].strip():
                return excerpt(document[field])
        if isinstance(error, str) and error.strip():
            return excerpt(error)
    return excerpt(text)


def excerpt(text: str, length: int = EXCERPT_LENGTH) -> str:
    """One line of at most ``length`` characters."""
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= length else text[: length - 3].rstrip() + "..."


def redact(text: str, secrets: Iterable[str], *, key_like: bool = True) -> str:
    """Text with the given secrets replaced by ***.

    With ``key_like`` (for text a server wrote), also bearer credentials, key-like tokens, and any
    word sharing eight consecutive characters with a secret: providers often echo a shortened key
    such as "sk-abcd...wxyz".
    """
    text = str(text)
    secrets = [str(secret) for secret in secrets if secret]
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if not key_like:
        return text
    pieces = {secret[index : index + 8] for secret in secrets if len(secret) >= 12 for index in range(len(secret) - 7)}
    if pieces:
        text = " ".join(REDACTED if any(piece in word for piece in pieces) else word for word in text.split(" "))
    text = _BEARER.sub("Bearer " + REDACTED, text)
    return _KEY_LIKE.sub(REDACTED, text)


def _send(
    method: str,
    target: str,
    api_key: str,
    *,
    url: str,
    parse: Callable[[bytes], Any],
    payload: Any = None,
    timeout: float = 10,
    retries: int = 2,
    retry_delay: float = 1,
    validate_certs: bool = True,
    ca_path: str | None = None,
    sleep: Callable[[float], None] | None = None,
) -> tuple[int, Any, int, int]:
    """One API call with retries: status, parsed body, latency of the last attempt (ms), attempts."""
    sleep = sleep or time.sleep
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(target).hostname:
        raise ModelsApiError(f"base_url must be an http:// or https:// URL with a host, got {url}", url=url)
    if ca_path is not None:
        try:
            with open(str(ca_path), "rb"):
                pass
        except OSError as error:
            raise ModelsApiError(
                f"cannot read ca_path {ca_path} ({error.strerror}); check the CA bundle path", url=url
            ) from None

    headers = {"Authorization": "Bearer " + api_key, "Accept": "application/json"}
    data = None
    if payload is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(payload).encode("utf-8")
    # Authorization stays off redirected requests, so a redirect never carries the key elsewhere.
    request = Request(
        headers=headers,
        timeout=float(timeout),
        validate_certs=bool(validate_certs),
        ca_path=None if ca_path is None else str(ca_path),
        http_agent=USER_AGENT,
        follow_redirects="safe",
        unredirected_headers=["Authorization"],
        use_netrc=False,
    )
    secrets = [api_key]
    attempts = 0
    while True:
        attempts += 1
        try:
            status, body, latency_ms = _attempt(request, method, target, data, timeout, url, secrets)
            return status, parse(body), latency_ms, attempts
        except _AttemptFailed as failure:
            if not failure.retryable or attempts > retries:
                message = failure.message
                if failure.retryable and attempts > 1:
                    message = f"{message}; gave up after {attempts} attempts"
                raise ModelsApiError(
                    redact(message, secrets, key_like=False),
                    url=url,
                    status=failure.status,
                    attempts=attempts,
                    said=failure.said,
                ) from None
            sleep(backoff_seconds(attempts, retry_delay, failure.retry_after))


def _attempt(
    request: Request, method: str, target: str, data: bytes | None, timeout: float, url: str, secrets: list[str]
) -> tuple[int, bytes, int]:
    started = time.monotonic()
    try:
        response = request.open(method, target, data=data)
        try:
            body = response.read()
        finally:
            response.close()
        status = int(response.status)
    except urllib.error.HTTPError as error:
        raise _http_failure(error, url, secrets) from None
    except urllib.error.URLError as error:
        raise _connection_failure(error.reason, url, timeout) from None
    except (ssl.SSLError, socket.timeout, TimeoutError, http.client.HTTPException, OSError) as error:
        raise _connection_failure(error, url, timeout) from None
    except AnsibleConnectionError as error:
        raise _AttemptFailed(f"cannot reach {url}: {redact(str(error), secrets)}", retryable=True) from None
    except ValueError as error:
        raise _AttemptFailed(f"cannot request {url}: {redact(str(error), secrets)}; check base_url") from None
    return status, body, int(round((time.monotonic() - started) * 1000))


def _http_failure(error: urllib.error.HTTPError, url: str, secrets: list[str]) -> _AttemptFailed:
    status = int(error.code)
    try:
        body = error.read() if error.fp is not None else b""
    except (OSError, http.client.HTTPException, ValueError):
        body = b""
    finally:
        error.close()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    # Whatever the server wrote is redacted before it joins our own words.
    said = redact(provider_message(body) or str(error.reason or phrase), secrets)
    hint = _HINTS.get(status, _SERVER_HINT if status >= 500 else "")
    message = f"{status} {phrase} from {url}: {said}" + (f" ({hint})" if hint else "")
    retryable = status == 429 or status >= 500
    retry_after = parse_retry_after(error.headers.get("Retry-After")) if error.headers is not None else None
    return _AttemptFailed(
        message, status=status, retryable=retryable, retry_after=retry_after if retryable else None, said=said
    )


def _connection_failure(reason: Any, url: str, timeout: float) -> _AttemptFailed:
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = reason.verify_message or reason.reason or str(reason)
        return _AttemptFailed(
            f"TLS certificate of {url} could not be verified: {detail} "
            "(check ca_path, or the host's trusted CA certificates)"
        )
    if isinstance(reason, ssl.SSLError):
        detail = reason.reason or str(reason)
        return _AttemptFailed(
            f"TLS handshake with {url} failed: {detail} (check that base_url uses the scheme and port the API serves)"
        )
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return _AttemptFailed(
            f"no answer from {url} within {_seconds(timeout)} s (check the network path, or raise timeout)",
            retryable=True,
        )
    if isinstance(reason, ConnectionRefusedError):
        return _AttemptFailed(
            f"connection to {url} refused (check base_url and that the API is reachable from this host)",
            retryable=True,
        )
    if isinstance(reason, socket.gaierror):
        return _AttemptFailed(
            f"cannot resolve the host of {url}: {reason.strerror or reason} (check base_url and DNS)", retryable=True
        )
    detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return _AttemptFailed(f"cannot reach {url}: {detail}", retryable=True)


def _model_ids(body: bytes, url: str, secrets: list[str]) -> list[str]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        said = redact(excerpt(body.decode("utf-8", "replace")), secrets) or "(empty body)"
        raise _AttemptFailed(
            f"{url} answered 200 but not with JSON: {said} (check that base_url is an OpenAI-compatible API)",
            status=200,
        ) from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise _AttemptFailed(
            f"{url} answered 200 but not with a model list (no 'data' array); "
            "check that base_url is an OpenAI-compatible API",
            status=200,
        )
    ids = []
    for item in data:
        model = item.get("id") if isinstance(item, dict) else item
        if isinstance(model, str) and model:
            ids.append(model)
    return ids


def _usage(body: bytes, url: str, secrets: list[str]) -> dict[str, int | None]:
    """Token counts from a chat completion's ``usage``; None where the API gave none."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        said = redact(excerpt(body.decode("utf-8", "replace")), secrets) or "(empty body)"
        raise _AttemptFailed(
            f"{url} answered 200 but not with JSON: {said} (check that base_url is an OpenAI-compatible API)",
            status=200,
        ) from None
    usage = document.get("usage") if isinstance(document, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    counts: dict[str, int | None] = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(name)
        counts[name] = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if (
        counts["total_tokens"] is None
        and counts["prompt_tokens"] is not None
        and counts["completion_tokens"] is not None
    ):
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    return counts


def _phrase(status: int | None) -> str:
    try:
        return http.HTTPStatus(int(status or 0)).phrase
    except ValueError:
        return "HTTP error"


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
