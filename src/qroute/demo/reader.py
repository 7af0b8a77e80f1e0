"""Read whole topics from the first record, without a consumer group, and know when the end is reached.

The end of a partition is its high-water mark as reported by a Fetch response,
not `end_offsets()`: the embedded broker answers ListOffsets up to a batch
early (see the Tansu notes), while every Fetch answer carries the exact mark.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from qroute.config import KafkaSettings
from qroute.kafka import make_consumer

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

FETCH_WAIT_MS = 100
"""Longest time the broker holds an empty fetch: keeps a reader of idle topics responsive."""


class TopicReader:
    """Every partition of some topics, read from the start. Use `async with TopicReader(...)`."""

    def __init__(
        self, kafka: KafkaSettings, topics: Sequence[str], *, metadata_timeout_s: float = 10.0
    ) -> None:
        self._kafka = kafka
        self._topics = list(topics)
        self._metadata_timeout_s = metadata_timeout_s
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        consumer = make_consumer(self._kafka, None, fetch_max_wait_ms=FETCH_WAIT_MS)
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """All partitions of the topics; the topics must exist (asking for all topics creates none)."""
        deadline = time.monotonic() + self._metadata_timeout_s
        while True:
            existing = await consumer.topics()
            missing = [t for t in self._topics if t not in existing]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise LookupError(f"topics not found on the broker: {', '.join(missing)}")
            await asyncio.sleep(0.1)
        out: list[TopicPartition] = []
        for topic in self._topics:
            out.extend(TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ()))
        return out

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("TopicReader is not open: use `async with`")
        return self._consumer

    async def poll(self, timeout_ms: int = 500) -> list[Record]:
        """The next records of any partition (none if nothing arrives within `timeout_ms`)."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        return [record for batch in batches.values() for record in batch]

    async def caught_up(self) -> bool:
        """Whether every partition has been read up to the high-water mark of the last fetch."""
        consumer = self.consumer
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None or await consumer.position(tp) < end:
                return False
        return True

    async def read_all(self, timeout_s: float = 30.0) -> list[Record]:
        """Everything in the topics now: poll until every partition reached its end."""
        deadline = time.monotonic() + timeout_s
        records: list[Record] = []
        while True:
            records.extend(await self.poll(FETCH_WAIT_MS))
            if await self.caught_up():
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {', '.join(self._topics)} to the end in {timeout_s:g} s")
