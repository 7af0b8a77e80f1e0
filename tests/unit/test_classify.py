"""Every provider answer maps to one outcome and one next action (docs/provider-errors.md)."""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.models import AttemptAction, AttemptOutcome
from qroute.providers.base import ProviderOutcome
from qroute.providers.classify import outcome_for_transport_error
from qroute.providers.registry import adapter_for
from tests.unit.test_adapters_common import NOW

OPENAI_RATE = {
    "error": {
        "message": "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): "
        "Limit 30000, Used 29937, Requested 385. Please try again in 644ms. Visit …",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
OPENAI_TOO_LARGE = {
    "error": {
        "message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM): "
        "Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def openai_error(
    code: str | None, message: str = "problem", kind: str = "invalid_request_error"
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(kind: str, message: str = "problem", error_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if error_code:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": "req_011"}


def gemini_error(
    code: int, status: str, message: str = "problem", details: list[Any] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, "details": details or []}}


def classify(
    family: str,
    status: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> ProviderOutcome:
    response = (
        httpx.Response(status, content=content, headers=headers)
        if content is not None
        else httpx.Response(status, json=body, headers=headers)
    )
    return adapter_for(family).parse_response(response, NOW)  # type: ignore[arg-type]


ROWS: list[tuple[str, str, int, Any, AttemptOutcome, AttemptAction]] = [
    # (name, family, status, body, outcome, action)
    ("openai 429 rate", "openai", 429, OPENAI_RATE, "rate_limited", "retry"),
    (
        "openai 429 slow_down",
        "openai",
        429,
        openai_error("slow_down", kind="requests"),
        "rate_limited",
        "retry",
    ),
    ("openai 429 insufficient_quota", "openai", 429, OPENAI_QUOTA, "quota_exhausted", "failover"),
    (
        "openai 429 project spend limit",
        "openai",
        429,
        openai_error("project_spend_limit_exceeded", kind="insufficient_quota"),
        "quota_exhausted",
        "failover",
    ),
    ("openai 429 request too large", "openai", 429, OPENAI_TOO_LARGE, "quota_exhausted", "failover"),
    ("anthropic 429 rate", "anthropic", 429, anthropic_error("rate_limit_error"), "rate_limited", "retry"),
    (
        "anthropic 429 ramp limit",
        "anthropic",
        429,
        anthropic_error("rate_limit_error", error_code="ramp_limit_exceeded"),
        "rate_limited",
        "retry",
    ),
    (
        "anthropic 429 spend limit",
        "anthropic",
        429,
        anthropic_error("rate_limit_error", error_code="enforced_spend_limit_reached"),
        "quota_exhausted",
        "failover",
    ),
    (
        "gemini 429 per minute",
        "gemini",
        429,
        gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
                }
            ],
        ),
        "rate_limited",
        "retry",
    ),
    (
        "gemini 429 per day",
        "gemini",
        429,
        gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"},
            ],
        ),
        "quota_exhausted",
        "failover",
    ),
    (
        "openai 400 context",
        "openai",
        400,
        openai_error("context_length_exceeded", "This model's maximum context length is 128000 tokens."),
        "context_length",
        "failover",
    ),
    (
        "anthropic 400 prompt too long",
        "anthropic",
        400,
        anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        "context_length",
        "failover",
    ),
    (
        "gemini 400 token count",
        "gemini",
        400,
        gemini_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
        "context_length",
        "failover",
    ),
    (
        "vllm 400 context (top-level error object)",
        "openai",
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
            "type": "BadRequestError",
            "code": 400,
        },
        "context_length",
        "failover",
    ),
    ("openai 400 bad param", "openai", 400, openai_error(None, "Invalid 'stop'"), "bad_request", "terminal"),
    (
        "openai 400 unsupported temperature",
        "openai",
        400,
        openai_error("unsupported_value", "Only the default (1) value is supported."),
        "bad_request",
        "failover",
    ),
    (
        "azure 400 prompt content filter",
        "openai",
        400,
        {
            "error": {
                "code": "content_filter",
                "message": "The response was filtered",
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
        },
        "content_filter",
        "terminal",
    ),
    (
        "anthropic 400 workspace spend limit",
        "anthropic",
        400,
        anthropic_error(
            "invalid_request_error",
            "You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.",
        ),
        "quota_exhausted",
        "failover",
    ),
    (
        "anthropic 400 credit balance",
        "anthropic",
        400,
        anthropic_error(
            "invalid_request_error", "Your credit balance is too low to access the Anthropic API."
        ),
        "quota_exhausted",
        "failover",
    ),
    (
        "gemini 400 bad key",
        "gemini",
        400,
        gemini_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        ),
        "auth_error",
        "failover",
    ),
    (
        "gemini 400 failed precondition",
        "gemini",
        400,
        gemini_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        "auth_error",
        "failover",
    ),
    (
        "openai 401",
        "openai",
        401,
        openai_error("invalid_api_key", kind="invalid_request_error"),
        "auth_error",
        "failover",
    ),
    ("anthropic 402 billing", "anthropic", 402, anthropic_error("billing_error"), "auth_error", "failover"),
    ("gemini 403", "gemini", 403, gemini_error(403, "PERMISSION_DENIED"), "auth_error", "failover"),
    ("openai 404 model", "openai", 404, openai_error("model_not_found"), "not_found", "failover"),
    ("openrouter 408", "openai", 408, {"error": {"code": 408, "message": "timeout"}}, "timeout", "retry"),
    ("anthropic 409", "anthropic", 409, anthropic_error("conflict_error"), "server_error", "retry"),
    ("anthropic 413", "anthropic", 413, anthropic_error("request_too_large"), "bad_request", "terminal"),
    ("deepseek 422", "openai", 422, openai_error(None, "Invalid parameters"), "bad_request", "terminal"),
    ("openai 500", "openai", 500, openai_error(None, kind="server_error"), "server_error", "retry"),
    ("gemini 500", "gemini", 500, gemini_error(500, "INTERNAL"), "server_error", "retry"),
    ("501", "openai", 501, None, "server_error", "failover"),
    (
        "openrouter 502",
        "openai",
        502,
        {"error": {"code": 502, "message": "model down"}},
        "server_error",
        "retry",
    ),
    (
        "openai 503 overloaded",
        "openai",
        503,
        openai_error("server_is_overloaded", kind="service_unavailable_error"),
        "overloaded",
        "retry",
    ),
    ("gemini 503", "gemini", 503, gemini_error(503, "UNAVAILABLE"), "overloaded", "retry"),
    ("anthropic 504", "anthropic", 504, anthropic_error("timeout_error"), "server_error", "retry"),
    ("anthropic 529", "anthropic", 529, anthropic_error("overloaded_error"), "overloaded", "retry"),
    ("unknown 418", "openai", 418, None, "bad_request", "terminal"),
    ("unknown 599", "openai", 599, None, "server_error", "retry"),
    ("redirect 301", "openai", 301, None, "malformed_response", "failover"),
]


