"""Scenario `ratelimit`: a cheap route capped at 600 requests/minute and one 16x dearer without a cap.

This is the situation qroute exists for. The cap is the SIMULATOR's (a token
bucket answering 429 with retry-after and the family's remaining/reset headers);
qroute's configuration does not state it, so the worker has to learn it from the
headers. Two runs, each with a fresh worker and a reset simulator:

- (a) deadline far away: waiting is free, so every job should run on the cheap
  route, with few 429s, no failures and a cost within 1% of all-cheap;
- (b) deadline 70 s after submission: the cheap route can serve only what its
  bucket holds plus what refills before the deadline; the rest must go to the
  expensive route, and the cost must stay within 5% of the optimal split.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from qroute.bench.costs import (
    JobCost,
    all_cheap_cost,
    cheap_capacity,
    hindsight_split,
    job_costs,
    optimal_split,
    ratio,
)
from qroute.bench.env import BenchEnv, bench_job, run_id, scrape_counters
from qroute.bench.kafkaio import TopicReader, produce
from qroute.bench.report import ScenarioReport
from qroute.bench.workerproc import WorkerProcess
from qroute.catalog.types import ModelSpec
from qroute.config import Settings
from qroute.models import CostRecord, Result
from qroute.sim import FixedLatency, RemoteSim, SimConfig, SimModel, SimProvider, run_in_subprocess
from qroute.worker.topics import create_topics

CHEAP = "cheap"
DEAR = "dear"
RPM = 600
LATENCY_S = Decimal("0.2")
PRICE_FACTOR = 16
CHEAP_PRICES = {
    "input_per_m": Decimal("0.15"),
    "cached_input_per_m": Decimal("0.075"),
    "output_per_m": Decimal("0.60"),
}
MAX_429_SHARE = 0.02
MAX_RATIO_FAR = Decimal("1.01")
MAX_RATIO_DEADLINE = Decimal("1.05")


@dataclass(frozen=True, slots=True)
class RateLimitOptions:
    jobs: int = 2000
    far_deadline_s: float = 3600.0
    deadline_s: int = 70


def sim_config() -> SimConfig:
    dear_prices = {name: price * PRICE_FACTOR for name, price in CHEAP_PRICES.items()}
    return SimConfig(
        seed=4,
        providers=[
            SimProvider(
                name=CHEAP,
                family="openai",
                rpm=RPM,
                latency=FixedLatency(seconds=float(LATENCY_S)),
                models=[SimModel(name="small", **CHEAP_PRICES)],
            ),
            SimProvider(
                name=DEAR,
                family="openai",
                latency=FixedLatency(seconds=float(LATENCY_S)),
                models=[SimModel(name="small", **dear_prices)],
            ),
        ],
    )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run produced, read from the result and cost topics and the simulator's ledger."""

    jobs: int
    results: list[Result]
    costs: list[CostRecord]
    duplicates: int
    duration_s: float
    ledger_total: Decimal
    status_counts: dict[str, dict[str, int]]
    counters: dict[str, float]


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers one run's checks need."""

    failed: int
    """Jobs without a succeeded result (failed, or none arrived in time)."""
    on_cheap: int
    share_429: float
    actual: Decimal
    priced: list[JobCost]
    """Each succeeded job's usage priced at both routes."""


def _spec(settings: Settings, provider: str) -> ModelSpec:
    return next(m for m in settings.models if m.provider == provider)


async def one_run(
    env: BenchEnv, sim: RemoteSim, label: str, jobs: int, deadline_s: float
) -> tuple[RunOutcome, Settings]:
    run = run_id(f"ratelimit-{label}")
    settings = env.settings(sim, run)
    await create_topics(settings)
    paced_s = max(0.0, (jobs - RPM) / (RPM / 60))
    timeout_s = min(deadline_s, 3 * paced_s) + 120.0
    async with (
        TopicReader(settings, settings.topics.results) as results,
        TopicReader(settings, settings.topics.costs) as costs,
        WorkerProcess(settings, env.folder, name=run, log_level=env.worker_log_level) as worker,
    ):
        await worker.wait_ready()
        sim.reset()  # full buckets and an empty ledger for this run
        sent = await produce(settings, jobs, functools.partial(bench_job, run, deadline_s=deadline_s))
        await results.wait_for(jobs, timeout_s)
        await costs.wait_for(len(results.records), 30.0)
        finished = max((r.at for r in results.records.values()), default=time.time())
        counters = await scrape_counters(worker.url)
    ledger = await sim.ledger()
    outcome = RunOutcome(
        jobs=jobs,
        results=[Result.model_validate(r.data) for r in results.records.values()],
        costs=[CostRecord.model_validate(r.data) for r in costs.records.values()],
        duplicates=results.duplicates,
        duration_s=finished - sent.first_at,
        ledger_total=ledger.total_cost,
        status_counts=ledger.status_counts,
        counters=counters,
    )
    return outcome, settings


