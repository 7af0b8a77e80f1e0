"""Helpers for the end-to-end worker tests: simulators, jobs, and exact reads of whole topics.

Exact reads matter here: "every job id exactly once" can only be checked by reading a
topic to its end, not by stopping after the expected count (a duplicate would be missed).
Reads stop at each partition's high-water mark as the Fetch response reports it, which
Tansu gets right (its `end_offsets()` can be short by a batch; tansu.md, rule 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from qroute.config import Settings
from qroute.kafka import make_admin, make_consumer
from qroute.models import Job, Message
from qroute.sim import FailureKind, FixedLatency, SimConfig, SimModel, SimProvider
from qroute.worker.topics import create_topics

Record: TypeAlias = ConsumerRecord[bytes, bytes]

CHEAP_PRICES = {
    "input_per_m": Decimal("0.10"),
    "cached_input_per_m": Decimal("0.01"),
    "output_per_m": Decimal("0.40"),
}
PREMIUM_PRICES = {key: value * 16 for key, value in CHEAP_PRICES.items()}
"""16x the cheap route, as in the issue's rate-limit scenario."""


def two_routes(
    *, latency_s: float, cheap_rpm: int | None = None, cheap_faults: dict[FailureKind, float] | None = None
) -> SimConfig:
    """A cheap OpenAI-format route and a 16x more expensive Anthropic-format one, same latency."""
    cheap = SimProvider(
        name="cheap",
        family="openai",
        latency=FixedLatency(seconds=latency_s),
        rpm=cheap_rpm,
        failure_rates=cheap_faults or {},
        models=[SimModel(name="small", **CHEAP_PRICES)],
    )
    premium = SimProvider(
        name="premium",
        family="anthropic",
        latency=FixedLatency(seconds=latency_s),
        models=[SimModel(name="large", **PREMIUM_PRICES)],
    )
    return SimConfig(seed=7, providers=[cheap, premium])


def make_jobs(n: int, prefix: str, *, start: int = 0, **fields: Any) -> list[Job]:
    """`n` small summarisation jobs with ids `prefix-<i>`."""
    return [
        Job(
            id=f"{prefix}-{i}",
            batch_id=prefix,
            messages=[Message(role="user", content=f"Summarise report {i} on harbour tides.")],
            params={"max_tokens": 48},
            **fields,
        )
        for i in range(start, start + n)
    ]


def job_ids(values: Iterable[dict[str, Any]]) -> Counter[str]:
    """How many times each job id occurs among decoded results or cost records."""
    return Counter(str(v["job_id"]) for v in values)


def extra_copies(counts: Counter[str]) -> int:
    """Records beyond the first per job id: the duplicates a consumer has to drop."""
    return sum(n - 1 for n in counts.values() if n > 1)


async def _assign_all(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    deadline = time.monotonic() + 10
    while not partitions and time.monotonic() < deadline:
        await consumer._client.force_metadata_update()  # aiokafka has no public call for this
        partitions = consumer.partitions_for_topic(topic)
    assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
    consumer.assign(assigned)
    await consumer.seek_to_beginning()
    return assigned


async def _drain(
    consumer: AIOKafkaConsumer, assigned: list[TopicPartition], timeout_s: float
) -> list[Record]:
    """Records until every partition's position reaches its high-water mark."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            records.extend(batch)
        ends = [consumer.highwater(tp) for tp in assigned]
        positions = [await consumer.position(tp) for tp in assigned]
        if all(end is not None and pos >= end for end, pos in zip(ends, positions, strict=True)):
            return records
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{assigned[0].topic}: not read to its end within {timeout_s}s")


async def read_topic(settings: Settings, topic: str, *, timeout_s: float = 30.0) -> list[Record]:
    """Every record on `topic` up to its current end (no group, no commits)."""
    consumer = make_consumer(settings.kafka, None)
    await consumer.start()
    try:
        return await _drain(consumer, await _assign_all(consumer, topic), timeout_s)
    finally:
        await consumer.stop()


async def read_json(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record on `topic`, decoded from JSON."""
    return [json.loads(r.value) for r in await read_topic(settings, topic)]


async def committed_and_end(settings: Settings, topic: str) -> tuple[dict[int, int | None], dict[int, int]]:
    """The worker group's committed offset and the high-water mark, per partition of `topic`.

    The consumer names the group only to read its offsets: it never subscribes, so it never joins.
    """
    consumer = make_consumer(settings.kafka, settings.worker.group_id)
    await consumer.start()
    try:
        assigned = await _assign_all(consumer, topic)
        await _drain(consumer, assigned, 30.0)
        ends = {tp.partition: consumer.highwater(tp) or 0 for tp in assigned}
        committed = {tp.partition: await consumer.committed(tp) for tp in assigned}
        return committed, ends
    finally:
        await consumer.stop()


class TopicTail:
    """Reads a topic from its start in the background; tests wait on what has arrived so far."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self.ids: Counter[str] = Counter()
        """Records per `job_id` field (dead letters without one count under "None")."""
        self.count = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        consumer = make_consumer(self._settings.kafka, None)
        await consumer.start()
        try:
            await _assign_all(consumer, self._topic)
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for batch in batches.values():
                    self.ids.update(str(json.loads(r.value).get("job_id")) for r in batch)
                    self.count += len(batch)
                if batches:
                    self._changed.set()
        finally:
            await consumer.stop()

    async def wait_until(self, condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
        """Return once `condition()` holds; fail naming `what` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self._task is not None and self._task.done():
                self._task.result()  # the reader failed: raise its error here
                raise AssertionError(f"the reader of {self._topic} stopped")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout_s}s waiting for {what} ({len(self.ids)} ids seen)"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    async def wait_for_ids(self, wanted: Iterable[str], *, timeout_s: float) -> None:
        """Return once every id in `wanted` has at least one record."""
        missing = set(wanted)

        def all_seen() -> bool:
            missing.difference_update(self.ids)
            return not missing

        await self.wait_until(all_seen, timeout_s=timeout_s, what="every job id")

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, settings: Settings, topic: str) -> AsyncIterator[TopicTail]:
        """A tail reading `topic` for the duration of the block."""
        reader = cls(settings, topic)
        reader._task = asyncio.create_task(reader._read())
        try:
            yield reader
        finally:
            reader._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader._task


def with_knobs(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """`settings` with fields of named sections replaced: `with_knobs(s, worker={"max_in_flight": 8})`."""
    update = {name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()}
    return settings.model_copy(update=update)


@contextlib.asynccontextmanager
async def topics_of(settings: Settings) -> AsyncIterator[None]:
    """Create the topics `settings` needs that are missing, and delete those again afterwards.

    For tests whose settings name more topics (extra delay tiers) than the fixture created.
    """
    created = await create_topics(settings)
    try:
        yield
    finally:
        admin = make_admin(settings.kafka)
        with contextlib.suppress(KafkaError):  # clean-up only; must not mask the test's outcome
            await admin.start()
            await admin.delete_topics(created)
        await admin.close()
