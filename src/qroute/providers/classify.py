"""Every provider answer becomes a `ProviderOutcome`: what happened and what to do next.

The table (docs/provider-errors.md has it for readers) follows the providers'
documented meanings (reference §1.3): rate limits retry the same route after the
server's hint; exhausted quota, bad credentials, missing models and too-long
prompts fail over to another route; a request the provider rejects on its merits
is terminal for the job; transient server trouble retries. `x-should-retry`
overrides the table, as it does in the official SDKs.

Nothing here raises: garbage in gives `malformed_response`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import httpx

from qroute.models import AttemptAction, AttemptOutcome, Usage
from qroute.providers.base import ProviderOutcome, RateLimitSnapshot
from qroute.providers.errors import NO_ERROR, ProviderError, load_json, parse_error
from qroute.providers.ratelimit import (
    parse_go_duration,
    parse_rate_limit,
    rate_headers,
    retry_after_seconds,
    should_retry_header,
    wait_from_snapshot,
)

QUOTA_CODES = frozenset(
    {
        # OpenAI (may come with type insufficient_quota; the code says which)
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "billing_hard_limit_reached",
        # Anthropic error.details.error_code
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)
"""Codes meaning "this account cannot pay for more now": retrying the route is pointless."""

CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTENT_FILTER_CODES = frozenset(
    {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}
)
AUTH_400_CODES = frozenset({"api_key_invalid", "failed_precondition", "permission_denied", "unauthenticated"})
"""Gemini answers a bad key (API_KEY_INVALID) and a billing/region problem (FAILED_PRECONDITION) with 400."""
UNSUPPORTED_PARAM_CODES = frozenset({"unsupported_value", "unsupported_parameter"})
"""This model rejects a parameter (e.g. temperature on a reasoning model); another model may not."""

_CONTEXT_PHRASES = (
    "maximum context length",  # OpenAI, vLLM, DeepSeek, Mistral
    "context length",
    "context window",
    "prompt is too long",  # Anthropic
    "input token count",  # Gemini: "The input token count (N) exceeds the maximum number of tokens allowed (M)."
    "exceeds the maximum number of tokens",
    "too many input tokens",
)
_QUOTA_PHRASES = (
    "request too large for",  # OpenAI: one request above the whole TPM limit can never pass here
    "specified api usage limits",  # Anthropic 400: workspace/org spend limit reached
    "credit balance is too low",  # Anthropic 400: prepaid credits used up
)
_MESSAGE_WAIT = (
    re.compile(r"try again in (\d[0-9.hmsuµμn]*)", re.IGNORECASE),  # OpenAI: "Please try again in 644ms."
    re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE),  # Azure
)


@dataclass(frozen=True, slots=True)
class Completion:
    """A parsed 2xx body: the answer, why it stopped, what it used.

    `usage` may be None only when the provider blocked the prompt and reported
    nothing (e.g. Gemini `promptFeedback.blockReason`).
    """

    text: str
    finish_reason: str | None
    usage: Usage | None


SuccessParser = Callable[[Any], Completion | str]
"""Family-specific reader of a decoded 2xx body: a `Completion`, or why the body is unusable."""


REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id")
"""Where a provider names its call, first non-empty one wins: OpenAI and compatible hosts
(`x-request-id`), Anthropic (`request-id`), Google front ends (`x-goog-request-id`,
undocumented and sent only on some Gemini responses)."""

MAX_REQUEST_ID_CHARS = 200
"""Real ids are far shorter (`req_…`, a UUID); the cap keeps a misbehaving host out of cost records."""


def request_id(headers: Mapping[str, str]) -> str | None:
    """The provider's id for this call, stripped and capped; None when it sent none (or only blanks)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value is not None:
            value = value.strip()
            if value:
                return value[:MAX_REQUEST_ID_CHARS]
    return None


def classify_response(response: httpx.Response, now: float, parse_success: SuccessParser) -> ProviderOutcome:
    """Any response, 2xx or not, well-formed or not, as an outcome (never raises).

    Every outcome built from an answer carries the provider's request id, whichever
    helper below classified it.
    """
    outcome = _classify(response, now, parse_success)
    rid = request_id(response.headers)
    return outcome if rid is None else replace(outcome, request_id=rid)


