"""Everything the demo runs besides itself: broker, simulator, topics, worker config and workers.

`demo_world()` starts them in that order and stops them in reverse, whatever
happens in between (an error, Ctrl-C, SIGTERM): workers first, so they drain
and commit while the broker is still there, then the simulator, then the broker.

A Ctrl-C typed in the terminal also reaches the broker and the simulator, which
share the terminal's process group and stop at once (both handle SIGINT
themselves); the workers, in their own sessions, then cannot commit and are
killed after a short grace. Either way nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from qroute.catalog.load import active_routes, build_catalog, key_hint
from qroute.config import KafkaSettings, Settings, TopicSettings, load_settings
from qroute.demo.processes import WorkerProcess, spawn_worker, stop_workers, wait_ready
from qroute.embedded import EmbeddedBroker
from qroute.embedded.ports import free_port
from qroute.sim import RemoteSim, SimProvider, default_config, run_in_subprocess
from qroute.testing import sim_routes_settings
from qroute.tomlfile import dumps
from qroute.worker.topics import create_topics

Say = Callable[[str], None]

DELAY_TIERS_S = [5, 15, 30, 60]
"""Finer than the production default (5, 30, 300): the demo's deadlines are a minute away."""
PARTITIONS = 4
"""Jobs-topic partitions: two workers get two each."""
DRAIN_TIMEOUT_S = 3.0
"""Worker drain on stop; short, because by then every job has its result."""
STOP_SLACK_S = 4.0
"""Beyond the drain, time a worker gets to commit and leave the group before it is killed."""
WORKER_READY_TIMEOUT_S = 60.0
SIM_READ_TIMEOUT_S = 10.0
"""Simulated answers take about a second; a hung connection is given up after this."""


class DemoError(RuntimeError):
    """The demo cannot run here; the message says why and what to do."""


@dataclass
class World:
    """The running pieces: settings every client uses, the simulator (if any) and the workers."""

    settings: Settings
    sim: RemoteSim | None
    broker: str
    config_path: Path
    workers: list[WorkerProcess] = field(default_factory=list)


def demo_topics(prefix: str) -> TopicSettings:
    """The standard topic names behind `prefix`, with demo-sized delay tiers and partitions."""
    return TopicSettings(
        jobs=f"{prefix}qroute.jobs",
        results=f"{prefix}qroute.results",
        costs=f"{prefix}qroute.costs",
        dlq=f"{prefix}qroute.dlq",
        delay_prefix=f"{prefix}qroute.jobs.delay",
        delay_tiers_s=DELAY_TIERS_S,
        reply_prefixes=[f"{prefix}qroute.results"],
        partitions=PARTITIONS,
    )


def demo_settings(base: Settings, *, bootstrap: str, prefix: str, run_id: str, embedded: bool) -> Settings:
    """`base` pointed at the demo's broker and topics, with worker knobs sized for one laptop.

    Tansu holds every group join for half the session timeout, so the embedded broker
    gets a short one; a real Kafka refuses sessions under 6 s by default.
    """
    session_ms = 3_000 if embedded else 6_000
    kafka = KafkaSettings(
        **{
            **base.kafka.model_dump(),
            "bootstrap_servers": bootstrap,
            "client_id": "qroute-demo",
            "session_timeout_ms": session_ms,
            "heartbeat_interval_ms": session_ms // 3,
        }
    )
    worker = base.worker.model_copy(
        update={
            "group_id": f"qroute-demo-{run_id}",
            "drain_timeout_s": DRAIN_TIMEOUT_S,
            "commit_interval_s": 0.5,
            "metrics_host": "127.0.0.1",
            "metrics_port": 0,
        }
    )
    return base.model_copy(update={"kafka": kafka, "topics": demo_topics(prefix), "worker": worker})


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The workers' environment: ours without QROUTE_* (the generated config already holds them)."""
    return {k: v for k, v in environ.items() if not k.startswith("QROUTE_")}


def real_settings(config: Path | None) -> Settings:
    """The user's own configuration; at least one provider must have its API key."""
    settings = load_settings(config)
    catalog = build_catalog(settings)
    if not active_routes(catalog):
        hints = sorted({key_hint(p) for p in catalog.providers.values() if key_hint(p)})
        raise DemoError(
            "--real needs at least one provider with an API key, and none has one here: "
            + ("; ".join(hints) or "configure a provider in qroute.toml")
            + ". Or run `qroute demo` without --real to use the simulated providers."
        )
    return settings


