"""Publishing with acknowledgement: nothing counts as done until the broker has it.

`Emitter.publish` sends a group of records (a result and its cost record, say)
and returns only when every one is acknowledged (the producer uses acks=all).
A failed send is retried, alone, with capped full-jitter backoff for as long as
the caller lets it: when the broker is gone the job simply stays unfinished, its
offset is not committed, and it is redelivered later. Only errors that no retry
can fix (a record larger than the producer may send) end the attempt, as
`PublishRejected`, so the caller can dead-letter the job instead of stalling
its partition forever.

A topic that does not exist (or may not be written) is the same kind of
problem when a producer chose it (`reply_to`): the caller names a `fallback`
topic for it and the record is redirected there. For qroute's own topics it is
a deployment error, retried until someone creates the topic.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from qroute.codec import encode
from qroute.models import CostRecord, DeadLetter, Result
from qroute.worker.headers import Headers, contract_headers

log = structlog.get_logger(__name__)

_UNFIXABLE = (MessageSizeTooLargeError, RecordTooLargeError)
_TOPIC_UNAVAILABLE = (UnknownTopicOrPartitionError, TopicAuthorizationFailedError)
"""aiokafka's send raises UnknownTopicOrPartitionError after request_timeout_ms of metadata retries."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to publish."""

    topic: str
    value: bytes
    key: bytes | None
    headers: Headers


class PublishRejected(Exception):
    """The broker or producer refused a record in a way retrying cannot fix (e.g. too large)."""


class PublisherClosed(Exception):
    """The producer was stopped while records were still unacknowledged."""


def result_records(
    result: Result, cost: CostRecord, *, reply_topic: str, costs_topic: str, traceparent: bytes | None
) -> list[Outgoing]:
    """A result and its cost record, keyed by job id (a compacted topic keeps the latest per job)."""
    key = result.job_id.encode()
    return [
        Outgoing(reply_topic, encode(result), key, contract_headers("result", traceparent)),
        Outgoing(costs_topic, encode(cost), key, contract_headers("cost_record", traceparent)),
    ]


def dead_letter_record(letter: DeadLetter, *, dlq_topic: str, traceparent: bytes | None) -> Outgoing:
    key = letter.job_id.encode() if letter.job_id else None
    return Outgoing(dlq_topic, encode(letter), key, contract_headers("dead_letter", traceparent))


class Emitter:
    """Publishes groups of records and waits for every acknowledgement."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        retry_base_s: float = 0.2,
        retry_cap_s: float = 10.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._producer = producer
        self._base = retry_base_s
        self._cap = retry_cap_s
        self._rng = rng

    async def publish(
        self, records: Sequence[Outgoing], *, fallback: Mapping[str, str] | None = None
    ) -> None:
        """Return once every record is acknowledged; retry failures until then (cancel to give up).

        `fallback` maps a topic to the one to use instead when it does not exist or
        may not be written. Raises `PublishRejected` for records no retry can deliver
        and `PublisherClosed` when the producer was stopped.
        """
        redirects = dict(fallback or {})
        waiting = list(records)
        failures = 0
        while waiting:
            outcomes = await self._send_all(waiting)
            failed: list[Outgoing] = []
            for record, outcome in zip(waiting, outcomes, strict=True):
                if outcome is None:
                    continue
                if isinstance(outcome, _UNFIXABLE):
                    raise PublishRejected(
                        f"{type(outcome).__name__} publishing to {record.topic}"
                    ) from outcome
                if isinstance(outcome, ProducerClosed):
                    raise PublisherClosed(f"producer closed before {record.topic} acknowledged") from outcome
                if not isinstance(outcome, KafkaError):
                    raise outcome  # a bug, not the broker: let it surface
                if isinstance(outcome, _TOPIC_UNAVAILABLE) and record.topic in redirects:
                    log.warning(
                        "topic_unavailable_redirected",
                        topic=record.topic,
                        to=redirects[record.topic],
                        error=type(outcome).__name__,
                    )
                    failed.append(replace(record, topic=redirects.pop(record.topic)))
                    continue
                failed.append(record)
                log.warning(
                    "publish_failed", topic=record.topic, error=type(outcome).__name__, retry=failures + 1
                )
            waiting = failed
            if waiting:
                await asyncio.sleep(self._rng() * min(self._cap, self._base * 2**failures))
                failures += 1

    async def _send_all(self, records: Sequence[Outgoing]) -> list[BaseException | None]:
        """Append every record to the producer's batches, then wait for all their acks.

        Appending returns at once unless a batch is full, so the records go out
        together without a task each (two tasks per job were ~3% of worker CPU).
        """
        outcomes: list[BaseException | None] = [None] * len(records)
        pending: list[tuple[int, asyncio.Future[object]]] = []
        for i, record in enumerate(records):
            try:
                pending.append((i, await self._append(record)))
            except Exception as exc:  # refused before it was queued (closed, unknown topic, too large)
                outcomes[i] = exc
        acks = await asyncio.gather(*(future for _, future in pending), return_exceptions=True)
        for (i, _), ack in zip(pending, acks, strict=True):
            if isinstance(ack, BaseException):
                outcomes[i] = ack
        return outcomes

    async def _append(self, record: Outgoing) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self._producer.send(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )
        return future