class TestStatusTable:
    """Each documented status/body pair gives the documented outcome and action, unbilled."""

    @pytest.mark.parametrize(
        ("family", "status", "body", "outcome", "action"),
        [row[1:] for row in ROWS],
        ids=[row[0] for row in ROWS],
    )
    def test_row(self, family: str, status: int, body: Any, outcome: str, action: str) -> None:
        """The row's outcome and action; errors are never billed and carry the status."""
        result = classify(family, status, body)
        assert (result.outcome, result.action) == (outcome, action)
        assert result.billed is False
        assert result.status_code == status
        assert result.error is not None
        assert result.error.startswith(str(status))

    def test_provider_message_is_kept(self) -> None:
        """A terminal rejection carries the provider's own words and codes."""
        result = classify("openai", 400, openai_error("invalid_value", "Invalid 'stop': too many"))
        assert result.error == "400 invalid_request_error invalid_value: Invalid 'stop': too many"

    def test_non_json_error_body(self) -> None:
        """A Cloudflare HTML page on 502 still classifies by status."""
        result = classify("anthropic", 502, content=b"<html>Bad gateway</html>")
        assert (result.outcome, result.action, result.error) == ("server_error", "retry", "502")

    def test_ollama_string_error(self) -> None:
        """`{"error": "text"}` bodies keep their message."""
        result = classify("openai", 404, {"error": "model 'llama9' not found"})
        assert (result.outcome, result.error) == ("not_found", "404: model 'llama9' not found")

    def test_long_messages_are_truncated(self) -> None:
        """Provider messages are cut to a bounded length."""
        result = classify("openai", 400, openai_error(None, "x" * 5000))
        assert result.error is not None
        assert len(result.error) < 600


