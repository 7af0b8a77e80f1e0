"""Run the chosen scenarios on one embedded broker and collect their reports.

The broker runs for the whole bench; each scenario starts and stops its own
simulator and worker processes. A scenario that fails is reported as failed and
the next one still runs; Ctrl-C stops everything started so far.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from qroute.bench.env import BenchEnv
from qroute.bench.report import ScenarioReport
from qroute.bench.scenarios.cpu import CpuOptions, run_cpu
from qroute.bench.scenarios.ratelimit import RateLimitOptions, run_ratelimit
from qroute.bench.scenarios.throughput import ThroughputOptions, run_throughput
from qroute.embedded import EmbeddedBroker

ScenarioName = Literal["cpu", "throughput", "ratelimit"]
SCENARIOS: tuple[ScenarioName, ...] = ("cpu", "throughput", "ratelimit")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Which scenarios to run and how big; `jobs` overrides each scenario's main job count."""

    scenarios: Sequence[ScenarioName] = SCENARIOS
    jobs: int | None = None
    workdir: Path | None = None
    worker_log_level: str = "INFO"


def _scenario(name: ScenarioName, jobs: int | None) -> Callable[[BenchEnv], Awaitable[ScenarioReport]]:
    if name == "cpu":
        cpu = CpuOptions() if jobs is None else CpuOptions(jobs=jobs, warmup=min(300, jobs))
        return lambda env: run_cpu(env, cpu)
    if name == "throughput":
        tp = ThroughputOptions() if jobs is None else ThroughputOptions(jobs=jobs)
        return lambda env: run_throughput(env, tp)
    rl = RateLimitOptions() if jobs is None else RateLimitOptions(jobs=jobs)
    return lambda env: run_ratelimit(env, rl)


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="qroute-bench-") as tmp:
        yield Path(tmp)


async def run_bench(options: BenchOptions, progress: Progress) -> list[ScenarioReport]:
    reports: list[ScenarioReport] = []
    with _workdir(options.workdir) as folder, EmbeddedBroker() as broker:
        env = BenchEnv(
            bootstrap=broker.bootstrap,
            folder=folder,
            broker_pid=broker.pid,
            worker_log_level=options.worker_log_level,
        )
        progress(f"embedded broker on {broker.bootstrap}; worker configs and logs in {folder}")
        for name in options.scenarios:
            progress(f"scenario {name}: running")
            try:
                report = await _scenario(name, options.jobs)(env)
            except Exception as exc:  # one broken scenario must not hide the others' numbers
                report = ScenarioReport(name, name, error=f"{type(exc).__name__}: {exc}")
            reports.append(report)
            progress(f"scenario {name}: {'PASS' if report.passed else 'FAIL'}")
    return reports


def environment() -> dict[str, Any]:
    """Where the numbers were measured: they mean little without the machine."""
    return {
        "qroute": version("qroute"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