@contextlib.contextmanager
def _broker(bootstrap: str | None, say: Say) -> Iterator[str]:
    if bootstrap:
        say(f"Kafka: using the broker at {bootstrap}")
        yield bootstrap
        return
    broker = EmbeddedBroker()
    address = broker.start()
    say(f"Kafka: started the embedded broker (Tansu, memory only) on {address}, pid {broker.pid}")
    try:
        yield address
    finally:
        broker.stop()


@contextlib.contextmanager
def _simulator(say: Say) -> Iterator[RemoteSim]:
    config = default_config()
    with run_in_subprocess(config) as sim:
        say(
            f"Providers: SIMULATED by a local HTTP server at {sim.url}, pid {sim.pid} (no API keys, no real LLMs)"
        )
        for provider in config.providers:
            say(escape(f"  {provider.name:<8} {provider.family:<9} {describe(provider)}"))
        yield sim


def describe(provider: SimProvider) -> str:
    """One line about a simulated provider: models, limits, faults."""
    parts = [", ".join(m.name for m in provider.models)]
    parts.append(f"rpm {provider.rpm}" if provider.rpm else "no rate limit")
    if provider.failure_rates:
        parts.append("faults " + " ".join(f"{k} {v:.0%}" for k, v in provider.failure_rates.items()))
    parts.extend(f"outage {o.start_s:g}-{o.end_s:g} s after start" for o in provider.outages)
    return " · ".join(parts)


def write_worker_config(settings: Settings, path: Path) -> Path:
    """The generated `qroute worker --config` file (also handy to reuse by hand)."""
    header = "# Generated by `qroute demo` for its workers; `qroute worker --config THIS` runs one more.\n"
    path.write_text(header + dumps(settings.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def demo_world(
    *,
    run_id: str,
    out_dir: Path,
    workers: int,
    real: bool,
    config: Path | None,
    bootstrap: str | None,
    topic_prefix: str | None,
    say: Say,
) -> AsyncIterator[World]:
    """Start broker, simulator (unless `real`), topics and `workers` worker processes; stop all after."""
    base = real_settings(config) if real else Settings()
    prefix = topic_prefix if topic_prefix is not None else ("" if bootstrap is None else f"{run_id}.")
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(_broker(bootstrap, say))
        settings = demo_settings(
            base, bootstrap=address, prefix=prefix, run_id=run_id, embedded=bootstrap is None
        )
        sim: RemoteSim | None = None
        if not real:
            sim = stack.enter_context(_simulator(say))
            # No rpm/tpm are configured, as on a fresh install: qroute learns each account's
            # limits from the rate-limit headers and the 429s the providers send.
            timeouts = {"read_timeout_s": SIM_READ_TIMEOUT_S, "total_timeout_s": 2 * SIM_READ_TIMEOUT_S}
            settings = sim_routes_settings(
                settings, sim, provider_overrides={p.name: timeouts for p in sim.config.providers}
            )
        await create_topics(settings)
        say(
            f"Topics: {settings.topics.jobs} → {settings.topics.results}, {settings.topics.costs}, {settings.topics.dlq}"
        )
        world = World(settings, sim, address, write_worker_config(settings, out_dir / "worker.toml"))
        env = worker_environment(os.environ)
        try:
            for n in range(1, workers + 1):
                world.workers.append(
                    spawn_worker(
                        f"worker-{n}",
                        config=world.config_path,
                        log_path=out_dir / f"worker-{n}.log",
                        health_port=free_port("127.0.0.1"),
                        env=env,
                    )
                )
            pids = ", ".join(str(w.pid) for w in world.workers)
            say(
                f"Workers: {workers} × `qroute worker --config {world.config_path}` (pids {pids}); joining the group…"
            )
            await asyncio.to_thread(wait_ready, world.workers, WORKER_READY_TIMEOUT_S)
            yield world
        finally:
            stop_workers(world.workers, grace_s=DRAIN_TIMEOUT_S + STOP_SLACK_S)
