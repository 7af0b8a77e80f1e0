"""The composition root: settings in, a running worker out.

Everything a `qroute worker` process needs is built here, once, in one place:
catalog and active routes, API keys, route state, the shared HTTP client, the
attempt loop, Kafka clients, metrics and the ops HTTP endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import structlog
from prometheus_client import ProcessCollector

from qroute.catalog.load import active_routes, build_catalog, resolve_api_key
from qroute.catalog.types import Catalog, Route
from qroute.config import Settings, validate_runtime
from qroute.execute import CatalogInfo, Executor
from qroute.observability.http import OpsServer
from qroute.observability.metrics import Metrics
from qroute.providers.http import HttpClient, make_http_client
from qroute.resilience.state import RouteStateBook
from qroute.worker.intake import known_models
from qroute.worker.loop import Worker
from qroute.worker.run import build_worker as build_kafka_worker
from qroute.worker.topics import ensure_topics

log = structlog.get_logger("qroute.runtime")

CIRCUIT_REPORT_INTERVAL_S = 5.0


@dataclass
class Engine:
    """The routing half of a worker: everything between a decoded job and its result."""

    settings: Settings
    catalog: Catalog
    routes: list[Route]
    state: RouteStateBook
    client: HttpClient
    executor: Executor
    metrics: Metrics

    async def aclose(self) -> None:
        await self.client.aclose()


def build_engine(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    metrics: Metrics | None = None,
    allow_defer: bool = True,
) -> Engine:
    """Validate the configuration and build the attempt loop (raises ConfigError on a bad config)."""
    environ = os.environ if env is None else env
    catalog = build_catalog(settings, env=environ)
    validate_runtime(settings, catalog, environ)
    routes = active_routes(catalog, env=environ)
    keys = {name: resolve_api_key(spec, environ) for name, spec in catalog.providers.items()}
    metrics = metrics or Metrics()
    state = RouteStateBook(settings.routing, catalog.providers)
    client = make_http_client(max_connections=max(100, settings.worker.max_in_flight * 2))
    executor = Executor(
        routes=routes,
        state=state,
        client=client,
        api_keys=keys,
        settings=settings.routing,
        catalog=CatalogInfo(source=catalog.source, version=catalog.version),
        metrics=metrics,
        allow_defer=allow_defer,
    )
    return Engine(settings, catalog, routes, state, client, executor, metrics)


def build_worker(settings: Settings, engine: Engine) -> Worker:
    """A Kafka worker whose processor is the engine's attempt loop."""
    return build_kafka_worker(
        settings,
        engine.executor,
        known_model=known_models(engine.catalog),
        metrics=engine.metrics,
        price_source=engine.catalog.source,
        price_version=engine.catalog.version,
        on_share=engine.state.set_share,
    )


async def _report_circuits(engine: Engine) -> None:
    while True:
        await asyncio.sleep(CIRCUIT_REPORT_INTERVAL_S)
        engine.metrics.set_circuits(engine.state.circuit_states(time.time()))


@contextlib.asynccontextmanager
async def _ops_server(settings: Settings, engine: Engine, worker: Worker) -> AsyncIterator[OpsServer | None]:
    if settings.worker.metrics_port == 0:
        yield None
        return
    server = OpsServer(
        engine.metrics.registry,
        host=settings.worker.metrics_host,
        port=settings.worker.metrics_port,
        ready=lambda: worker.phase == "running" and bool(worker.assigned),
        live=lambda: worker.phase != "stopped",
        detail=lambda: {
            "phase": worker.phase,
            "assigned": len(worker.assigned),
            "in_flight": worker.in_flight,
        },
    )
    async with server:
        log.info("ops_server_listening", url=server.url)
        yield server


GC_THRESHOLDS = (2_000, 10, 10)
"""Collector thresholds for the worker process (CPython's defaults are 700, 10, 10).

Each job allocates thousands of short-lived objects, so the collector runs
every few jobs, scanning the live objects of every job in flight; a job makes
almost no cyclic garbage (22 unreachable objects in 2,000 jobs, DEBUG_SAVEALL),
so those scans find nothing. Measured with a gc.callbacks timer over a
60,000-job `qroute bench --scenario cpu --jobs 20000` (start-up objects frozen):

| thresholds        | GC CPU per job | worker peak RSS |
|-------------------|----------------|-----------------|
| 700, 10, 10       | 0.12 ms        | 130 MB          |
| 2,000, 10, 10     | 0.08 ms        | 147 MB          |
| 10,000, 20, 100   | 0.04 ms        | 249 MB          |

Peak memory rises with the threshold for reasons not yet pinned down (not
garbage), so the middle row is the compromise."""


def tune_gc() -> None:
    """Freeze what start-up built (modules, settings) and collect young objects less often.

    Process-wide, so the `qroute worker` command calls it, not `run_worker`
    (an embedding application keeps its own collector settings)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_worker(
    settings: Settings, *, env: Mapping[str, str] | None = None, install_signals: bool = True
) -> None:
    """Run one worker process until SIGTERM/SIGINT, then drain and leave the group."""
    metrics = Metrics()
    ProcessCollector(registry=metrics.registry)  # process CPU and memory, read by `qroute bench`
    engine = build_engine(settings, env=env, metrics=metrics)
    try:
        await ensure_topics(settings)
        worker = build_worker(settings, engine)
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, worker.request_stop)
        log.info(
            "worker_starting",
            routes=len(engine.routes),
            group=settings.worker.group_id,
            jobs_topic=settings.topics.jobs,
            max_in_flight=settings.worker.max_in_flight,
        )
        reporter = asyncio.create_task(_report_circuits(engine))
        try:
            async with _ops_server(settings, engine, worker):
                await worker.run()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
    finally:
        await engine.aclose()
