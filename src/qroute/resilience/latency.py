"""Observed provider latency per route, as an exponentially weighted moving average.

With ``alpha = 0.2`` the newest sample carries 20% of the weight and a sample's
influence halves about every three calls, so the estimate follows a provider
that slows down within a handful of calls without jumping on one slow outlier.
The first sample is taken as is (no bias towards zero at start).
"""

from __future__ import annotations

import math

DEFAULT_ALPHA = 0.2
"""Weight of the newest sample."""


class LatencyEwma:
    """A running latency estimate in seconds; None until the first sample."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._value: float | None = None
        self.samples = 0

    @property
    def value(self) -> float | None:
        return self._value

    def observe(self, latency_s: float) -> None:
        """Fold one sample in; negative or non-finite samples (clock trouble) are ignored."""
        if not math.isfinite(latency_s) or latency_s < 0:
            return
        self.samples += 1
        if self._value is None:
            self._value = latency_s
        else:
            self._value += self.alpha * (latency_s - self._value)
