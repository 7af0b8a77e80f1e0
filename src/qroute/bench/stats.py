"""Summary statistics for benchmark samples: percentiles and rates.

Percentiles use the stdlib's `statistics.quantiles` with the inclusive method
(linear interpolation between order statistics), so p50 of an even sample is the
mean of the two middle values and p100 is the maximum.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0–100) of `values`; raises ValueError on an empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {pct}")
    if len(values) == 1:
        return float(values[0])
    if pct == 0:
        return float(min(values))
    if pct == 100:
        return float(max(values))
    # 1000 cut points resolve tenths of a percent (p99.9) without a hand-written interpolation.
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(pct * 10) - 1]


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when no time passed (one event, or a clock that did not move)."""
    return count / seconds if seconds > 0 else 0.0


def median(values: Sequence[float]) -> float:
    """The median; raises ValueError on an empty sample."""
    if not values:
        raise ValueError("median of an empty sample")
    return float(statistics.median(values))


def window_rate(times: Sequence[float], lo_pct: int, hi_pct: int) -> float:
    """Events per second between the `lo_pct`-th and `hi_pct`-th percentile event of sorted `times`.

    Leaves out the start-up ramp and the last wave's tail, which a whole-run rate
    mixes in; 0 when the window holds fewer than two events.
    """
    if not 0 <= lo_pct < hi_pct <= 100:
        raise ValueError("need 0 <= lo_pct < hi_pct <= 100")
    last = len(times) - 1
    lo, hi = last * lo_pct // 100, last * hi_pct // 100
    if hi - lo < 1:
        return 0.0
    return rate(hi - lo, times[hi] - times[lo])
