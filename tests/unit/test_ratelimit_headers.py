"""Rate-limit headers, retry hints and durations from every provider format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.providers.base import RateLimitSnapshot
from qroute.providers.errors import parse_error
from qroute.providers.ratelimit import (
    TOGETHER_TOKEN_WINDOW_S,
    format_go_duration,
    parse_go_duration,
    parse_rate_limit,
    parse_rfc3339,
    rate_headers,
    retry_after_seconds,
    should_retry_header,
    wait_from_snapshot,
)
from tests.unit.test_adapters_common import NOW


def snapshot(headers: dict[str, str], now: float = NOW) -> RateLimitSnapshot | None:
    return parse_rate_limit(rate_headers(httpx.Headers(headers)), now)


class TestGoDuration:
    """Go-style durations (OpenAI, Groq) and bare seconds parse to seconds."""

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("1s", 1.0),
            ("6m0s", 360.0),
            ("1.574s", 1.574),
            ("20ms", 0.020),
            ("12ms", 0.012),
            ("1h2m3s", 3723.0),
            ("2m59.56s", 179.56),  # Groq docs
            ("7.66s", 7.66),  # Groq docs
            ("500us", 0.0005),
            ("500µs", 0.0005),
            ("3ns", 3e-9),
            ("0s", 0.0),
            ("0", 0.0),
            ("17", 17.0),  # bare seconds (Azure, Together, Mistral)
            ("0.5", 0.5),
            (" 6m0s ", 360.0),
        ],
    )
    def test_documented_forms(self, text: str, seconds: float) -> None:
        """Examples from the providers' docs parse to the right number of seconds."""
        assert parse_go_duration(text) == pytest.approx(seconds, abs=1e-12)

    @pytest.mark.parametrize("text", ["", "soon", "5 minutes", "1x", "-1s", "-3", "inf", "nan", "1s2"])
    def test_garbage_and_negative_are_none(self, text: str) -> None:
        """Unreadable or negative durations are treated as absent, not as a wait."""
        assert parse_go_duration(text) is None

    @given(st.integers(min_value=0, max_value=48 * 3600 * 10**9))
    def test_round_trip_through_go_formatting(self, nanoseconds: int) -> None:
        """format_go_duration prints what parse_go_duration reads back, to the nanosecond."""
        seconds = nanoseconds / 1e9
        parsed = parse_go_duration(format_go_duration(seconds))
        assert parsed == pytest.approx(seconds, rel=1e-12, abs=1e-9)

    @given(
        st.integers(0, 99),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999),
    )
    def test_composed_components_sum(self, hours: int, minutes: int, seconds: int, millis: int) -> None:
        """Any hNmNsNmsN composition is the sum of its parts."""
        text = f"{hours}h{minutes}m{seconds}s{millis}ms"
        expected = hours * 3600 + minutes * 60 + seconds + millis / 1000
        assert parse_go_duration(text) == pytest.approx(expected, abs=1e-9)

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (360.0, "6m0s"),
            (1.574, "1.574s"),
            (0.02, "20ms"),
            (3723.0, "1h2m3s"),
            (0.0, "0s"),
            (1.5e-6, "1.5µs"),
        ],
    )
    def test_format_matches_go(self, seconds: float, text: str) -> None:
        """Formatting follows Go's Duration.String() (minutes shown with 0s, trailing zeros dropped)."""
        assert format_go_duration(seconds) == text


