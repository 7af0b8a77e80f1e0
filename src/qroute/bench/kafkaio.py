"""The bench's side of Kafka: put jobs on the jobs topic, watch results arrive, wait for commits.

The bench is the producer and the consumer of a real deployment: it stamps each
job's `created_at` just before sending it and notes the wall-clock time each
result reaches it, so end-to-end latency is measured the way a user sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiokafka import TopicPartition

from qroute.codec import encode
from qroute.config import Settings
from qroute.kafka import make_admin, make_consumer, make_producer
from qroute.models import Job

FETCH_WAIT_MS = 50
"""How long the bench's fetches wait on the broker for new records: short, because the
wait is added to every measured latency."""


@dataclass(frozen=True, slots=True)
class Produced:
    """What `produce` sent: when, and each job's `created_at` (epoch seconds) by id."""

    first_at: float
    acked_at: float
    created: dict[str, float]


async def produce(settings: Settings, count: int, make_job: Callable[[int], Job]) -> Produced:
    """Build and send `count` jobs (each created right before it is sent); return once all are acked."""
    producer = make_producer(settings.kafka)
    await producer.start()
    created: dict[str, float] = {}
    try:
        first_at = time.time()
        pending = []
        for i in range(count):
            job = make_job(i)
            created[job.id] = job.created_at.timestamp()
            pending.append(await producer.send(settings.topics.jobs, encode(job), key=job.id.encode()))
        await asyncio.gather(*pending)
        return Produced(first_at=first_at, acked_at=time.time(), created=created)
    finally:
        await producer.stop()


@dataclass(slots=True)
class Received:
    """A record as it reached the bench."""

    at: float
    data: dict[str, Any]


@dataclass(slots=True)
class _Seen:
    first: dict[str, Received] = field(default_factory=dict)
    duplicates: int = 0


class TopicReader:
    """Reads a topic of qroute JSON records (keyed by `job_id`) from the start, in the background.

    The first record per job id is kept with its arrival time; later ones are only
    counted as duplicates. Use `async with`, and `wait_for(n)`.
    """

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._seen = _Seen()
        self._task: asyncio.Task[None] | None = None
        self._grew = asyncio.Event()

    @property
    def records(self) -> dict[str, Received]:
        return self._seen.first

    @property
    def duplicates(self) -> int:
        return self._seen.duplicates

    async def __aenter__(self) -> Self:
        # group_id=None with a subscription: aiokafka assigns every partition, no commits.
        consumer = make_consumer(self._settings.kafka, None, [self._topic], fetch_max_wait_ms=FETCH_WAIT_MS)
        await consumer.start()
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def _read(self, consumer: Any) -> None:
        seen = self._seen
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        if record.value is None:
                            continue
                        data = json.loads(record.value)
                        job_id = data.get("job_id")
                        if job_id in seen.first:
                            seen.duplicates += 1
                        else:
                            seen.first[job_id] = Received(now, data)
                if batches:
                    self._grew.set()
        finally:
            await consumer.stop()

    async def wait_for(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` distinct job ids arrived; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while len(self._seen.first) < count:
            if self._task is not None and self._task.done():
                self._task.result()  # the reader died: raise its error here
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._grew.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation (Ctrl-C)
            # when the awaited event fires at the same moment (python/cpython#86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 1.0)):
                    await self._grew.wait()
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def wait_committed(settings: Settings, total: int, timeout_s: float) -> bool:
    """Wait until the worker group has committed `total` records of the jobs topic; False on timeout.

    The committed offsets of a partition count its finished records, so their sum
    reaching `total` means every produced job is done and committed.
    """
    # Tansu needs explicit partitions here (it answers "all partitions" with a body aiokafka cannot read).
    partitions = [TopicPartition(settings.topics.jobs, p) for p in range(settings.topics.partitions)]
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            offsets = await admin.list_consumer_group_offsets(settings.worker.group_id, partitions=partitions)
            if sum(max(0, meta.offset) for meta in offsets.values()) >= total:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
