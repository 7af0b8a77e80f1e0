"""Reference costs of the rate-limit scenario: capacity within a deadline and the optimal split."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from qroute.bench.costs import (
    JobCost,
    all_cheap_cost,
    cheap_capacity,
    hindsight_split,
    job_costs,
    optimal_split,
    ratio,
)
from qroute.catalog.types import ModelSpec
from qroute.models import Usage


def _model(provider: str, factor: int) -> ModelSpec:
    return ModelSpec(
        provider=provider,
        model="small",
        tier=1,
        input_per_m=Decimal("0.15") * factor,
        cached_input_per_m=Decimal("0.075") * factor,
        output_per_m=Decimal("0.60") * factor,
        context_window=8192,
        max_output_tokens=4096,
        price_source="test",
        price_date=date(2026, 11, 22),
    )


class TestCheapCapacity:
    """The cheap route serves its full bucket plus what refills before the deadline, at most N."""

    def test_issue_numbers(self) -> None:
        """600 rpm, 70 s deadline, 200 ms calls: 600 + 10 x 69.8 = 1298 jobs, exactly."""
        assert cheap_capacity(2000, 600, Decimal(70), Decimal("0.2")) == 1298

    def test_capped_by_the_job_count(self) -> None:
        """Fewer jobs than capacity: all of them fit."""
        assert cheap_capacity(500, 600, Decimal(70), Decimal("0.2")) == 500

    def test_fractional_refill_is_floored(self) -> None:
        """Half a refilled request is not a request."""
        assert cheap_capacity(10_000, 60, Decimal("10.5"), Decimal(0)) == 70

    def test_deadline_shorter_than_latency_leaves_the_burst(self) -> None:
        """With no time to refill, only the initial bucket counts."""
        assert cheap_capacity(2000, 600, Decimal("0.1"), Decimal("0.2")) == 600

    def test_rejects_a_zero_limit(self) -> None:
        """A route with no requests per minute has no capacity formula."""
        with pytest.raises(ValueError):
            cheap_capacity(10, 0, Decimal(70), Decimal(0))


class TestOptimalSplit:
    """The optimal split fills the cheap slots, at the average job's cost (costs are unknown in advance)."""

    def test_count_optimal_at_average_cost(self) -> None:
        """One slot of three: (1 x 8 + 2 x 88) / 3, exactly."""
        jobs = [
            JobCost(Decimal(1), Decimal(16)),
            JobCost(Decimal(2), Decimal(32)),
            JobCost(Decimal(5), Decimal(40)),
        ]
        split = optimal_split(jobs, 1)
        assert (split.on_cheap, split.on_expensive) == (1, 2)
        assert split.cost == (Decimal(8) + 2 * Decimal(88)) / 3

    def test_equal_jobs_match_the_hindsight_bound(self) -> None:
        """When every job costs the same, knowing costs in advance does not help."""
        jobs = [JobCost(Decimal("0.0001"), Decimal("0.0016"))] * 2000
        assert optimal_split(jobs, 1298) == hindsight_split(jobs, 1298)
        assert optimal_split(jobs, 1298).cost == Decimal("0.1298") + Decimal("1.1232")

    def test_enough_slots_is_all_cheap(self) -> None:
        """When every job fits, the optimum is the all-cheap cost."""
        jobs = [JobCost(Decimal("0.001"), Decimal("0.016")), JobCost(Decimal("0.002"), Decimal("0.032"))]
        assert optimal_split(jobs, 10).cost == all_cheap_cost(jobs) == Decimal("0.003")

    def test_no_jobs(self) -> None:
        """No jobs cost nothing."""
        assert optimal_split([], 5).cost == Decimal(0)


class TestHindsightSplit:
    """The hindsight bound gives the cheap slots to the jobs that save most."""

    def test_slots_go_to_the_biggest_savings(self) -> None:
        """With one slot, the job saving most (35) goes cheap, not the cheapest one: 16 + 32 + 5."""
        jobs = [
            JobCost(Decimal(1), Decimal(16)),
            JobCost(Decimal(2), Decimal(32)),
            JobCost(Decimal(5), Decimal(40)),
        ]
        split = hindsight_split(jobs, 1)
        assert (split.on_cheap, split.on_expensive) == (1, 2)
        assert split.cost == Decimal(53)

    def test_never_above_the_optimal_split(self) -> None:
        """Knowing the costs can only help: the bound is at most the average-cost optimum."""
        jobs = [JobCost(Decimal(c), Decimal(c) * 16) for c in (3, 1, 4, 1, 5, 9, 2, 6)]
        for slots in range(len(jobs) + 1):
            assert hindsight_split(jobs, slots).cost <= optimal_split(jobs, slots).cost

    def test_no_slots_is_all_expensive(self) -> None:
        """Zero slots puts every job on the expensive route."""
        split = hindsight_split([JobCost(Decimal(1), Decimal(16)), JobCost(Decimal(2), Decimal(32))], 0)
        assert (split.on_cheap, split.cost) == (0, Decimal(48))

    def test_a_job_not_cheaper_takes_no_slot(self) -> None:
        """A job that would cost more on the 'cheap' route stays where it is cheaper."""
        split = hindsight_split([JobCost(Decimal(3), Decimal(2))], 1)
        assert (split.on_cheap, split.cost) == (0, Decimal(2))


class TestRepricing:
    """A job's usage priced at both routes' catalog prices."""

    def test_sixteen_times_dearer(self) -> None:
        """Prices x16 give exactly 16x the cost for the same usage, cached tokens included."""
        usage = Usage(input_tokens=120, cached_input_tokens=20, output_tokens=64)
        (priced,) = job_costs([usage], _model("cheap", 1), _model("dear", 16))
        assert priced.cheap == Decimal("0.0000549")  # (100 x 0.15 + 20 x 0.075 + 64 x 0.60) / 1M
        assert priced.expensive == priced.cheap * 16

    def test_ratio(self) -> None:
        """The ratio is exact, and 0 against a zero reference."""
        assert ratio(Decimal("1.05"), Decimal("1.00")) == Decimal("1.05")
        assert ratio(Decimal(1), Decimal(0)) == Decimal(0)