class TestOpenAIHeaders:
    """OpenAI, Azure and Groq `x-ratelimit-*-{requests,tokens}` headers."""

    def test_openai_documented_example(self) -> None:
        """The example from OpenAI's rate-limit guide becomes absolute reset times."""
        result = snapshot(
            {
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-limit-tokens": "150000",
                "x-ratelimit-remaining-requests": "59",
                "x-ratelimit-remaining-tokens": "149984",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-reset-tokens": "6m0s",
            }
        )
        assert result == RateLimitSnapshot(
            limit_requests=60,
            remaining_requests=59,
            requests_reset_at=NOW + 1,
            limit_tokens=150_000,
            remaining_tokens=149_984,
            tokens_reset_at=NOW + 360,
        )

    def test_groq_documented_example(self) -> None:
        """Groq uses the same names with fractional durations."""
        result = snapshot(
            {
                "x-ratelimit-limit-requests": "14400",
                "x-ratelimit-limit-tokens": "18000",
                "x-ratelimit-remaining-requests": "14370",
                "x-ratelimit-remaining-tokens": "17997",
                "x-ratelimit-reset-requests": "2m59.56s",
                "x-ratelimit-reset-tokens": "7.66s",
            }
        )
        assert result is not None
        assert result.requests_reset_at == pytest.approx(NOW + 179.56)
        assert result.tokens_reset_at == pytest.approx(NOW + 7.66)
        assert (result.remaining_requests, result.remaining_tokens) == (14_370, 17_997)

    def test_azure_partial_headers_in_seconds(self) -> None:
        """Azure may send only remaining counts, and resets as bare seconds."""
        result = snapshot({"x-ratelimit-remaining-requests": "9", "x-ratelimit-reset-tokens": "12"})
        assert result == RateLimitSnapshot(remaining_requests=9, tokens_reset_at=NOW + 12)

    def test_header_names_are_case_insensitive(self) -> None:
        """Header case does not matter."""
        result = snapshot({"X-RateLimit-Remaining-Requests": "3"})
        assert result == RateLimitSnapshot(remaining_requests=3)

    def test_unreadable_values_are_dropped(self) -> None:
        """A value like -1 or a word is absent, not zero."""
        result = snapshot({"x-ratelimit-remaining-tokens": "-1", "x-ratelimit-limit-tokens": "lots"})
        assert result is None

    def test_no_headers_is_none(self) -> None:
        """A response without rate-limit headers gives no snapshot."""
        assert snapshot({"content-type": "application/json"}) is None


class TestOtherOpenAICompatibleHeaders:
    """Together, Mistral and Cerebras header spellings."""

    def test_together_per_second_limits(self) -> None:
        """Together's request triple and token pair; tokens refill within a second."""
        result = snapshot(
            {
                "x-ratelimit-limit": "10",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": "1",
                "x-tokenlimit-limit": "2000",
                "x-tokenlimit-remaining": "1500",
            }
        )
        assert result == RateLimitSnapshot(
            limit_requests=10,
            remaining_requests=0,
            requests_reset_at=NOW + 1,
            limit_tokens=2000,
            remaining_tokens=1500,
            tokens_reset_at=NOW + TOGETHER_TOKEN_WINDOW_S,
        )

    def test_mistral_minute_budgets(self) -> None:
        """Mistral's `-req-minute` and `-tokens-minute` headers fill the same fields."""
        result = snapshot(
            {
                "x-ratelimit-limit-req-minute": "60",
                "x-ratelimit-remaining-req-minute": "58",
                "x-ratelimit-limit-tokens-minute": "500000",
                "x-ratelimit-remaining-tokens-minute": "499000",
                "x-ratelimit-tokens-query-cost": "1000",
            }
        )
        assert result == RateLimitSnapshot(
            limit_requests=60, remaining_requests=58, limit_tokens=500_000, remaining_tokens=499_000
        )

    def test_cerebras_day_and_minute_budgets(self) -> None:
        """Cerebras's requests-per-day and tokens-per-minute headers, resets in seconds."""
        result = snapshot(
            {
                "x-ratelimit-remaining-requests-day": "1000",
                "x-ratelimit-reset-requests-day": "3600.5",
                "x-ratelimit-remaining-tokens-minute": "0",
                "x-ratelimit-reset-tokens-minute": "42",
            }
        )
        assert result == RateLimitSnapshot(
            remaining_requests=1000,
            requests_reset_at=NOW + 3600.5,
            remaining_tokens=0,
            tokens_reset_at=NOW + 42,
        )


class TestAnthropicHeaders:
    """`anthropic-ratelimit-*` with RFC 3339 resets; the tightest token bucket wins."""

    RESET = "2025-08-21T12:40:59Z"
    RESET_AT = datetime(2025, 8, 21, 12, 40, 59, tzinfo=UTC).timestamp()

    def test_requests_and_combined_tokens(self) -> None:
        """Request and token buckets become absolute epoch resets, independent of `now`."""
        result = snapshot(
            {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "49",
                "anthropic-ratelimit-requests-reset": self.RESET,
                "anthropic-ratelimit-tokens-limit": "40000",
                "anthropic-ratelimit-tokens-remaining": "39000",
                "anthropic-ratelimit-tokens-reset": self.RESET,
            },
            now=0.0,
        )
        assert result == RateLimitSnapshot(
            limit_requests=50,
            remaining_requests=49,
            requests_reset_at=self.RESET_AT,
            limit_tokens=40_000,
            remaining_tokens=39_000,
            tokens_reset_at=self.RESET_AT,
        )

    def test_most_restrictive_token_bucket_wins(self) -> None:
        """With input and output buckets, the one with fewest tokens left is reported."""
        result = snapshot(
            {
                "anthropic-ratelimit-input-tokens-limit": "400000",
                "anthropic-ratelimit-input-tokens-remaining": "350000",
                "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:10Z",
                "anthropic-ratelimit-output-tokens-limit": "80000",
                "anthropic-ratelimit-output-tokens-remaining": "0",
                "anthropic-ratelimit-output-tokens-reset": self.RESET,
            }
        )
        assert result is not None
        assert (result.limit_tokens, result.remaining_tokens, result.tokens_reset_at) == (
            80_000,
            0,
            self.RESET_AT,
        )

    def test_offset_timestamps(self) -> None:
        """RFC 3339 with a numeric offset is the same instant."""
        assert parse_rfc3339("2025-08-21T14:40:59+02:00") == self.RESET_AT
        assert parse_rfc3339("2025-08-21T12:40:59") is None  # no zone: ambiguous
        assert parse_rfc3339("tomorrow") is None


