"""Read every partition of one topic without a consumer group: from the start, or from "now".

Used by the client's reply subscription and by `qroute results` / `qroute costs`.

Where the log ends is learnt from a Fetch response (`highwater()`), never from
ListOffsets (`end_offsets()`, `seek_to_end()`, `auto_offset_reset="latest"`): the
embedded broker (Tansu) answers ListOffsets with the base offset of its newest
batch + 1, which is short by up to one batch (see docs/producing.md). So:

- "beginning" reads from the first offset; `caught_up()` turns true once every
  partition has been read up to the high-water mark seen when the tail opened;
- "now" seeks to `end_offsets()` (possibly a batch early, never late), learns the
  exact high-water mark from the first fetch and drops every record below it. A
  record counts as new when it was written after `open()` returned.

No group means no join delay (Tansu holds every JoinGroup for half a session) and
no commits; a partition added later is read from its first record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Literal, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from qroute.client.errors import TopicMissing
from qroute.config import KafkaSettings
from qroute.kafka import make_consumer

Start = Literal["beginning", "now"]
"""Where a tail starts: the first record of each partition, or the records written after it opened."""

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

FETCH_WAIT_MS = 100
"""Longest time the broker holds an empty fetch; short so opening a tail on an idle topic is quick."""


class TopicTail:
    """An open, positioned reader of one topic. Create it with `TopicTail.open`."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self.topic = topic
        self._floor: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        self._pending: list[Record] = []

    @classmethod
    async def open(
        cls, kafka: KafkaSettings, topic: str, *, start: Start, timeout_s: float | None = None
    ) -> TopicTail:
        """Connect, check the topic exists, position every partition; raises `TopicMissing`."""
        consumer = make_consumer(kafka, None, fetch_max_wait_ms=FETCH_WAIT_MS)
        tail = cls(consumer, topic)
        await consumer.start()
        try:
            await tail._position(start, kafka.request_timeout_ms / 1000 if timeout_s is None else timeout_s)
        except BaseException:
            await consumer.stop()
            raise
        return tail

    async def _position(self, start: Start, timeout_s: float) -> None:
        consumer = self._consumer
        # A metadata request for one named topic makes Tansu (and Kafka with auto-create on) create
        # it; asking for all topics does not, so existence is checked before subscribing.
        if self.topic not in await consumer.topics():
            raise TopicMissing(self.topic)
        consumer.subscribe([self.topic])
        deadline = time.monotonic() + timeout_s
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no partitions of {self.topic!r} assigned within {timeout_s:g} s")
            await asyncio.sleep(0.01)
        partitions = sorted(consumer.assignment())
        if start == "beginning":
            await consumer.seek_to_beginning(*partitions)
        else:
            # end_offsets may be a batch early on Tansu; the floor below fixes that up exactly.
            for tp, offset in (await consumer.end_offsets(partitions)).items():
                consumer.seek(tp, offset)
        records = await self._learn_ends(partitions, deadline)
        if start == "now":
            self._floor = dict(self._ends)
        else:
            self._pending = records

    async def _learn_ends(self, partitions: Iterable[TopicPartition], deadline: float) -> list[Record]:
        """Fetch until every partition reported its high-water mark; return what was fetched meanwhile."""
        records: list[Record] = []
        unknown = list(partitions)
        while unknown:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch answer for {self.topic!r} partitions {unknown}")
            batches = await self._consumer.getmany(timeout_ms=FETCH_WAIT_MS)
            for batch in batches.values():
                records.extend(batch)
            unknown = [tp for tp in unknown if self._consumer.highwater(tp) is None]
        for tp in self._consumer.assignment():
            self._ends[tp] = self._consumer.highwater(tp) or 0
        return records

    async def read(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        """The next records (possibly none within `timeout_ms`), partitions interleaved."""
        if self._pending:
            records, self._pending = self._pending, []
        else:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
            records = [record for batch in batches.values() for record in batch]
        if not self._floor:
            return records
        return [r for r in records if r.offset >= self._floor.get(TopicPartition(r.topic, r.partition), 0)]

    async def caught_up(self) -> bool:
        """Whether every record that existed when the tail opened has been returned."""
        if self._pending:
            return False
        for tp, end in self._ends.items():
            if tp in self._consumer.assignment() and await self._consumer.position(tp) < end:
                return False
        return True

    async def close(self) -> None:
        await self._consumer.stop()