def _common(report: ScenarioReport, key: str, out: RunOutcome, settings: Settings) -> Figures:
    """Metrics both runs share; returns the numbers the checks need."""
    succeeded = [r for r in out.results if r.status == "succeeded" and r.usage is not None]
    failed = out.jobs - len(succeeded)
    split = Counter(r.provider for r in succeeded)
    cheap_status = out.status_counts.get(CHEAP, {})
    cheap_requests = sum(cheap_status.values())
    share_429 = cheap_status.get("429", 0) / cheap_requests if cheap_requests else 0.0
    actual = sum((c.total_cost_usd for c in out.costs), start=Decimal(0))
    priced = job_costs(
        (r.usage for r in succeeded if r.usage is not None), _spec(settings, CHEAP), _spec(settings, DEAR)
    )
    report.metric(f"{key}_duration_s", f"({key}) first produce → last result", out.duration_s, "s")
    report.metric(f"{key}_on_cheap", f"({key}) jobs on the cheap route", split.get(CHEAP, 0))
    report.metric(f"{key}_on_dear", f"({key}) jobs on the 16x route", split.get(DEAR, 0))
    report.metric(f"{key}_cheap_requests", f"({key}) requests to the cheap route", cheap_requests)
    report.metric(f"{key}_cheap_429", f"({key}) of them answered 429", cheap_status.get("429", 0))
    report.metric(
        f"{key}_deferred",
        f"({key}) deferrals to delay topics",
        int(out.counters.get("qroute_deferred_total", 0)),
    )
    report.metric(
        f"{key}_failovers", f"({key}) failovers", int(out.counters.get("qroute_failovers_total", 0))
    )
    report.metric(f"{key}_cost", f"({key}) total cost (cost records)", actual, "USD")
    report.metric(f"{key}_all_cheap_cost", f"({key}) all-cheap cost", all_cheap_cost(priced), "USD")
    if actual != out.ledger_total:
        report.notes.append(
            f"({key}) cost records total {actual} but the simulator billed {out.ledger_total}"
        )
    if out.duplicates:
        report.metric(f"{key}_duplicates", f"({key}) duplicate results", out.duplicates)
    return Figures(failed, split.get(CHEAP, 0), share_429, actual, priced)


async def run_ratelimit(env: BenchEnv, options: RateLimitOptions) -> ScenarioReport:
    report = ScenarioReport(
        "ratelimit",
        f"ratelimit: {options.jobs} jobs, cheap route {RPM} rpm (simulator), 16x route unlimited, "
        f"{LATENCY_S} s latency",
    )
    with run_in_subprocess(sim_config()) as sim:
        far, settings_a = await one_run(env, sim, "far", options.jobs, options.far_deadline_s)
        a = _common(report, "a", far, settings_a)
        report.check("a_failed", "(a) failed jobs", a.failed, "==", 0)
        report.check("a_on_cheap", "(a) jobs on the cheap route", a.on_cheap, "==", options.jobs)
        report.check(
            "a_429_share",
            "(a) share of cheap requests answered 429",
            a.share_429 * 100,
            "<=",
            MAX_429_SHARE * 100,
            "%",
        )
        report.check(
            "a_cost_ratio",
            "(a) cost / all-cheap cost",
            ratio(a.actual, all_cheap_cost(a.priced)),
            "<=",
            MAX_RATIO_FAR,
            "x",
        )

        tight, settings_b = await one_run(env, sim, "deadline", options.jobs, float(options.deadline_s))
        b = _common(report, "b", tight, settings_b)
        slots = cheap_capacity(options.jobs, RPM, Decimal(options.deadline_s), LATENCY_S)
        best = optimal_split(b.priced, slots)
        bound = hindsight_split(b.priced, slots)
        report.metric("b_cheap_capacity", "(b) cheap jobs possible within the deadline", slots)
        report.metric(
            "b_optimal_cost", f"(b) optimal split cost ({best.on_cheap} cheap, average job)", best.cost, "USD"
        )
        report.metric(
            "b_hindsight_cost", "(b) lower bound: slots to the longest answers (hindsight)", bound.cost, "USD"
        )
        report.metric("b_hindsight_ratio", "(b) cost / hindsight bound", ratio(b.actual, bound.cost), "x")
        report.check("b_failed", "(b) failed jobs", b.failed, "==", 0)
        report.check(
            "b_cost_ratio",
            "(b) cost / optimal split",
            ratio(b.actual, best.cost),
            "<=",
            MAX_RATIO_DEADLINE,
            "x",
        )
    report.notes.append(
        f"(a) deadline {options.far_deadline_s:g} s after submission; (b) {options.deadline_s} s. Capacity = "
        f"min(N, {RPM} + {RPM}/60 x (deadline - {LATENCY_S} s)). The optimal split fills those cheap slots and "
        "sends the rest to the 16x route, at the average job's cost: answer lengths (and so costs) vary "
        "by ±25% and are unknown before the call, so no router can pick the jobs by cost; the hindsight bound "
        "does, and is shown for information. Reference costs re-price each succeeded job's usage at both "
        "routes' prices."
    )
    return report