class TestRetryAfterOnErrors:
    """Rate-limited outcomes carry the server's wait, from whichever signal it sent."""

    def test_retry_after_ms_header(self) -> None:
        """retry-after-ms is used first."""
        result = classify("openai", 429, OPENAI_RATE, {"retry-after-ms": "250", "retry-after": "1"})
        assert result.retry_after_s == 0.25

    def test_retry_after_seconds_header(self) -> None:
        """Anthropic sends whole seconds."""
        result = classify("anthropic", 429, anthropic_error("rate_limit_error"), {"retry-after": "17"})
        assert result.retry_after_s == 17.0

    def test_gemini_retry_delay(self) -> None:
        """Gemini's RetryInfo in the body when there is no header."""
        body = gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38.5s"}],
        )
        assert classify("gemini", 429, body).retry_after_s == 38.5

    def test_openai_message_wait(self) -> None:
        """ "Please try again in 644ms." when no header says anything."""
        assert classify("openai", 429, OPENAI_RATE).retry_after_s == pytest.approx(0.644)

    def test_azure_message_wait(self) -> None:
        """Azure's "Please retry after 6 seconds."."""
        body = {
            "error": {
                "code": "429",
                "message": "Requests … have exceeded token rate limit. Please retry after 6 seconds.",
            }
        }
        assert classify("openai", 429, body).retry_after_s == 6.0

    def test_exhausted_budget_reset(self) -> None:
        """Without any hint, the reset of the empty budget."""
        headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"}
        result = classify("openai", 429, openai_error("rate_limit_exceeded"), headers)
        assert result.retry_after_s == 90.0
        assert result.rate_limit is not None
        assert result.rate_limit.remaining_tokens == 0

    def test_no_hint_at_all(self) -> None:
        """Nothing to go on: None, and the attempt loop uses its own backoff."""
        assert classify("anthropic", 429, anthropic_error("rate_limit_error")).retry_after_s is None

    def test_server_error_keeps_retry_after(self) -> None:
        """A 503 with retry-after passes the hint on."""
        assert classify("openai", 503, None, {"retry-after": "3"}).retry_after_s == 3.0

    def test_failover_has_no_wait(self) -> None:
        """Quota exhaustion fails over; Gemini's per-day retryDelay is not passed on as a wait."""
        result = classify("openai", 429, OPENAI_QUOTA, {"retry-after": "20"})
        assert result.retry_after_s is None


class TestShouldRetryOverride:
    """`x-should-retry` overrides the table, as in the official SDKs."""

    def test_false_turns_retry_into_failover(self) -> None:
        """A retryable 500 marked x-should-retry: false fails over."""
        result = classify("openai", 500, None, {"x-should-retry": "false"})
        assert (result.outcome, result.action) == ("server_error", "failover")

    def test_true_turns_terminal_into_retry(self) -> None:
        """A 400 marked x-should-retry: true is retried."""
        result = classify("openai", 400, openai_error(None), {"x-should-retry": "true", "retry-after": "2"})
        assert (result.outcome, result.action, result.retry_after_s) == ("bad_request", "retry", 2.0)

    def test_true_turns_failover_into_retry(self) -> None:
        """A quota 429 marked x-should-retry: true is retried."""
        assert classify("openai", 429, OPENAI_QUOTA, {"x-should-retry": "true"}).action == "retry"


