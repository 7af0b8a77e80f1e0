"""Fixtures for tests against the real broker: a started producer and a reader that waits on counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from qroute.config import Settings
from qroute.kafka import make_consumer, make_producer

ReadRecords = Callable[..., Awaitable[list[ConsumerRecord[bytes, bytes]]]]


@pytest.fixture
async def producer(kafka_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer with qroute's settings; stopped after the test."""
    client = make_producer(kafka_settings.kafka)
    await client.start()
    yield client
    await client.stop()


@pytest.fixture
def read_records(kafka_settings: Settings) -> ReadRecords:
    """`await read_records(topic, count, timeout_s=20)`: records from the start of `topic`.

    Uses no consumer group (no join delay, no commits). Returns once `count` records arrived,
    or what arrived by the timeout, so the test's own assertion reports the shortfall.
    """

    async def read(topic: str, count: int, *, timeout_s: float = 20.0) -> list[ConsumerRecord[bytes, bytes]]:
        consumer = make_consumer(kafka_settings.kafka, None, [topic])
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            async with asyncio.timeout(timeout_s):
                while len(records) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    for batch in batches.values():
                        records.extend(batch)
        except TimeoutError:
            pass
        finally:
            await consumer.stop()
        return records

    return read
