"""The demo's closing numbers, computed only from records read off the result, cost and DLQ topics.

Definitions (also printed with the summary):
- *spend*: the sum of `total_cost_usd` over the cost records (one per job), exact;
- *spend by route*: every billed attempt's cost, grouped by `provider/model`;
- *429s absorbed*: attempts whose outcome was `rate_limited` (the job carried on);
- *failovers*: times a job's next attempt went to a different route after a failed one;
- *deferrals*: records parked on the delay topics (a job may be parked more than once);
- *latency*: from the job's `created_at` to the worker finishing it (`timings.finished_at`);
- *baselines*: the usage each succeeded job reported, re-priced at one route's list prices.
  "Premium only" sends everything to the premium route; "single provider with retries" is a
  synchronous gateway that calls one mid-priced route and retries it until it answers. Failed
  calls are not billed, so its retries cost time, not money: it pays the mid route's price for
  exactly the same usage.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, Field

from qroute.catalog.types import ModelSpec
from qroute.models import Usage
from qroute.money import ZERO, Money
from qroute.routing.cost import cost_of

JsonRecord = Mapping[str, Any]


class RouteSpend(BaseModel):
    """What one route cost and how many jobs it finished."""

    route: str
    jobs_finished: int = Field(description="Succeeded jobs whose answer came from this route.")
    billed_attempts: int
    spend_usd: Money


class Baseline(BaseModel):
    """The same usage priced at one route."""

    name: str
    route: str
    cost_usd: Money
    definition: str


class DemoSummary(BaseModel):
    """Everything the demo prints at the end; `--json-summary` writes this model."""

    simulated: bool
    run_id: str
    batch_id: str
    jobs_submitted: int
    broken_records_sent: int
    succeeded: int
    failed: int
    missing: int = Field(description="Jobs without a result when the demo stopped waiting.")
    failure_reasons: dict[str, int]
    duplicate_results: int
    spend_usd: Money
    spend_by_route: list[RouteSpend]
    baselines: list[Baseline]
    attempts: int
    rate_limited: int = Field(description="429s absorbed: rate_limited attempts.")
    rate_limited_by_provider: dict[str, int]
    failovers: int
    jobs_failed_over: int
    deferrals: int
    jobs_deferred: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    dead_letters: int
    ledger_total_usd: Money | None = Field(
        default=None, description="The simulator's own bill (simulated runs only)."
    )
    results_file: str
    costs_file: str
    out_dir: str = Field(description="Results, costs, the generated worker config and the worker logs.")
    wall_time_s: float


def route_id(attempt: JsonRecord) -> str:
    return f"{attempt.get('provider')}/{attempt.get('model')}"


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def latency_s(result: JsonRecord) -> float:
    """Job creation to result, in seconds."""
    timings = result["timings"]
    created = datetime.fromisoformat(timings["created_at"])
    finished = datetime.fromisoformat(timings["finished_at"])
    return (finished - created).total_seconds()


def count_failovers(attempts: Sequence[JsonRecord]) -> int:
    """Route switches after an unsuccessful attempt within one job."""
    switches = 0
    for before, after in pairwise(attempts):
        if before.get("outcome") != "success" and route_id(before) != route_id(after):
            switches += 1
    return switches


def spend_by_route(results: Iterable[JsonRecord], costs: Iterable[JsonRecord]) -> list[RouteSpend]:
    """Spend and billed attempts per route from the cost records, jobs finished from the results."""
    spend: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    billed: Counter[str] = Counter()
    for record in costs:
        for attempt in record.get("attempts", []):
            if attempt.get("billed"):
                billed[route_id(attempt)] += 1
                spend[route_id(attempt)] += Decimal(str(attempt.get("cost_usd", "0")))
    finished = Counter(
        f"{r.get('provider')}/{r.get('model')}" for r in results if r.get("status") == "succeeded"
    )
    routes = sorted(set(spend) | set(finished), key=lambda r: (-finished[r], r))
    return [
        RouteSpend(route=r, jobs_finished=finished[r], billed_attempts=billed[r], spend_usd=spend[r])
        for r in routes
    ]


def baseline(name: str, model: ModelSpec, results: Iterable[JsonRecord], definition: str) -> Baseline:
    """The succeeded jobs' reported usage priced at `model`."""
    total = ZERO
    for result in results:
        usage = result.get("usage")
        if result.get("status") == "succeeded" and usage:
            total += cost_of(Usage.model_validate(usage), model)
    return Baseline(name=name, route=model.route_id, cost_usd=total, definition=definition)


def summarize(
    *,
    simulated: bool,
    run_id: str,
    batch_id: str,
    job_ids: Sequence[str],
    broken_records_sent: int,
    results: Mapping[str, JsonRecord],
    costs: Mapping[str, JsonRecord],
    duplicate_results: int,
    dead_letters: int,
    parked: tuple[int, int],
    baselines: Sequence[tuple[str, ModelSpec, str]],
    ledger_total: Decimal | None,
    results_file: str,
    costs_file: str,
    out_dir: str,
    wall_time_s: float,
) -> DemoSummary:
    """The summary of one run: `results`/`costs` are the records read back, keyed by job id."""
    ours = [results[j] for j in job_ids if j in results]
    our_costs = [costs[j] for j in job_ids if j in costs]
    attempts = [a for c in our_costs for a in c.get("attempts", [])]
    rate_limited = Counter(str(a.get("provider")) for a in attempts if a.get("outcome") == "rate_limited")
    failovers = [count_failovers(c.get("attempts", [])) for c in our_costs]
    latencies = [latency_s(r) for r in ours]
    failed = [r for r in ours if r.get("status") == "failed"]
    return DemoSummary(
        simulated=simulated,
        run_id=run_id,
        batch_id=batch_id,
        jobs_submitted=len(job_ids),
        broken_records_sent=broken_records_sent,
        succeeded=len(ours) - len(failed),
        failed=len(failed),
        missing=len(job_ids) - len(ours),
        failure_reasons=dict(Counter(str((r.get("error") or {}).get("type")) for r in failed)),
        duplicate_results=duplicate_results,
        spend_usd=sum((Decimal(str(c.get("total_cost_usd", "0"))) for c in our_costs), ZERO),
        spend_by_route=spend_by_route(ours, our_costs),
        baselines=[baseline(name, model, ours, text) for name, model, text in baselines],
        attempts=len(attempts),
        rate_limited=sum(rate_limited.values()),
        rate_limited_by_provider=dict(rate_limited),
        failovers=sum(failovers),
        jobs_failed_over=sum(1 for n in failovers if n),
        deferrals=parked[0],
        jobs_deferred=parked[1],
        latency_p50_s=percentile(latencies, 0.50),
        latency_p95_s=percentile(latencies, 0.95),
        dead_letters=dead_letters,
        ledger_total_usd=ledger_total,
        results_file=results_file,
        costs_file=costs_file,
        out_dir=out_dir,
        wall_time_s=round(wall_time_s, 2),
    )
