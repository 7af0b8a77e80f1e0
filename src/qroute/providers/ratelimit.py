"""Rate-limit signals from provider responses: budget headers, retry hints, durations.

Providers disagree on names and formats (see docs/provider-errors.md and the
reference's §1.2); this module turns all of them into one `RateLimitSnapshot`
with absolute epoch reset times, and one retry-after in seconds:

- OpenAI, Azure and Groq: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
  resets as Go durations (`6m0s`, `1.574s`, `20ms`) or bare seconds;
- Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`,
  resets as RFC 3339 timestamps; the most restrictive token bucket wins;
- Together: `x-ratelimit-{limit,remaining,reset}` (requests per second) and
  `x-tokenlimit-{limit,remaining}` (tokens per second);
- Mistral and Cerebras: `x-ratelimit-*-req-minute`, `*-tokens-minute`, `*-requests-day`;
- `retry-after-ms`, `retry-after` (seconds or HTTP date) and `x-should-retry`.

Gemini has no rate-limit headers; its 429 body carries `RetryInfo.retryDelay`,
read by `qroute.providers.errors`. Parsers here never raise: an unreadable
value is treated as absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from qroute.providers.base import RateLimitSnapshot

_GO_DURATION = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign, what Go prints
    "μs": 1e-6,  # U+03BC Greek mu, which Go also accepts
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_RELEVANT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "x-tokenlimit-", "retry-after")

# Header names per snapshot field, first present wins. Providers never send two of
# these families at once, so the order only matters for documentation.
_LIMIT_REQUESTS = (
    "x-ratelimit-limit-requests",  # OpenAI, Azure, Groq (Groq: per day)
    "x-ratelimit-limit",  # Together, per second
    "x-ratelimit-limit-req-minute",  # Mistral
    "x-ratelimit-limit-requests-day",  # Cerebras
)
_REMAINING_REQUESTS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining",
    "x-ratelimit-remaining-req-minute",
    "x-ratelimit-remaining-requests-day",
)
_RESET_REQUESTS = (
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset",
    "x-ratelimit-reset-req-minute",
    "x-ratelimit-reset-requests-day",
)
_LIMIT_TOKENS = ("x-ratelimit-limit-tokens", "x-tokenlimit-limit", "x-ratelimit-limit-tokens-minute")
_REMAINING_TOKENS = (
    "x-ratelimit-remaining-tokens",
    "x-tokenlimit-remaining",
    "x-ratelimit-remaining-tokens-minute",
)
_RESET_TOKENS = ("x-ratelimit-reset-tokens", "x-ratelimit-reset-tokens-minute")

_ANTHROPIC_TOKEN_BUCKETS = ("tokens", "input-tokens", "output-tokens")

TOGETHER_TOKEN_WINDOW_S = 1.0
"""Together's `x-tokenlimit-*` budget is per second and has no reset header: it refills within a second."""


def parse_go_duration(value: str) -> float | None:
    """Seconds in a Go-style duration (`1h2m3s`, `6m0s`, `1.574s`, `20ms`) or bare seconds (`7.5`).

    Returns None for anything else, including negative or non-finite values,
    which no provider sends as a wait.
    """
    text = value.strip()
    if _GO_DURATION.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_PART.findall(text))
        seconds = sign * total
    else:
        try:
            seconds = float(text)
        except ValueError:
            return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def format_go_duration(seconds: float) -> str:
    """Format seconds as Go's `time.Duration.String()` does (`6m0s`, `1.574s`, `20ms`, `0s`).

    The inverse of `parse_go_duration` to the nanosecond; the simulator uses it to
    send OpenAI-style reset headers.
    """
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    text = f"{_fraction(rest, 1_000_000_000)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


