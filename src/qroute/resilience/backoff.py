"""Exponential backoff with full jitter, capped; a provider's retry-after always wins.

Full jitter (delay drawn uniformly from ``[0, min(cap, base·2^n))``) spreads
retries of many concurrent jobs instead of synchronising them; see
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
The random source is injected so tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

_MAX_EXPONENT = 1023
"""``2.0**1024`` overflows a float; any exponent this large is far above every cap anyway."""


def backoff_ceiling(retries_taken: int, *, base: float, cap: float) -> float:
    """The upper bound of the jittered delay after `retries_taken` retries: min(cap, base·2^n)."""
    exponent = min(max(retries_taken, 0), _MAX_EXPONENT)
    return min(cap, base * 2.0**exponent)


def backoff_delay(retries_taken: int, *, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Seconds to wait before the next try: ``rng() * min(cap, base * 2**retries_taken)``.

    `rng` returns a float in ``[0, 1)`` (like `random.random`). Never negative,
    never above `cap`.
    """
    return max(0.0, rng()) * backoff_ceiling(retries_taken, base=base, cap=cap)


def retry_delay(
    retries_taken: int,
    retry_after_s: float | None,
    *,
    base: float,
    cap: float,
    rng: Callable[[], float],
) -> float:
    """Seconds to wait before retrying: the provider's retry-after when it sent one, else backoff.

    The provider knows when its quota refills, so its hint wins even above our
    cap (whether to wait that long is the caller's deadline decision).
    A negative hint (clock skew on an HTTP-date header) means "now".
    """
    if retry_after_s is not None:
        return max(0.0, retry_after_s)
    return backoff_delay(retries_taken, base=base, cap=cap, rng=rng)
