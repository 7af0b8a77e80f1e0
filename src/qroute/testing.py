"""Public test helpers: run qroute against the simulator and a broker in your own tests.

- `sim_routes_settings(settings, sim)`: settings whose catalog is exactly the
  simulator's providers and models, with the simulator's prices, so cost records
  reconcile with the simulator's ledger;
- `worker_in_process(settings)`: a real worker (attempt loop + Kafka loop) in
  the current event loop, stopped gracefully on exit;
- `produce_jobs` / `consume_json`: put jobs on a topic, read results back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from aiokafka import TopicPartition

from qroute.catalog.types import ModelSpec, ProviderSpec
from qroute.codec import encode
from qroute.config import Settings
from qroute.kafka import make_consumer, make_producer
from qroute.models import Job
from qroute.runtime import Engine, build_engine, build_worker
from qroute.sim.config import SimConfig
from qroute.worker.loop import Worker
from qroute.worker.topics import ensure_topics

SIM_PRICE_DATE = date(2026, 11, 22)


class SimEndpoint(Protocol):
    """A running simulator: in process (`SimServer`) or in a subprocess (`RemoteSim`)."""

    config: SimConfig

    def base_url(self, provider: str) -> str: ...


def tier_for_output_price(output_per_m: Decimal) -> int:
    """A tier from the output price: the simulator has no tiers of its own."""
    if output_per_m < 1:
        return 1
    if output_per_m < 5:
        return 2
    if output_per_m < 20:
        return 3
    return 4


def sim_routes_settings(
    settings: Settings,
    sim: SimEndpoint,
    *,
    rpm: Mapping[str, int] | None = None,
    tpm: Mapping[str, int] | None = None,
    provider_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """`settings` with the shipped catalog replaced by the simulator's providers and prices.

    `rpm`/`tpm` tell qroute the account limits it should pace to (as an operator
    would configure them); they do not change the simulator.
    """
    providers: dict[str, ProviderSpec] = {}
    models: list[ModelSpec] = []
    for sp in sim.config.providers:
        fields: dict[str, Any] = {
            "name": sp.name,
            "family": sp.family,
            "base_url": sim.base_url(sp.name),
            "enabled": True,
            "rpm": (rpm or {}).get(sp.name),
            "tpm": (tpm or {}).get(sp.name),
            "read_timeout_s": 30.0,
            "total_timeout_s": 60.0,
        }
        fields.update((provider_overrides or {}).get(sp.name, {}))
        providers[sp.name] = ProviderSpec(**fields)
        for sm in sp.models:
            models.append(
                ModelSpec(
                    provider=sp.name,
                    model=sm.name,
                    tier=tier_for_output_price(sm.output_per_m),
                    input_per_m=sm.input_per_m,
                    cached_input_per_m=sm.cached_input_per_m,
                    output_per_m=sm.output_per_m,
                    context_window=sm.context_window,
                    max_output_tokens=min(sm.context_window, 32_768),
                    capabilities=frozenset({"json_mode", "tools"}),
                    price_source="qroute simulator price list",
                    price_date=SIM_PRICE_DATE,
                )
            )
    return settings.model_copy(
        update={"use_default_catalog": False, "providers": providers, "models": models}
    )


@dataclass
class RunningWorker:
    """A worker running in the current event loop."""

    worker: Worker
    engine: Engine
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def worker_in_process(
    settings: Settings, *, env: Mapping[str, str] | None = None, allow_defer: bool = True
) -> AsyncIterator[RunningWorker]:
    """Run a real worker until the block ends, then stop it gracefully (drain, commit, leave)."""
    engine = build_engine(settings, env=env or {}, allow_defer=allow_defer)
    try:
        await ensure_topics(settings)
        worker = build_worker(settings, engine)
        task = asyncio.create_task(worker.run())
        try:
            yield RunningWorker(worker, engine, task)
        finally:
            await worker.stop()
            await task
    finally:
        await engine.aclose()


async def produce_jobs(settings: Settings, jobs: Iterable[Job], *, topic: str | None = None) -> int:
    """Publish jobs (key = job id) and wait for every ack; returns how many were sent."""
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        sends = [
            await producer.send(topic or settings.topics.jobs, encode(job), key=job.id.encode())
            for job in jobs
        ]
        await asyncio.gather(*sends)
        return len(sends)
    finally:
        await producer.stop()


async def consume_json(
    settings: Settings, topic: str, count: int, *, timeout_s: float = 60.0
) -> list[dict[str, Any]]:
    """Read `count` JSON records from the start of `topic` (no group, no commits)."""
    consumer = make_consumer(settings.kafka, None)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + 10
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # aiokafka has no public call for this
            partitions = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions or ())])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                out.extend(json.loads(r.value) for r in records if r.value is not None)
        return out
    finally:
        await consumer.stop()
