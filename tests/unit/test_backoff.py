"""Backoff: capped exponential with full jitter; a provider's retry-after always wins."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qroute.resilience.backoff import backoff_ceiling, backoff_delay, retry_delay

retries = st.integers(min_value=-5, max_value=5_000)
bases = st.floats(min_value=1e-3, max_value=60, allow_nan=False)
caps = st.floats(min_value=1e-3, max_value=3_600, allow_nan=False)
draws = st.floats(min_value=0, max_value=1, exclude_max=True, allow_nan=False)


class TestBackoffDelay:
    """backoff_delay = rng() · min(cap, base · 2^n)."""

    @given(retries, bases, caps, draws)
    def test_never_negative_never_above_cap(self, n: int, base: float, cap: float, draw: float) -> None:
        """Whatever the inputs, the delay lies in [0, cap]."""
        delay = backoff_delay(n, base=base, cap=cap, rng=lambda: draw)
        assert 0 <= delay <= cap

    def test_full_jitter_scales_the_exponential(self) -> None:
        """The draw multiplies base · 2^n: 0.5 · 0.5 · 2^3 = 2."""
        assert backoff_delay(3, base=0.5, cap=30, rng=lambda: 0.5) == 2.0

    def test_zero_draw_means_no_wait(self) -> None:
        """Full jitter includes zero: the lower bound is not base."""
        assert backoff_delay(4, base=1, cap=30, rng=lambda: 0.0) == 0.0

    def test_ceiling_doubles_until_the_cap(self) -> None:
        """The ceiling doubles per retry and then stays at the cap."""
        ceilings = [backoff_ceiling(n, base=0.5, cap=30) for n in range(9)]
        assert ceilings == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]

    def test_huge_retry_counts_do_not_overflow(self) -> None:
        """2^100000 would overflow a float; the ceiling is simply the cap."""
        assert backoff_ceiling(100_000, base=1, cap=7) == 7


class TestRetryDelay:
    """retry_delay prefers the provider's hint over our own backoff."""

    @given(retries, bases, caps, draws, st.floats(min_value=0, max_value=1e6, allow_nan=False))
    def test_retry_after_wins_even_above_cap(
        self, n: int, base: float, cap: float, draw: float, hint: float
    ) -> None:
        """A retry-after is returned exactly, whatever the cap."""
        assert retry_delay(n, hint, base=base, cap=cap, rng=lambda: draw) == hint

    @given(retries, bases, caps, draws)
    def test_without_hint_it_is_backoff(self, n: int, base: float, cap: float, draw: float) -> None:
        """No retry-after: the jittered backoff, within [0, cap]."""
        delay = retry_delay(n, None, base=base, cap=cap, rng=lambda: draw)
        assert delay == backoff_delay(n, base=base, cap=cap, rng=lambda: draw)
        assert 0 <= delay <= cap

    def test_negative_hint_means_now(self) -> None:
        """A retry-after date already in the past (clock skew) means retry at once."""
        assert retry_delay(2, -3.0, base=1, cap=10, rng=lambda: 0.9) == 0.0
