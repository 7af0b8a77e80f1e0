"""Scenario `cpu`: the worker's CPU cost per job when providers answer instantly.

With zero provider latency the worker does nothing but its own work for each job:
consume, decode, plan, one HTTP call, publish result and cost record (acks=all)
and commit. The worker's CPU seconds (all threads, from /proc) are read before a
batch is produced and after its last offset is committed; a warm-up batch comes
first, so imports, connection set-up and first-call costs are not counted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from qroute.bench.env import BenchEnv, bench_job, run_id
from qroute.bench.kafkaio import TopicReader, produce, wait_committed
from qroute.bench.procfs import CpuMeter
from qroute.bench.report import ScenarioReport
from qroute.bench.stats import median, rate
from qroute.bench.workerproc import WorkerProcess
from qroute.models import Job
from qroute.sim import FixedLatency, SimConfig, SimModel, SimProvider, run_in_subprocess
from qroute.worker.topics import create_topics

TARGET_MS_PER_JOB = 1.0
BATCH_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class CpuOptions:
    jobs: int = 3000
    runs: int = 3
    warmup: int = 300


def sim_config() -> SimConfig:
    return SimConfig(
        seed=1,
        providers=[
            SimProvider(
                name="instant",
                family="openai",
                latency=FixedLatency(seconds=0.0),
                models=[
                    SimModel(
                        name="small", input_per_m="0.15", cached_input_per_m="0.075", output_per_m="0.60"
                    )
                ],
            )
        ],
    )


def _numbered(run: str, offset: int, i: int) -> Job:
    """Job `offset + i`: batches after the first continue the numbering, so ids stay unique."""
    return bench_job(run, offset + i)


async def run_cpu(env: BenchEnv, options: CpuOptions) -> ScenarioReport:
    report = ScenarioReport(
        "cpu", f"cpu: worker CPU per job, zero provider latency ({options.jobs} jobs x {options.runs})"
    )
    run = run_id("cpu")
    with run_in_subprocess(sim_config()) as sim:
        settings = env.settings(sim, run)
        await create_topics(settings)
        async with (
            TopicReader(settings, settings.topics.results) as results,
            WorkerProcess(settings, env.folder, name=run, log_level=env.worker_log_level) as worker,
        ):
            report.metric("ready_s", "worker ready after", await worker.wait_ready(), "s")
            produced = 0
            per_job_ms: list[float] = []
            rates: list[float] = []
            others: list[float] = []
            for n, batch in enumerate([options.warmup] + [options.jobs] * options.runs):
                meter = CpuMeter({"worker": worker.pid})
                sent = await produce(settings, batch, functools.partial(_numbered, run, produced))
                produced += batch
                if not await results.wait_for(produced, BATCH_TIMEOUT_S):
                    report.error = (
                        f"batch {n}: {len(results.records)}/{produced} results after {BATCH_TIMEOUT_S:g}s"
                    )
                    break
                if not await wait_committed(settings, produced, 30.0):
                    report.error = f"batch {n}: offsets not all committed 30 s after the last result"
                    break
                used = meter.used()
                cpu = used.get("worker", 0.0)
                if n == 0:
                    continue  # warm-up
                last = max(results.records[job_id].at for job_id in sent.created)
                others.append(rate(1, last - sent.first_at) * meter.others(used))
                per_job_ms.append(cpu * 1000 / batch)
                rates.append(rate(batch, last - sent.first_at))
                report.metric(f"cpu_ms_per_job_run{n}", f"run {n}: CPU per job", cpu * 1000 / batch, "ms")
            peak = worker.peak_rss_bytes()
    if per_job_ms:
        report.metric("jobs_per_s_median", "jobs/s (produce → last result), median", median(rates), "jobs/s")
        report.metric("peak_rss_mb", "worker peak RSS", peak / 2**20, "MB")
        report.metric("duplicates", "duplicate results", results.duplicates)
        report.metric(
            "cores_other_processes", "CPU used meanwhile by other processes (median)", median(others), "cores"
        )
        report.check(
            "cpu_ms_per_job",
            "CPU per job (median of runs)",
            median(per_job_ms),
            "<=",
            TARGET_MS_PER_JOB,
            "ms",
        )
    return report
