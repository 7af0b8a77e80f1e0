"""The client factories against the test broker: explicit commits only, and the shared fixtures work."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from qroute.config import Settings
from qroute.kafka import make_consumer

if TYPE_CHECKING:
    from .conftest import ReadRecords


class TestGroupConsumer:
    async def test_offsets_move_only_on_explicit_commit(
        self, unique_settings: Settings, unique_group: str, producer: AIOKafkaProducer
    ) -> None:
        """A consumer that reads without committing leaves the group at no offset; a commit is stored."""
        topic = unique_settings.topics.jobs
        tp = TopicPartition(topic, 0)
        for n in range(2):
            await producer.send_and_wait(topic, f"job-{n}".encode(), partition=0)

        consumer = make_consumer(unique_settings.kafka, unique_group, [topic])
        await consumer.start()
        try:
            async with asyncio.timeout(20):
                first = [await consumer.getone() for _ in range(2)]
            assert [r.value for r in first] == [b"job-0", b"job-1"]
            assert await consumer.committed(tp) is None  # no auto-commit

            await consumer.commit({tp: OffsetAndMetadata(2, "")})
            assert await consumer.committed(tp) == 2
        finally:
            await consumer.stop()


class TestReadRecordsFixture:
    async def test_reads_what_was_produced(
        self,
        unique_topics: object,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
    ) -> None:
        """`read_records` returns every record of a topic from the start, across partitions."""
        topic = unique_settings.topics.results
        for n in range(5):
            await producer.send(topic, f"r{n}".encode(), key=f"k{n}".encode())
        await producer.flush()
        records = await read_records(topic, 5)
        assert sorted(r.value for r in records) == [f"r{n}".encode() for n in range(5)]
