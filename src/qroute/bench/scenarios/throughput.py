"""Scenario `throughput`: many jobs in flight against 1-second providers, and the serial baseline.

A worker that handles one job at a time per partition does at most
partitions ÷ latency jobs per second (8 jobs/s here). qroute keeps hundreds of
jobs in flight, so its rate is bounded by `max_in_flight` ÷ latency and by CPU.
Both are measured in the same bench run against the same simulator: the baseline
is the same worker with `max_in_flight` = partitions, the best a one-job-per-
partition consumer can do (it never waits for a commit between jobs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from qroute.bench.env import BenchEnv, bench_job, process_ids, run_id
from qroute.bench.kafkaio import TopicReader, produce, wait_committed
from qroute.bench.procfs import CpuMeter
from qroute.bench.report import ScenarioReport
from qroute.bench.stats import percentile, rate, window_rate
from qroute.bench.workerproc import WorkerProcess
from qroute.sim import FixedLatency, RemoteSim, SimConfig, SimModel, SimProvider, run_in_subprocess
from qroute.worker.topics import create_topics

TARGET_JOBS_PER_S = 400.0
TARGET_SPEEDUP = 50.0
TARGET_RSS_MB = 300.0
LATENCY_S = 1.0
PARTITIONS = 8


@dataclass(frozen=True, slots=True)
class ThroughputOptions:
    jobs: int = 4000
    max_in_flight: int = 1000
    baseline_jobs: int = 80


@dataclass(frozen=True, slots=True)
class RunNumbers:
    """One run's rates, latencies and worker footprint."""

    jobs: int
    received: int
    from_produce_per_s: float
    first_to_last_per_s: float
    steady_per_s: float
    """Between the 10th and the 90th percentile of arrivals: no start-up ramp, no last-wave tail."""
    first_result_s: float
    latencies_s: list[float]
    cpu_ms_per_job: float
    peak_rss_mb: float
    cores: dict[str, float]
    """CPU used during the run per process, in cores (CPU seconds per wall second)."""
    duplicates: int


def sim_config() -> SimConfig:
    return SimConfig(
        seed=2,
        providers=[
            SimProvider(
                name="steady",
                family="openai",
                latency=FixedLatency(seconds=LATENCY_S),
                models=[
                    SimModel(
                        name="small", input_per_m="0.15", cached_input_per_m="0.075", output_per_m="0.60"
                    )
                ],
            )
        ],
    )


async def measure(env: BenchEnv, sim: RemoteSim, scenario: str, jobs: int, max_in_flight: int) -> RunNumbers:
    """Start a worker, produce `jobs` at once, wait for every result and commit, return the numbers."""
    run = run_id(scenario)
    settings = env.settings(sim, run, partitions=PARTITIONS, worker={"max_in_flight": max_in_flight})
    await create_topics(settings)
    timeout_s = max(120.0, 4 * jobs * LATENCY_S / max_in_flight + 60)
    async with (
        TopicReader(settings, settings.topics.results) as results,
        WorkerProcess(settings, env.folder, name=run, log_level=env.worker_log_level) as worker,
    ):
        await worker.wait_ready()
        meter = CpuMeter(process_ids(env, worker.pid, sim.pid))
        sent = await produce(settings, jobs, functools.partial(bench_job, run))
        complete = await results.wait_for(jobs, timeout_s)
        cpu_s = meter.used()
        cpu_s["other processes"] = meter.others(cpu_s)
        if complete:
            await wait_committed(settings, jobs, 30.0)
        peak_mb = worker.peak_rss_bytes() / 2**20
    arrivals = sorted(r.at for r in results.records.values())
    latencies = [r.at - sent.created[job_id] for job_id, r in results.records.items()]
    if not arrivals:
        raise RuntimeError(f"{scenario}: no result arrived within {timeout_s:g}s{worker.log_tail()}")
    wall_s = arrivals[-1] - sent.first_at
    return RunNumbers(
        jobs=jobs,
        received=len(arrivals),
        from_produce_per_s=rate(len(arrivals), wall_s),
        first_to_last_per_s=rate(len(arrivals) - 1, arrivals[-1] - arrivals[0]),
        steady_per_s=window_rate(arrivals, 10, 90),
        first_result_s=arrivals[0] - sent.first_at,
        latencies_s=latencies,
        cpu_ms_per_job=cpu_s.get("worker", 0.0) * 1000 / max(1, len(arrivals)),
        cores={name: rate(1, wall_s) * used for name, used in cpu_s.items()},
        peak_rss_mb=peak_mb,
        duplicates=results.duplicates,
    )


async def run_throughput(env: BenchEnv, options: ThroughputOptions) -> ScenarioReport:
    report = ScenarioReport(
        "throughput",
        f"throughput: {options.jobs} jobs, {LATENCY_S:g} s provider latency, {PARTITIONS} partitions, "
        f"max_in_flight {options.max_in_flight}",
    )
    with run_in_subprocess(sim_config()) as sim:
        main = await measure(env, sim, "throughput", options.jobs, options.max_in_flight)
        base = await measure(env, sim, "baseline", options.baseline_jobs, PARTITIONS)
    report.metric("received", "results received", f"{main.received}/{main.jobs}")
    report.metric(
        "jobs_per_s_first_to_last", "jobs/s, first result → last", main.first_to_last_per_s, "jobs/s"
    )
    report.metric(
        "jobs_per_s_from_produce", "jobs/s, first produce → last result", main.from_produce_per_s, "jobs/s"
    )
    report.metric("jobs_per_s_steady", "jobs/s, 10th → 90th percentile result", main.steady_per_s, "jobs/s")
    report.metric("first_result_s", "first result after (first produce →)", main.first_result_s, "s")
    report.metric("latency_p50_s", "end-to-end latency p50", percentile(main.latencies_s, 50), "s")
    report.metric("latency_p99_s", "end-to-end latency p99", percentile(main.latencies_s, 99), "s")
    report.metric("cpu_ms_per_job", "worker CPU per job", main.cpu_ms_per_job, "ms")
    report.metric("duplicates", "duplicate results", main.duplicates)
    for name, cores in sorted(main.cores.items()):
        report.metric(f"cores_{name.replace(' ', '_')}", f"CPU used during the run: {name}", cores, "cores")
    report.metric(
        "baseline_jobs_per_s",
        f"baseline (max_in_flight={PARTITIONS}, {base.jobs} jobs): jobs/s from first produce",
        base.from_produce_per_s,
        "jobs/s",
    )
    report.metric(
        "baseline_latency_p50_s", "baseline end-to-end latency p50", percentile(base.latencies_s, 50), "s"
    )
    speedup = main.from_produce_per_s / base.from_produce_per_s if base.from_produce_per_s else 0.0
    if main.received < main.jobs or base.received < base.jobs:
        report.error = (
            f"missing results: {main.received}/{main.jobs} (main), {base.received}/{base.jobs} (baseline)"
        )
    report.check(
        "jobs_per_s",
        "jobs/s from one worker (first produce → last result)",
        main.from_produce_per_s,
        ">=",
        TARGET_JOBS_PER_S,
        "jobs/s",
    )
    report.check("speedup", "speed-up over the per-partition baseline", speedup, ">=", TARGET_SPEEDUP, "x")
    report.check("peak_rss_mb", "worker peak RSS", main.peak_rss_mb, "<", TARGET_RSS_MB, "MB")
    report.notes.append(
        "all jobs are produced at once, so end-to-end latency includes queueing behind earlier jobs; "
        "the bench's own fetch wait (up to 50 ms) is included too"
    )
    return report
