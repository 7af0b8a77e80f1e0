"""Reference costs for the rate-limit scenario: all-cheap and the optimal deadline split.

Every number is exact (`Decimal`). A job's usage is re-priced at both routes'
prices; the simulator answers a prompt with the same tokens whichever route
serves it, so re-pricing the usage a job really had tells what it would have
cost on the other route.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from qroute.catalog.types import ModelSpec
from qroute.models import Usage
from qroute.routing.cost import cost_of

_SECONDS_PER_MINUTE = 60


@dataclass(frozen=True, slots=True)
class JobCost:
    """What one job costs on the cheap route and on the expensive one."""

    cheap: Decimal
    expensive: Decimal

    @property
    def saving(self) -> Decimal:
        """What serving this job on the cheap route saves."""
        return self.expensive - self.cheap


@dataclass(frozen=True, slots=True)
class Split:
    """An assignment of jobs to the two routes and its total cost."""

    on_cheap: int
    on_expensive: int
    cost: Decimal


def job_costs(usages: Iterable[Usage], cheap: ModelSpec, expensive: ModelSpec) -> list[JobCost]:
    """Each usage priced at both routes (catalog formula, cached tokens included)."""
    return [JobCost(cost_of(u, cheap), cost_of(u, expensive)) for u in usages]


def all_cheap_cost(jobs: Iterable[JobCost]) -> Decimal:
    """What the jobs cost if every one ran on the cheap route."""
    return sum((j.cheap for j in jobs), start=Decimal(0))


def cheap_capacity(jobs: int, rpm: int, window_s: Decimal, latency_s: Decimal) -> int:
    """How many jobs a route limited to `rpm` can finish within `window_s` of their submission.

    The limiter is a token bucket that starts full (`rpm` requests) and refills at
    `rpm / 60` per second; the last request must start `latency_s` before the
    deadline to finish by it. Decimal, not float: 600 + 10 × (70 − 0.2) must be
    exactly 1298, not 1297.99….
    """
    if jobs < 0 or rpm <= 0:
        raise ValueError("jobs must be >= 0 and rpm > 0")
    usable_s = max(Decimal(0), window_s - latency_s)
    served = rpm + Decimal(rpm) / _SECONDS_PER_MINUTE * usable_s
    return min(jobs, math.floor(served))


def optimal_split(jobs: Sequence[JobCost], cheap_slots: int) -> Split:
    """The optimal split for jobs whose cost is not known before they run.

    A router fills the cheap route's `cheap_slots` and sends the rest to the
    expensive route; which jobs land where cannot depend on their output length,
    which only the provider's answer reveals. So the reference is the optimal
    *count* on the cheap route at the average job's cost:
    (k·Σcheap + (n−k)·Σexpensive) / n with k = min(slots, n). This is the
    expected cost of every assignment with k jobs on cheap chosen independently of
    their size. (Assumes the cheap route is cheaper for every job, as in the bench.)
    """
    n = len(jobs)
    if cheap_slots < 0:
        raise ValueError("cheap_slots must be >= 0")
    if n == 0:
        return Split(on_cheap=0, on_expensive=0, cost=Decimal(0))
    k = min(cheap_slots, n)
    cheap = sum((j.cheap for j in jobs), start=Decimal(0))
    expensive = sum((j.expensive for j in jobs), start=Decimal(0))
    return Split(on_cheap=k, on_expensive=n - k, cost=(k * cheap + (n - k) * expensive) / n)


def hindsight_split(jobs: Sequence[JobCost], cheap_slots: int) -> Split:
    """The cheapest assignment with at most `cheap_slots` jobs on cheap, knowing every job's cost.

    Total = Σ expensive − Σ(saving of the jobs moved to cheap), so the best use of
    the slots is the jobs that save most (ties do not change the total). A job
    whose cheap price is not lower never takes a slot. No router can do this (it
    would need each answer's length before asking), so it is a lower bound shown
    for information, not a target.
    """
    if cheap_slots < 0:
        raise ValueError("cheap_slots must be >= 0")
    by_saving = sorted(jobs, key=lambda j: j.saving, reverse=True)
    chosen = [j for j in by_saving[:cheap_slots] if j.saving > 0]
    rest = by_saving[len(chosen) :]
    cost = sum((j.cheap for j in chosen), start=Decimal(0)) + sum(
        (j.expensive for j in rest), start=Decimal(0)
    )
    return Split(on_cheap=len(chosen), on_expensive=len(rest), cost=cost)


def ratio(actual: Decimal, reference: Decimal) -> Decimal:
    """`actual / reference`, or 0 when the reference is zero (nothing was run)."""
    return actual / reference if reference else Decimal(0)