class TestSuccessAndMalformed:
    """2xx bodies: success is billed; garbage is retried and never billed."""

    GOOD: ClassVar[dict[str, Any]] = {
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    }

    def test_success(self) -> None:
        """A good body is success/done, billed, with usage and any rate-limit snapshot."""
        result = classify("openai", 200, self.GOOD, {"x-ratelimit-remaining-requests": "59"})
        assert (result.outcome, result.action, result.billed, result.text) == ("success", "done", True, "Hi")
        assert result.usage is not None
        assert result.usage.input_tokens == 19
        assert result.rate_limit is not None
        assert result.rate_limit.remaining_requests == 59

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (b"not json at all", "body is not JSON"),
            (b'{"choices": [{"message": {"content": "Hi"}', "body is not JSON"),  # truncated
            (b"", "body is not JSON"),
            (b'{"usage": {"prompt_tokens": 1, "completion_tokens": 1}}', "choices: Field required"),
            (b'{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}', "choices: empty"),
            (b'{"choices": [{"finish_reason": "stop", "message": {"content": "Hi"}}]}', "usage missing"),
            (
                b'{"choices": [{"finish_reason": "stop", "message": {}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}',
                "content: missing",
            ),
            (
                b'{"choices": [{"message": {"content": "Hi"}}], "usage": {"prompt_tokens": -1, "completion_tokens": 1}}',
                "usage.prompt_tokens",
            ),
            (b"[1, 2]", "body: Input should be"),
        ],
    )
    def test_malformed(self, content: bytes, reason: str) -> None:
        """Non-JSON, truncated, missing choices/content/usage and bad numbers are malformed, unbilled."""
        result = classify("openai", 200, content=content)
        assert (result.outcome, result.action, result.billed, result.usage) == (
            "malformed_response",
            "retry",
            False,
            None,
        )
        assert result.error is not None
        assert reason in result.error

    def test_content_filter_finish_is_terminal_but_billed(self) -> None:
        """finish_reason content_filter: the job is rejected, and the provider still bills the tokens."""
        body = {
            "choices": [{"finish_reason": "content_filter", "message": {"content": None}}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 2},
        }
        result = classify("openai", 200, body)
        assert (result.outcome, result.action, result.billed) == ("content_filter", "terminal", True)
        assert result.usage is not None
        assert result.usage.output_tokens == 2

    def test_error_inside_200_is_classified(self) -> None:
        """OpenRouter reports mid-generation failures as HTTP 200 with an error body."""
        body = {"error": {"code": 502, "message": "Provider returned error", "metadata": {}}}
        result = classify("openai", 200, body)
        assert (result.outcome, result.action, result.status_code) == ("server_error", "retry", 502)

    def test_anthropic_error_event_inside_200(self) -> None:
        """An Anthropic error object after 200 is classified by its type (overloaded_error = 529)."""
        result = classify("anthropic", 200, anthropic_error("overloaded_error"))
        assert (result.outcome, result.action, result.status_code) == ("overloaded", "retry", 529)

    def test_unknown_error_inside_200_is_bad_gateway(self) -> None:
        """An error body after 200 that names no status counts as a bad upstream answer (502)."""
        result = classify("openai", 200, {"error": {"message": "upstream died"}})
        assert (result.outcome, result.action, result.status_code) == ("server_error", "retry", 502)


