"""Client CPU per attempt of the adapter + attempt loop, against a zero-latency simulator.

The simulator runs in its own process (`run_in_subprocess`: zero latency, no
limits, no faults unless `--faults`), so its CPU is not counted. This process
builds the production engine (`build_engine`: catalog, route state, the shared
httpx-over-aiohttp client, metrics, `Executor`) and runs N jobs through
`Executor.run` at a fixed concurrency: plan, pace, build the request, send it,
classify the answer, update route state, price the usage, and build the Result
and CostRecord. Client CPU is `time.process_time()` around each round; the
median of several rounds is reported as ms per attempt and per job. Kafka is
not involved (see `qroute bench` for the whole worker).

Afterwards it measures the simulator's own capacity with scripts/bench_sim.py.

    .venv/bin/python scripts/bench_attempt.py [--jobs 5000] [--concurrency 50] [--rounds 5]
        [--family openai|anthropic|both] [--faults] [--sim-requests 20000 | --no-sim-capacity]

The budget this checks: at most 1 ms of worker CPU per whole job.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import bench_sim  # scripts/ is on sys.path when this file is run as a script

from qroute.config import Settings
from qroute.models import Job, Message
from qroute.runtime import build_engine
from qroute.sim import RemoteSim, SimConfig, run_in_subprocess
from qroute.sim.testing import sim_config, sim_model, sim_provider
from qroute.testing import sim_routes_settings
from qroute.worker.processing import Deferred, Finished

RunJob = Callable[[Job], Awaitable[Finished | Deferred]]

PROMPT = "Summarise the attached quarterly report in three sentences for the board. " * 4
WARMUP_JOBS = 300
FAULT_RATES = {"503": 0.03, "529": 0.02, "malformed": 0.02, "reset": 0.02, "no-usage": 0.01}
"""With --faults: about one job in ten needs a second attempt."""


@dataclass(frozen=True)
class Round:
    jobs: int
    attempts: int
    cpu_s: float
    wall_s: float
    sim_cpu_s: float
    succeeded: int

    @property
    def ms_per_attempt(self) -> float:
        return 1000 * self.cpu_s / self.attempts

    @property
    def ms_per_job(self) -> float:
        return 1000 * self.cpu_s / self.jobs


def bench_config(faults: bool) -> SimConfig:
    """`oa` (OpenAI format) and `an` (Anthropic format), each serving one model, zero latency."""
    rates = FAULT_RATES if faults else {}
    return sim_config(
        sim_provider("oa", "openai", models=[sim_model("oa-small")], failure_rates=rates),
        sim_provider("an", "anthropic", models=[sim_model("an-small")], failure_rates=rates),
    )


def make_jobs(n: int, family: str, tag: str) -> list[Job]:
    """Jobs pinned to one family's model (or alternating), built before timing starts."""
    models = {"openai": ["oa-small"], "anthropic": ["an-small"], "both": ["oa-small", "an-small"]}[family]
    return [
        Job(
            id=f"{tag}-{i}",
            messages=[Message(role="user", content=f"{PROMPT} (document {i})")],
            params={"max_tokens": 128},
            constraints={"allowed_models": [model]},
        )
        for i, model in zip(range(n), itertools.cycle(models), strict=False)
    ]


async def run_round(settings: Settings, sim: RemoteSim, jobs: list[Job], concurrency: int) -> Round:
    """One timed pass of `jobs` through a fresh engine (its connections warmed up first)."""
    engine = build_engine(settings, env={}, allow_defer=False)
    try:
        warm = make_jobs(WARMUP_JOBS, "both", f"warm-{jobs[0].id}")
        await _drive(engine.executor.run, warm, concurrency)
        assert sim.pid is not None
        sim_before = bench_sim._cpu_seconds(sim.pid)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        outs = await _drive(engine.executor.run, jobs, concurrency)
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        sim_cpu = bench_sim._cpu_seconds(sim.pid) - sim_before
    finally:
        await engine.aclose()
    attempts = sum(len(o.cost.attempts) for o in outs)
    succeeded = sum(o.result.status == "succeeded" for o in outs)
    return Round(len(jobs), attempts, cpu, wall, sim_cpu, succeeded)


async def _drive(run: RunJob, jobs: list[Job], concurrency: int) -> list[Finished]:
    """`concurrency` workers pulling jobs from one queue, like a worker's in-flight cap."""
    pending = iter(jobs)
    outs: list[Finished] = []

    async def worker() -> None:
        for job in pending:
            out = await run(job)
            if not isinstance(out, Finished):
                raise RuntimeError(f"job {job.id} was deferred; the benchmark expects none")
            outs.append(out)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--family", choices=("openai", "anthropic", "both"), default="both")
    parser.add_argument("--faults", action="store_true", help="inject 5xx/garbage/resets (~10%% retried)")
    parser.add_argument("--sim-requests", type=int, default=20_000)
    parser.add_argument("--no-sim-capacity", action="store_true")
    args = parser.parse_args()

    config = bench_config(args.faults)
    rounds: list[Round] = []
    with run_in_subprocess(config) as sim:
        settings = sim_routes_settings(Settings(), sim)
        for r in range(args.rounds):
            jobs = make_jobs(args.jobs, args.family, f"r{r}")
            result = asyncio.run(run_round(settings, sim, jobs, args.concurrency))
            rounds.append(result)
            print(
                f"round {r + 1}: {result.jobs} jobs, {result.attempts} attempts "
                f"({result.succeeded} succeeded) in {result.wall_s:.2f}s; client CPU {result.cpu_s:.3f}s "
                f"= {result.ms_per_attempt:.3f} ms/attempt, {result.ms_per_job:.3f} ms/job; "
                f"simulator CPU {result.sim_cpu_s:.2f}s"
            )
    per_attempt = statistics.median(r.ms_per_attempt for r in rounds)
    per_job = statistics.median(r.ms_per_job for r in rounds)
    rate = statistics.median(r.jobs / r.wall_s for r in rounds)
    print(
        f"attempt loop ({args.family}{', faults' if args.faults else ''}, concurrency {args.concurrency}, "
        f"median of {len(rounds)} rounds of {args.jobs} jobs): {per_attempt:.3f} ms CPU/attempt, "
        f"{per_job:.3f} ms CPU/job, {rate:,.0f} jobs/s wall"
    )

    if not args.no_sim_capacity:
        capacity_config = sim_config(sim_provider("oa", "openai"), sim_provider("an", "anthropic"))
        with run_in_subprocess(capacity_config) as sim:
            cap = asyncio.run(bench_sim._drive(sim, args.sim_requests, args.concurrency, "both"))
        print(
            f"simulator capacity (scripts/bench_sim.py path, both families, concurrency {args.concurrency}): "
            f"{cap.requests / cap.seconds:,.0f} req/s wall; {cap.requests / cap.server_cpu_s:,.0f} req per "
            f"server CPU-second; statuses {cap.statuses}"
        )


if __name__ == "__main__":
    main()
