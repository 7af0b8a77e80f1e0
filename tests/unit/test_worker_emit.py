"""Emitter: a group of records counts as published only when every one is acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    ProducerClosed,
    UnknownTopicOrPartitionError,
)

from qroute.worker.emit import Emitter, Outgoing, PublisherClosed, PublishRejected


class FlakyProducer:
    """Fails the first sends of each topic with a scripted error, then acknowledges."""

    def __init__(self, failures: dict[str, list[Exception]]) -> None:
        self.failures = failures
        self.acked: list[str] = []
        self.sends = 0

    async def send(
        self, topic: str, *, value: bytes, key: bytes | None, headers: Any
    ) -> asyncio.Future[None]:
        self.sends += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self.failures.get(topic, [])
        if queue:
            future.set_exception(queue.pop(0))
        else:
            self.acked.append(topic)
            future.set_result(None)
        return future


def _emitter(producer: FlakyProducer) -> Emitter:
    return Emitter(producer, retry_base_s=0.001, retry_cap_s=0.002, rng=lambda: 1.0)


RECORDS = [Outgoing("results", b"r", b"k", []), Outgoing("costs", b"c", b"k", [])]


class TestPublish:
    """publish returns once all records are acked, retrying only the failed ones."""

    async def test_all_acked(self) -> None:
        """Both records are sent once each when the broker acknowledges."""
        producer = FlakyProducer({})
        await _emitter(producer).publish(RECORDS)
        assert sorted(producer.acked) == ["costs", "results"]
        assert producer.sends == 2

    async def test_retryable_failure_retried_alone(self) -> None:
        """A transient error is retried for the failed record only; the acked one is not re-sent."""
        producer = FlakyProducer({"costs": [KafkaConnectionError(), KafkaConnectionError()]})
        await _emitter(producer).publish(RECORDS)
        assert producer.acked.count("results") == 1
        assert producer.acked.count("costs") == 1
        assert producer.sends == 4

    async def test_missing_topic_redirected_to_fallback(self) -> None:
        """A record for a topic that does not exist goes to its fallback topic, once."""
        producer = FlakyProducer({"results.team-a": [UnknownTopicOrPartitionError()]})
        records = [Outgoing("results.team-a", b"r", b"k", []), Outgoing("costs", b"c", b"k", [])]
        await _emitter(producer).publish(records, fallback={"results.team-a": "results"})
        assert sorted(producer.acked) == ["costs", "results"]

    async def test_missing_topic_without_fallback_is_retried(self) -> None:
        """A missing topic with no fallback (qroute's own topics) is retried until it appears."""
        producer = FlakyProducer(
            {"results": [UnknownTopicOrPartitionError(), UnknownTopicOrPartitionError()]}
        )
        await _emitter(producer).publish(RECORDS)
        assert producer.acked.count("results") == 1

    async def test_too_large_is_rejected(self) -> None:
        """A record too large for the broker raises PublishRejected instead of retrying forever."""
        producer = FlakyProducer({"results": [MessageSizeTooLargeError()]})
        with pytest.raises(PublishRejected):
            await _emitter(producer).publish(RECORDS)

    async def test_closed_producer(self) -> None:
        """A stopped producer raises PublisherClosed."""
        producer = FlakyProducer({"results": [ProducerClosed()]})
        with pytest.raises(PublisherClosed):
            await _emitter(producer).publish(RECORDS)

    async def test_cancel_stops_retrying(self) -> None:
        """Cancelling publish while the broker keeps failing ends it (the job stays unfinished)."""
        producer = FlakyProducer({"results": [KafkaConnectionError() for _ in range(10_000)]})
        task = asyncio.create_task(Emitter(producer, retry_base_s=0.01, rng=lambda: 1.0).publish(RECORDS))
        for _ in range(20):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "results" not in producer.acked
