"""RecordHandler: what one record turns into, with a recording emitter instead of a broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from qroute.codec import encode
from qroute.config import TopicSettings
from qroute.models import Attempt, CostRecord, DeadLetter, Job, Message, Result, Timings
from qroute.worker import headers
from qroute.worker.emit import Emitter, Outgoing, PublishRejected
from qroute.worker.handler import RecordHandler
from qroute.worker.headers import SourceRef
from qroute.worker.observe import WorkerCounters
from qroute.worker.processing import Deferred, Finished

NOW = 1_800_000_000.0
TOPICS = TopicSettings()


@dataclass
class FakeRecord:
    value: bytes | None
    topic: str = "qroute.jobs"
    partition: int = 2
    offset: int = 77
    key: bytes | None = b"j-1"
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int = int(NOW * 1000)


class RecordingEmitter(Emitter):
    """Keeps what would be published; can refuse records for one topic."""

    def __init__(self, reject_topic: str | None = None) -> None:
        self.sent: list[Outgoing] = []
        self.fallbacks: list[dict[str, str]] = []
        self.reject_topic = reject_topic

    async def publish(
        self, records: Sequence[Outgoing], *, fallback: Mapping[str, str] | None = None
    ) -> None:
        self.fallbacks.append(dict(fallback or {}))
        if any(r.topic == self.reject_topic for r in records):
            raise PublishRejected("MessageSizeTooLargeError")
        self.sent.extend(records)

    def topics(self) -> list[str]:
        return [r.topic for r in self.sent]


def _job(**fields: object) -> Job:
    return Job.model_validate(
        {
            "id": "j-1",
            "messages": [Message(role="user", content="hi")],
            "created_at": "2026-11-23T06:00:00Z",
            **fields,
        }
    )


def _attempt(n: int = 1) -> Attempt:
    return Attempt(
        n=n,
        provider="p",
        model="m",
        outcome="rate_limited",
        action="retry",
        billed=False,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_ms=1.0,
    )


def _finished(job: Job, attempts: Sequence[Attempt] = ()) -> Finished:
    now = datetime.now(UTC)
    result = Result(
        job_id=job.id,
        tenant=job.tenant,
        status="succeeded",
        output="ok",
        timings=Timings(created_at=now, started_at=now, finished_at=now, queue_ms=0, run_ms=0),
    )
    cost = CostRecord(
        job_id=job.id,
        tenant=job.tenant,
        attempts=list(attempts),
        total_cost_usd=Decimal(0),
        price_source="t",
        price_version="1",
    )
    return Finished(result, cost)


class Script:
    """A processor that returns or raises what the test says, and records its calls."""

    def __init__(self, *outcomes: Finished | Deferred | BaseException) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, tuple[Attempt, ...]]] = []

    async def __call__(self, job: Job, prior: tuple[Attempt, ...]) -> Finished | Deferred:
        self.calls.append((job.id, prior))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _handler(
    processor: Script, emitter: RecordingEmitter, counters: WorkerCounters | None = None
) -> RecordHandler:
    return RecordHandler(
        emitter=emitter,
        processor=processor,
        topics=TOPICS,
        max_job_bytes=10_000,
        known_model=None,
        counters=counters or WorkerCounters(),
        clock=lambda: NOW,
    )


def _ignore(_active: bool) -> None:
    return None


def _letter(out: Outgoing) -> DeadLetter:
    return DeadLetter.model_validate_json(out.value)


class TestFinished:
    """A finished job publishes its result and cost record."""

    async def test_result_and_cost(self) -> None:
        """Result to the results topic and cost record to the costs topic, both keyed by job id."""
        job = _job()
        emitter = RecordingEmitter()
        counters = WorkerCounters()
        phases: list[bool] = []
        await _handler(Script(_finished(job)), emitter, counters).handle(
            FakeRecord(encode(job)), None, phases.append
        )
        assert emitter.topics() == [TOPICS.results, TOPICS.costs]
        assert {r.key for r in emitter.sent} == {b"j-1"}
        assert phases == [True, False]
        assert counters.jobs_succeeded == 1

    async def test_custom_reply_topic_has_fallback(self) -> None:
        """A result for a producer-chosen reply topic names the default results topic as its fallback."""
        job = _job(reply_to="qroute.results.team-a")
        emitter = RecordingEmitter()
        await _handler(Script(_finished(job)), emitter).handle(FakeRecord(encode(job)), None, _ignore)
        assert emitter.topics() == ["qroute.results.team-a", TOPICS.costs]
        assert emitter.fallbacks == [{"qroute.results.team-a": TOPICS.results}]

    async def test_unpublishable_result_dead_lettered(self) -> None:
        """A result the broker refuses (too large) dead-letters the job as processing_error."""
        job = _job()
        emitter = RecordingEmitter(reject_topic=TOPICS.results)
        await _handler(Script(_finished(job)), emitter).handle(FakeRecord(encode(job)), None, _ignore)
        (out,) = emitter.sent
        assert out.topic == TOPICS.dlq
        assert _letter(out).reason == "processing_error"


class TestDeferral:
    """Deferred jobs are parked on the right delay tier with their history."""

    async def test_deferred_goes_to_covering_tier(self) -> None:
        """A 20 s wait lands on the 30 s tier with not-before, attempts and source headers."""
        job = _job()
        raw = encode(job)
        emitter = RecordingEmitter()
        await _handler(Script(Deferred(NOW + 20, (_attempt(),))), emitter).handle(
            FakeRecord(raw), None, _ignore
        )
        (out,) = emitter.sent
        assert out.topic == TOPICS.delay_topic(30)
        assert out.value == raw
        info = headers.read_delay_info(out.headers)
        assert info.not_before == NOW + 20
        assert info.attempts == (_attempt(),)
        assert info.source == SourceRef("qroute.jobs", 2, 77)

    async def test_due_delay_record_gets_history(self) -> None:
        """A due delay record runs with the attempts it carried, and dead letters name the original source."""
        job = _job()
        delay_headers = headers.delay_headers(
            not_before=NOW - 1,
            attempts=[_attempt()],
            source=SourceRef("qroute.jobs", 0, 5),
            crashes=0,
            traceparent=None,
        )
        record = FakeRecord(encode(job), topic=TOPICS.delay_topic(5), headers=delay_headers)
        script = Script(_finished(job, [_attempt(), _attempt(2)]))
        emitter = RecordingEmitter()
        await _handler(script, emitter).handle(record, headers.read_delay_info(delay_headers), _ignore)
        assert script.calls == [("j-1", (_attempt(),))]
        assert emitter.topics() == [TOPICS.results, TOPICS.costs]

    async def test_not_yet_due_is_parked_again(self) -> None:
        """A record released at the end of its tier span but still early is parked again, unprocessed."""
        job = _job()
        delay_headers = headers.delay_headers(
            not_before=NOW + 1000,
            attempts=[_attempt()],
            source=SourceRef("qroute.jobs", 0, 5),
            crashes=1,
            traceparent=None,
        )
        record = FakeRecord(encode(job), topic=TOPICS.delay_topic(300), headers=delay_headers)
        script = Script()
        emitter = RecordingEmitter()
        await _handler(script, emitter).handle(record, headers.read_delay_info(delay_headers), _ignore)
        assert script.calls == []
        (out,) = emitter.sent
        assert out.topic == TOPICS.delay_topic(300)
        info = headers.read_delay_info(out.headers)
        assert (info.not_before, info.crashes, info.source) == (NOW + 1000, 1, SourceRef("qroute.jobs", 0, 5))


class TestCrashes:
    """A processor that raises is retried once via the delay topic, then dead-lettered."""

    async def test_first_crash_parks_with_count(self) -> None:
        """The first raise parks the job on the smallest tier with qroute-crashes=1."""
        job = _job()
        emitter = RecordingEmitter()
        counters = WorkerCounters()
        await _handler(Script(RuntimeError("bug")), emitter, counters).handle(
            FakeRecord(encode(job)), None, _ignore
        )
        (out,) = emitter.sent
        assert out.topic == TOPICS.delay_topic(5)
        assert headers.read_delay_info(out.headers).crashes == 1
        assert counters.processor_crashes == 1

    async def test_second_crash_dead_letters(self) -> None:
        """A raise on a job that already crashed once dead-letters it as processing_error."""
        job = _job()
        delay_headers = headers.delay_headers(
            not_before=NOW - 1,
            attempts=[],
            source=SourceRef("qroute.jobs", 4, 9),
            crashes=1,
            traceparent=None,
        )
        record = FakeRecord(encode(job), topic=TOPICS.delay_topic(5), headers=delay_headers)
        emitter = RecordingEmitter()
        await _handler(Script(ValueError("bug")), emitter).handle(
            record, headers.read_delay_info(delay_headers), _ignore
        )
        (out,) = emitter.sent
        letter = _letter(out)
        assert letter.reason == "processing_error"
        assert "ValueError" in letter.message
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("qroute.jobs", 4, 9)

    async def test_cancellation_is_not_a_crash(self) -> None:
        """Cancelling the processor (hand-back) propagates instead of parking or dead-lettering."""
        job = _job()
        emitter = RecordingEmitter()
        with pytest.raises(asyncio.CancelledError):
            await _handler(Script(asyncio.CancelledError()), emitter).handle(
                FakeRecord(encode(job)), None, _ignore
            )
        assert emitter.sent == []


class TestPoisonAndReply:
    """Bad input and refused reply topics never reach the processor."""

    async def test_poison_dead_lettered(self) -> None:
        """Undecodable bytes go to the DLQ and the processor is not called."""
        script = Script()
        emitter = RecordingEmitter()
        await _handler(script, emitter).handle(FakeRecord(b"\x00\xff"), None, _ignore)
        assert script.calls == []
        assert _letter(emitter.sent[0]).reason == "undecodable"
        assert json.loads(emitter.sent[0].value)["source_offset"] == 77

    async def test_refused_reply(self) -> None:
        """A disallowed reply_to yields a failed result on the default topic without a processor call."""
        script = Script()
        emitter = RecordingEmitter()
        await _handler(script, emitter).handle(FakeRecord(encode(_job(reply_to="elsewhere"))), None, _ignore)
        assert script.calls == []
        assert emitter.topics() == [TOPICS.results, TOPICS.costs]
        result = Result.model_validate_json(emitter.sent[0].value)
        assert result.error is not None
        assert result.error.type == "reply_topic_not_allowed"