def _classify(response: httpx.Response, now: float, parse_success: SuccessParser) -> ProviderOutcome:
    headers = rate_headers(response.headers)
    snapshot = parse_rate_limit(headers, now)
    status = response.status_code
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return malformed(status, "body was not read", snapshot)
    data = load_json(content)
    if not 200 <= status < 300:
        return classify_error(status, headers, parse_error(data), now, snapshot)
    if data is None:
        return malformed(status, "body is not JSON", snapshot)
    try:
        parsed = parse_success(data)
    except Exception as exc:  # a parser bug must not escape the attempt loop
        parsed = f"unreadable body ({type(exc).__name__})"
    if isinstance(parsed, Completion):
        return classify_completion(status, parsed, snapshot)
    embedded = parse_error(data)
    if embedded is not NO_ERROR:
        # OpenRouter (and streams generally) report failures after HTTP 200 in the body.
        return classify_error(_embedded_status(embedded), headers, embedded, now, snapshot)
    return malformed(status, parsed, snapshot)


_EMBEDDED_TYPE_STATUS = {
    # Anthropic stream `event: error` types, when one arrives as a 200 body
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
}


def _embedded_status(error: ProviderError) -> int:
    """The status an error found inside a 2xx body stands for; 502 (bad upstream) when it names none."""
    code = error.embedded_status
    if code is not None and 400 <= code < 600:
        return code
    for kind, status in _EMBEDDED_TYPE_STATUS.items():
        if kind in error.codes:
            return status
    return 502


def classify_completion(
    status: int, completion: Completion, snapshot: RateLimitSnapshot | None
) -> ProviderOutcome:
    """A readable 2xx body: success, or a content-filter stop the provider still bills."""
    if completion.finish_reason == "content_filter":
        return ProviderOutcome(
            outcome="content_filter",
            action="terminal",
            status_code=status,
            finish_reason="content_filter",
            usage=completion.usage,
            billed=completion.usage is not None,
            error="the provider's content filter stopped the answer",
            rate_limit=snapshot,
        )
    if completion.usage is None:
        return malformed(status, "usage missing", snapshot)
    return ProviderOutcome(
        outcome="success",
        action="done",
        status_code=status,
        text=completion.text,
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        billed=True,
        rate_limit=snapshot,
    )


def malformed(status: int | None, reason: str, snapshot: RateLimitSnapshot | None = None) -> ProviderOutcome:
    """A body we cannot use. Not billed: without usage there is nothing exact to charge."""
    return ProviderOutcome(
        outcome="malformed_response",
        action="retry",
        status_code=status,
        error=f"malformed response: {reason}",
        rate_limit=snapshot,
    )


def classify_error(
    status: int,
    headers: Mapping[str, str],
    error: ProviderError,
    now: float,
    snapshot: RateLimitSnapshot | None = None,
) -> ProviderOutcome:
    """A non-2xx answer (or a 2xx carrying an error) by status, codes and documented messages."""
    outcome, action = status_table(status, error)
    override = should_retry_header(headers)
    if override is False and action == "retry":
        action = "failover"
    elif override is True and action in ("failover", "terminal"):
        action = "retry"
    wait = None
    if action == "retry":
        wait = retry_after_seconds(headers, now)
        if wait is None and outcome == "rate_limited":
            wait = _rate_limit_wait(error, snapshot, now)
    return ProviderOutcome(
        outcome=outcome,
        action=action,
        status_code=status,
        error=describe(status, error),
        retry_after_s=wait,
        rate_limit=snapshot,
    )