class TestRetryAfter:
    """`retry-after-ms` beats `retry-after`; seconds or HTTP dates."""

    def test_milliseconds_win(self) -> None:
        """retry-after-ms is preferred, as in the official SDKs."""
        headers = rate_headers(httpx.Headers({"retry-after-ms": "1500", "retry-after": "2"}))
        assert retry_after_seconds(headers, NOW) == 1.5

    @pytest.mark.parametrize(("value", "seconds"), [("2", 2.0), ("0.25", 0.25), ("0", 0.0)])
    def test_seconds(self, value: str, seconds: float) -> None:
        """Whole or fractional seconds."""
        assert retry_after_seconds({"retry-after": value}, NOW) == seconds

    def test_http_date(self) -> None:
        """An HTTP date becomes the seconds from now until then."""
        when = datetime.fromtimestamp(NOW + 30, tz=UTC)
        assert retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)}, NOW) == 30.0

    def test_http_date_in_the_past_is_zero(self) -> None:
        """A date already passed means retry now, never a negative wait."""
        assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, NOW) == 0.0

    @pytest.mark.parametrize("value", ["soon", "-5", ""])
    def test_garbage_is_none(self, value: str) -> None:
        """Unreadable values are absent."""
        assert retry_after_seconds({"retry-after": value}, NOW) is None

    def test_absent_is_none(self) -> None:
        """No header, no hint."""
        assert retry_after_seconds({}, NOW) is None


class TestShouldRetry:
    """`x-should-retry` is read as a tri-state."""

    @pytest.mark.parametrize(
        ("value", "expected"), [("true", True), ("false", False), ("TRUE", True), ("maybe", None)]
    )
    def test_values(self, value: str, expected: bool | None) -> None:
        """true/false in any case; anything else is no opinion."""
        assert should_retry_header(rate_headers(httpx.Headers({"X-Should-Retry": value}))) is expected


class TestWaitFromSnapshot:
    """The reset of an exhausted budget is the wait when no explicit hint exists."""

    def test_exhausted_bucket_gives_its_reset(self) -> None:
        """The longest reset among exhausted budgets."""
        snap = RateLimitSnapshot(
            remaining_requests=0, requests_reset_at=NOW + 2, remaining_tokens=0, tokens_reset_at=NOW + 9
        )
        assert wait_from_snapshot(snap, NOW) == 9.0

    def test_budget_left_gives_none(self) -> None:
        """Budgets with room left do not imply a wait."""
        assert (
            wait_from_snapshot(RateLimitSnapshot(remaining_requests=4, requests_reset_at=NOW + 2), NOW)
            is None
        )
        assert wait_from_snapshot(None, NOW) is None


class TestGeminiRetryInfo:
    """Gemini's 429 body carries the wait and the quota that ran out."""

    BODY: ClassVar[dict[str, Any]] = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                            "quotaValue": "10",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"},
            ],
        }
    }

    def test_documented_body(self) -> None:
        """retryDelay and quotaId are read from the documented example."""
        error = parse_error(self.BODY)
        assert error.retry_delay_s == 38.0
        assert error.quota_ids == ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier",)
        assert error.embedded_status == 429
        assert "resource_exhausted" in error.codes

    def test_fractional_delay_and_array_wrapper(self) -> None:
        """A fractional delay, inside the JSON array Gemini's stream form uses."""
        body = json.loads(json.dumps(self.BODY))
        body["error"]["details"][2]["retryDelay"] = "12.75s"
        assert parse_error([body]).retry_delay_s == 12.75