class TestTransportErrors:
    """Requests that got no HTTP answer: timeouts and broken connections retry."""

    REQUEST = httpx.Request("POST", "https://api.example.com/v1/chat/completions")

    @pytest.mark.parametrize(
        ("exc", "outcome", "action"),
        [
            (httpx.ReadTimeout("read", request=REQUEST), "timeout", "retry"),
            (httpx.ConnectTimeout("connect", request=REQUEST), "timeout", "retry"),
            (httpx.PoolTimeout("pool", request=REQUEST), "timeout", "retry"),
            (TimeoutError(), "timeout", "retry"),
            (httpx.ConnectError("refused", request=REQUEST), "connection_error", "retry"),
            (httpx.RemoteProtocolError("peer closed", request=REQUEST), "connection_error", "retry"),
            (httpx.ReadError("reset", request=REQUEST), "connection_error", "retry"),
            (httpx.WriteError("broken pipe", request=REQUEST), "connection_error", "retry"),
            (ConnectionResetError(104, "reset"), "connection_error", "retry"),
            (aiohttp.ServerDisconnectedError(), "connection_error", "retry"),
            (httpx.UnsupportedProtocol("ftp", request=REQUEST), "connection_error", "failover"),
            (httpx.DecodingError("bad gzip", request=REQUEST), "malformed_response", "retry"),
        ],
    )
    def test_exception(self, exc: BaseException, outcome: str, action: str) -> None:
        """Each transport failure maps to its outcome, unbilled, with the exception named."""
        result = outcome_for_transport_error(exc)
        assert (result.outcome, result.action, result.billed) == (outcome, action, False)
        assert result.error is not None
        assert result.error.startswith(type(exc).__name__)

    def test_aiohttp_disconnect_mapped_to_connect_timeout(self) -> None:
        """httpx-aiohttp reports a dropped connection as ConnectTimeout; the cause reveals a connection error."""
        exc = httpx.ConnectTimeout("Server disconnected")
        exc.__cause__ = aiohttp.ServerDisconnectedError()
        assert outcome_for_transport_error(exc).outcome == "connection_error"

    def test_aiohttp_real_timeout_stays_timeout(self) -> None:
        """A genuine aiohttp timeout under the mapped exception is still a timeout."""
        exc = httpx.ReadTimeout("Timeout on reading data from socket")
        exc.__cause__ = aiohttp.SocketTimeoutError()
        assert outcome_for_transport_error(exc).outcome == "timeout"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
"""Arbitrary JSON values, used as hostile response bodies."""

SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "choices": JSON,
        "usage": JSON,
        "content": JSON,
        "candidates": JSON,
        "usageMetadata": JSON,
        "error": JSON,
        "stop_reason": JSON,
    },
)
"""Bodies with the right top-level keys and arbitrary values: close enough to real to reach deep parsing."""


class TestNeverRaises:
    """Any status with any body gives an outcome; nothing escapes the adapters."""

    @given(st.sampled_from(["openai", "anthropic", "gemini"]), st.integers(100, 599), st.binary(max_size=200))
    def test_arbitrary_bytes(self, family: str, status: int, content: bytes) -> None:
        """Random bytes: an outcome, and a 2xx is never a billed success without usage."""
        result = classify(family, status, content=content)
        assert result.outcome in ("malformed_response", "success") or result.action != "done"
        assert result.billed is (result.usage is not None)

    @given(st.sampled_from(["openai", "anthropic", "gemini"]), st.sampled_from([200, 400, 429, 500]), SHAPED)
    def test_arbitrary_json(self, family: str, status: int, body: dict[str, Any]) -> None:
        """Arbitrary JSON in plausible shapes: an outcome; success always carries usage and text."""
        result = classify(family, status, body)
        if result.outcome == "success":
            assert result.usage is not None
            assert result.text is not None
        assert result.billed is (result.usage is not None)

    def test_unread_streaming_response(self) -> None:
        """A response whose body was never read is malformed, not an exception."""

        async def stream() -> Any:
            yield b"{}"

        response = httpx.Response(200, content=stream())
        result = adapter_for("openai").parse_response(response, NOW)
        assert result.outcome == "malformed_response"