def status_table(status: int, error: ProviderError) -> tuple[AttemptOutcome, AttemptAction]:
    """The classification table itself (see docs/provider-errors.md)."""
    codes = error.codes
    message = (error.message or "").lower()
    if status == 429:
        if codes & QUOTA_CODES or _quota_per_day(error) or _has(message, _QUOTA_PHRASES):
            return "quota_exhausted", "failover"
        return "rate_limited", "retry"
    if status in (400, 413, 422, 500) and (codes & CONTEXT_CODES or _has(message, _CONTEXT_PHRASES)):
        return "context_length", "failover"
    if 400 <= status < 500 and codes & CONTENT_FILTER_CODES:
        return "content_filter", "terminal"
    if status == 400:
        if codes & AUTH_400_CODES:
            return "auth_error", "failover"
        if codes & QUOTA_CODES or _has(message, _QUOTA_PHRASES):
            return "quota_exhausted", "failover"
        if codes & UNSUPPORTED_PARAM_CODES:
            return "bad_request", "failover"
        return "bad_request", "terminal"
    return _BY_STATUS.get(status) or _by_range(status)


_BY_STATUS: dict[int, tuple[AttemptOutcome, AttemptAction]] = {
    401: ("auth_error", "failover"),
    402: ("auth_error", "failover"),
    403: ("auth_error", "failover"),
    404: ("not_found", "failover"),
    408: ("timeout", "retry"),
    409: ("server_error", "retry"),
    413: ("bad_request", "terminal"),
    422: ("bad_request", "terminal"),
    500: ("server_error", "retry"),
    501: ("server_error", "failover"),
    502: ("server_error", "retry"),
    503: ("overloaded", "retry"),
    504: ("server_error", "retry"),
    529: ("overloaded", "retry"),
}


def _by_range(status: int) -> tuple[AttemptOutcome, AttemptAction]:
    if 500 <= status < 600:
        return "server_error", "retry"
    if 400 <= status < 500:
        return "bad_request", "terminal"
    # 1xx/3xx: we never follow redirects, so a redirect means a misconfigured base URL.
    return "malformed_response", "failover"


def describe(status: int, error: ProviderError) -> str:
    """`"429 rate_limit_exceeded: Rate limit reached…"`: status, the codes, the provider's words."""
    head = " ".join([str(status), *sorted(error.codes)])
    return f"{head}: {error.message}" if error.message else head


def _quota_per_day(error: ProviderError) -> bool:
    """Gemini: a per-day quota violation will not clear within seconds, whatever retryDelay says."""
    return any("PerDay" in quota_id for quota_id in error.quota_ids)


def _has(message: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in message for phrase in phrases)


def _rate_limit_wait(error: ProviderError, snapshot: RateLimitSnapshot | None, now: float) -> float | None:
    """Beyond retry-after headers: Gemini retryDelay, the wait in the message, the reset of the empty budget."""
    if error.retry_delay_s is not None:
        return error.retry_delay_s
    if error.message:
        for pattern in _MESSAGE_WAIT:
            found = pattern.search(error.message)
            if found:
                wait = parse_go_duration(found.group(1).rstrip("."))
                if wait is not None:
                    return wait
    return wait_from_snapshot(snapshot, now)


def outcome_for_transport_error(exc: BaseException) -> ProviderOutcome:
    """A request that got no HTTP answer: timeouts and broken connections retry.

    Not billed: with no response there is no usage to bill against (a read
    timeout after the provider started generating may still cost money; the
    provider's `billed_failures` flag is the place to account for that).
    """
    outcome, action = _transport_table(exc)
    return ProviderOutcome(outcome=outcome, action=action, error=_exc_text(exc))


def _transport_table(exc: BaseException) -> tuple[AttemptOutcome, AttemptAction]:
    if isinstance(
        exc, httpx.UnsupportedProtocol | httpx.InvalidURL | aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError
    ):
        # misconfigured base URL (aiohttp's NonHttpUrlClientError, for a non-HTTP scheme,
        # is not an InvalidURL): retrying cannot help
        return "connection_error", "failover"
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError) and not isinstance(cause, TimeoutError):
        # An httpx error wrapping a non-timeout aiohttp one (httpx-aiohttp reported
        # refused, reset and dropped connections as ConnectTimeout): the cause tells the truth.
        return "connection_error", "retry"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout", "retry"
    if isinstance(exc, httpx.TransportError | aiohttp.ClientError | OSError):
        return "connection_error", "retry"
    return "malformed_response", "retry"  # httpx.DecodingError and friends: the bytes arrived broken


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:300]}" if text else name
