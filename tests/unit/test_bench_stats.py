"""Benchmark statistics: percentiles, medians and rates."""

from __future__ import annotations

import pytest

from qroute.bench.stats import median, percentile, rate, window_rate


class TestPercentile:
    """Percentiles interpolate between order statistics and respect the sample's bounds."""

    def test_median_of_even_sample_is_mean_of_middle_pair(self) -> None:
        """p50 of 1..4 is 2.5."""
        assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)

    def test_p99_of_one_to_hundred(self) -> None:
        """p99 of 1..100 sits just below the maximum (inclusive interpolation)."""
        assert percentile([float(v) for v in range(1, 101)], 99) == pytest.approx(99.01)

    def test_extremes_are_min_and_max(self) -> None:
        """p0 is the minimum and p100 the maximum, whatever the order."""
        values = [3.0, 9.0, 1.0, 7.0]
        assert percentile(values, 0) == 1.0
        assert percentile(values, 100) == 9.0

    def test_single_value(self) -> None:
        """A one-value sample has that value at every percentile."""
        assert percentile([0.25], 99) == 0.25

    def test_never_outside_the_sample(self) -> None:
        """A high percentile of a skewed sample stays within [min, max]."""
        values = [0.1] * 99 + [30.0]
        assert 0.1 <= percentile(values, 99) <= 30.0

    @pytest.mark.parametrize("pct", [-1, 100.5])
    def test_rejects_out_of_range(self, pct: float) -> None:
        """A percentile outside 0..100 is an error."""
        with pytest.raises(ValueError):
            percentile([1.0, 2.0], pct)

    def test_rejects_empty(self) -> None:
        """An empty sample has no percentile."""
        with pytest.raises(ValueError):
            percentile([], 50)


class TestMedianAndRate:
    """Median of run results and events per second."""

    def test_median_of_three_runs(self) -> None:
        """The median of three runs is the middle one."""
        assert median([1.8, 0.9, 1.2]) == 1.2

    def test_median_rejects_empty(self) -> None:
        """An empty sample has no median."""
        with pytest.raises(ValueError):
            median([])

    def test_rate(self) -> None:
        """4000 events in 8 seconds are 500 per second."""
        assert rate(4000, 8.0) == 500.0

    def test_rate_without_elapsed_time(self) -> None:
        """No elapsed time gives 0, not a division error."""
        assert rate(1, 0.0) == 0.0


class TestWindowRate:
    """The rate inside a percentile window of event times ignores ramp-up and tail."""

    def test_steady_middle(self) -> None:
        """A slow start and a slow end do not change the middle's rate of 10 events/s."""
        times = [0.0, 5.0] + [10.0 + i / 10 for i in range(97)] + [60.0]
        assert window_rate(times, 10, 90) == pytest.approx(10.0)

    def test_whole_run(self) -> None:
        """0 → 100 covers every interval: 100 events 1 s apart give 1 event/s."""
        assert window_rate([float(i) for i in range(101)], 0, 100) == pytest.approx(1.0)

    def test_too_few_events(self) -> None:
        """A window with a single event has no rate."""
        assert window_rate([1.0], 10, 90) == 0.0

    def test_rejects_inverted_window(self) -> None:
        """The low percentile must be below the high one."""
        with pytest.raises(ValueError):
            window_rate([1.0, 2.0], 90, 10)