def _fraction(value: int, unit: int) -> str:
    """`value / unit` in decimal without trailing zeros (Go prints `1.5ms`, not `1.500ms`)."""
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def parse_rfc3339(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (`2025-08-21T12:40:59Z`), None if unreadable or naive."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def rate_headers(headers: httpx.Headers) -> dict[str, str]:
    """The rate-limit-related headers, lower-cased, first value wins.

    httpx's case-insensitive lookup scans every header per call; one pass here
    keeps parsing cheap on the hot path.
    """
    out: dict[str, str] = {}
    for key, value in headers.multi_items():
        if key.startswith(_RELEVANT_PREFIXES) or key == "x-should-retry":
            out.setdefault(key, value)
    return out


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
    """The budget a response reported, as absolute times; None when it reported nothing.

    `headers` are lower-cased names (see `rate_headers`); `now` is the epoch
    time the response arrived, the origin of relative reset durations.
    """
    if not headers:
        return None
    limit_requests = _first_int(headers, _LIMIT_REQUESTS)
    remaining_requests = _first_int(headers, _REMAINING_REQUESTS)
    requests_reset_at = _first_reset(headers, _RESET_REQUESTS, now)
    limit_tokens = _first_int(headers, _LIMIT_TOKENS)
    remaining_tokens = _first_int(headers, _REMAINING_TOKENS)
    tokens_reset_at = _first_reset(headers, _RESET_TOKENS, now)
    if tokens_reset_at is None and "x-tokenlimit-remaining" in headers:
        tokens_reset_at = now + TOGETHER_TOKEN_WINDOW_S

    if "anthropic-ratelimit-requests-remaining" in headers or "anthropic-ratelimit-requests-limit" in headers:
        limit_requests = _int(headers.get("anthropic-ratelimit-requests-limit"))
        remaining_requests = _int(headers.get("anthropic-ratelimit-requests-remaining"))
        requests_reset_at = _rfc3339(headers.get("anthropic-ratelimit-requests-reset"))
    bucket = _anthropic_tightest_token_bucket(headers)
    if bucket is not None:
        limit_tokens, remaining_tokens, tokens_reset_at = bucket

    snapshot = RateLimitSnapshot(
        limit_requests=limit_requests,
        remaining_requests=remaining_requests,
        requests_reset_at=requests_reset_at,
        limit_tokens=limit_tokens,
        remaining_tokens=remaining_tokens,
        tokens_reset_at=tokens_reset_at,
    )
    return None if snapshot == _EMPTY else snapshot


_EMPTY = RateLimitSnapshot()


def _anthropic_tightest_token_bucket(
    headers: Mapping[str, str],
) -> tuple[int | None, int | None, float | None] | None:
    """Anthropic reports combined, input and output token buckets; the one with least left binds."""
    best: tuple[int | None, int | None, float | None] | None = None
    for name in _ANTHROPIC_TOKEN_BUCKETS:
        prefix = f"anthropic-ratelimit-{name}-"
        remaining = _int(headers.get(prefix + "remaining"))
        limit = _int(headers.get(prefix + "limit"))
        if remaining is None and limit is None:
            continue
        candidate = (limit, remaining, _rfc3339(headers.get(prefix + "reset")))
        if best is None or _tighter(candidate, best):
            best = candidate
    return best


def _tighter(
    a: tuple[int | None, int | None, float | None], b: tuple[int | None, int | None, float | None]
) -> bool:
    """Fewer tokens left binds; on a tie the later reset binds longer."""
    rem_a = math.inf if a[1] is None else a[1]
    rem_b = math.inf if b[1] is None else b[1]
    if rem_a != rem_b:
        return rem_a < rem_b
    return (a[2] or 0.0) > (b[2] or 0.0)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The server's explicit wait: `retry-after-ms`, else `retry-after` (seconds or HTTP date).

    Same precedence as the official SDKs. A date in the past means "now" (0.0).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        value = _finite_nonnegative(millis)
        if value is not None:
            return value / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    value = _finite_nonnegative(raw)
    if value is not None:
        return value
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """`x-should-retry: true|false` (OpenAI/Anthropic), None when absent or neither."""
    raw = headers.get("x-should-retry")
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def wait_from_snapshot(snapshot: RateLimitSnapshot | None, now: float) -> float | None:
    """Seconds until an exhausted budget resets, when one is exhausted and its reset is known."""
    if snapshot is None:
        return None
    waits = [
        reset - now
        for remaining, reset in (
            (snapshot.remaining_requests, snapshot.requests_reset_at),
            (snapshot.remaining_tokens, snapshot.tokens_reset_at),
        )
        if remaining is not None and remaining <= 0 and reset is not None
    ]
    return max(0.0, *waits) if waits else None


def _first_int(headers: Mapping[str, str], names: Iterable[str]) -> int | None:
    for name in names:
        value = _int(headers.get(name))
        if value is not None:
            return value
    return None


def _first_reset(headers: Mapping[str, str], names: Iterable[str], now: float) -> float | None:
    for name in names:
        raw = headers.get(name)
        if raw is None:
            continue
        seconds = parse_go_duration(raw)
        if seconds is not None:
            return now + seconds
    return None


def _int(raw: str | None) -> int | None:
    """Counts are integers; some hosts send `-1` or `30000.0`: keep what is a whole number ≥ 0."""
    if raw is None:
        return None
    value = _finite_nonnegative(raw)
    if value is None or value != int(value):
        return None
    return int(value)


def _rfc3339(raw: str | None) -> float | None:
    return None if raw is None else parse_rfc3339(raw)


def _finite_nonnegative(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value
