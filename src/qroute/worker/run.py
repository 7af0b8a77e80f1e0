"""Entry points: build a worker from settings, or run one until SIGTERM.

`qroute worker` calls `run_worker`; tests and embedders that want the worker in
their own event loop call `build_worker` and drive `run()` / `stop()` themselves.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from qroute.config import Settings
from qroute.kafka import make_consumer, make_producer
from qroute.worker.handler import EMIT_GRACE_S
from qroute.worker.loop import Worker
from qroute.worker.observe import WorkerCounters
from qroute.worker.processing import Processor
from qroute.worker.topics import ensure_topics


def rebalance_timeout_ms(settings: Settings, revoke_timeout_s: float) -> int:
    """How long the group waits for this member to rejoin: room to finish revoked jobs, then commit.

    The member spends up to `revoke_timeout_s` + the publishing grace inside
    on_partitions_revoked before it rejoins; a shorter rebalance timeout would
    get it thrown out of the group mid-drain (aiokafka's default is the session timeout).
    """
    needed_ms = round((revoke_timeout_s + EMIT_GRACE_S + 5.0) * 1000)
    return max(settings.kafka.session_timeout_ms, needed_ms)


def build_worker(settings: Settings, processor: Processor, **options: Any) -> Worker:
    """A `Worker` with new, unstarted clients from `settings` (call inside the event loop).

    `options` go to `Worker` (e.g. `known_model`, `metrics`, `revoke_timeout_s`).
    """
    revoke_timeout_s = options.get("revoke_timeout_s") or settings.worker.drain_timeout_s
    consumer = make_consumer(
        settings.kafka,
        settings.worker.group_id,
        rebalance_timeout_ms=rebalance_timeout_ms(settings, revoke_timeout_s),
    )
    producer = make_producer(settings.kafka)
    return Worker.from_settings(
        settings, consumer=consumer, producer=producer, processor=processor, **options
    )


async def run_worker(
    settings: Settings, processor: Processor, *, handle_signals: bool = True, **options: Any
) -> WorkerCounters:
    """Check (or create) the topics, then consume until SIGTERM/SIGINT; returns the final counters.

    A signal starts a graceful stop: nothing new is taken, in-flight jobs get
    `worker.drain_timeout_s` to finish, offsets are committed, the member leaves
    the group. Size Kubernetes' terminationGracePeriodSeconds above the drain timeout.
    """
    await ensure_topics(settings)
    worker = build_worker(settings, processor, **options)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, worker.request_stop)
    try:
        await worker.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return worker.counters
