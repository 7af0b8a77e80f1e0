"""Rate limits as token buckets, the algorithm OpenAI and Anthropic describe for their own limits.

A bucket holds up to `per_minute` units and refills continuously at
`per_minute / 60` per second, so "reset" (time until the bucket is full again)
and "retry after" (time until this request fits) are exact, and the headers
look like the real ones: OpenAI's `x-ratelimit-reset-requests: 6ms` at 10k RPM
is the time to refill the one request just taken. A request charges one unit of
the request bucket and `estimated input + max output` of the token bucket (the
reservation OpenAI documents); it is admitted only when both have room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BucketKind = Literal["requests", "tokens"]


class TokenBucket:
    """A continuously refilled budget of `per_minute` units."""

    __slots__ = ("_level", "_stamp", "capacity", "rate")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._level = self.capacity
        self._stamp = now

    def level(self, now: float) -> float:
        """Units available at `now` (monotonic seconds)."""
        if now > self._stamp:
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
        return self._level

    def wait_for(self, units: float, now: float) -> float:
        """Seconds until `units` fit (0 if they do now; inf if they never can)."""
        if units > self.capacity:
            return math.inf
        return max(0.0, (units - self.level(now)) / self.rate)

    def take(self, units: float, now: float) -> None:
        self._level = self.level(now) - units

    def until_full(self, now: float) -> float:
        """Seconds until the bucket is back to capacity: the providers' "reset" value."""
        return (self.capacity - self.level(now)) / self.rate


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket as response headers report it."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class LimitState:
    """Both buckets of a provider at one moment; None where the provider has no such limit."""

    requests: BucketState | None
    tokens: BucketState | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted, and when it would be."""

    bucket: BucketKind
    wait_s: float
    """Seconds until this request would fit; inf when it exceeds the bucket's capacity."""


class ProviderLimits:
    """A provider's request and token buckets (either may be absent = unlimited)."""

    __slots__ = ("_requests", "_tokens")

    def __init__(self, rpm: int | None, tpm: int | None, now: float) -> None:
        self._requests = TokenBucket(rpm, now) if rpm else None
        self._tokens = TokenBucket(tpm, now) if tpm else None

    def admit(self, tokens: int, now: float) -> Refusal | None:
        """Charge one request and `tokens`, or say which bucket refused (charging nothing)."""
        requests, token_bucket = self._requests, self._tokens
        if requests is not None:
            wait = requests.wait_for(1, now)
            if wait > 0:
                return Refusal("requests", wait)
        if token_bucket is not None:
            wait = token_bucket.wait_for(tokens, now)
            if wait > 0:
                return Refusal("tokens", wait)
        if requests is not None:
            requests.take(1, now)
        if token_bucket is not None:
            token_bucket.take(tokens, now)
        return None

    def state(self, now: float) -> LimitState:
        return LimitState(_bucket_state(self._requests, now), _bucket_state(self._tokens, now))


def _bucket_state(bucket: TokenBucket | None, now: float) -> BucketState | None:
    if bucket is None:
        return None
    return BucketState(
        limit=int(bucket.capacity),
        remaining=max(0, math.floor(bucket.level(now))),
        reset_s=bucket.until_full(now),
    )
