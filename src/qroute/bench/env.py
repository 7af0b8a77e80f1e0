"""What every scenario shares: the broker address, a scratch folder, per-run settings and jobs.

Each run gets its own topics and consumer group (`bench.<run>.*`), so runs on one
broker never read each other's records, and a fresh worker process, so no route
state learned in one run helps the next.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qroute.config import KafkaSettings, Settings, TopicSettings, WorkerSettings
from qroute.models import Constraints, Job, Message, Params, utc_now
from qroute.testing import SimEndpoint, sim_routes_settings

SESSION_TIMEOUT_MS = 1500
"""Tansu holds every group join for half the session timeout: keep joins near a second."""

HEARTBEAT_MS = 500

_DOCUMENT = (
    "The tide tables for the northern harbour list two high waters a day, about twelve "
    "hours and twenty-five minutes apart, because the moon crosses the meridian fifty "
    "minutes later each day. Spring tides follow new and full moon; neap tides follow "
    "the quarter moons. Storm surges add to both and are forecast separately."
)


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """The broker every run uses and the folder for worker configs and logs."""

    bootstrap: str
    folder: Path
    broker_pid: int | None = None
    worker_log_level: str = "INFO"
    """The workers' log level: INFO (one JSON line per job) is what production runs."""

    def settings(
        self,
        sim: SimEndpoint,
        run: str,
        *,
        partitions: int = 8,
        worker: dict[str, Any] | None = None,
        routing: dict[str, Any] | None = None,
    ) -> Settings:
        """Settings for one run: its own topics and group, the simulator's routes, nothing else."""
        results = f"bench.{run}.results"
        base = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=self.bootstrap,
                client_id=f"bench-{run}",
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
            ),
            topics=TopicSettings(
                jobs=f"bench.{run}.jobs",
                results=results,
                costs=f"bench.{run}.costs",
                dlq=f"bench.{run}.dlq",
                delay_prefix=f"bench.{run}.delay",
                reply_prefixes=[results],
                partitions=partitions,
                create_missing=True,
            ),
            worker=WorkerSettings.model_validate(
                {"group_id": f"bench-{run}", "drain_timeout_s": 5.0, **(worker or {})}
            ),
        )
        if routing:
            base = base.model_copy(update={"routing": base.routing.model_copy(update=routing)})
        return sim_routes_settings(base, sim)


def process_ids(env: BenchEnv, worker_pid: int, sim_pid: int | None) -> dict[str, int]:
    """The processes of one run by role, for `CpuMeter`: who used the machine's CPU."""
    pids = {"worker": worker_pid, "bench": os.getpid()}
    if sim_pid is not None:
        pids["simulator"] = sim_pid
    if env.broker_pid is not None:
        pids["broker"] = env.broker_pid
    return pids


def run_id(scenario: str) -> str:
    """A name for one run, unique on the broker."""
    return f"{scenario}-{uuid.uuid4().hex[:8]}"


def bench_job(run: str, i: int, *, deadline_s: float | None = None, max_tokens: int = 64) -> Job:
    """Job `i` of a run: a short summarisation prompt; `created_at` is now."""
    now = utc_now()
    deadline = now + timedelta(seconds=deadline_s) if deadline_s is not None else None
    return Job(
        id=f"{run}-{i}",
        created_at=now,
        batch_id=run,
        messages=[Message(role="user", content=f"Summarise document {i}. {_DOCUMENT}")],
        params=Params(max_tokens=max_tokens),
        constraints=Constraints(deadline=deadline),
    )


async def scrape_counters(url: str) -> dict[str, float]:
    """The worker's /metrics, each metric's samples summed over labels (counters end in `_total`)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals
