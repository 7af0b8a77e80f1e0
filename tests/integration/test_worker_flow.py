"""The worker against a real broker, with a fake processor: delivery, DLQ, deferral, reply topics."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from qroute.codec import encode
from qroute.config import Settings
from qroute.kafka import make_admin, make_consumer
from qroute.models import Attempt, CostRecord, DeadLetter, Job, Message, Result, Timings
from qroute.observability.metrics import Metrics
from qroute.worker.loop import Worker
from qroute.worker.processing import Deferred, Finished
from qroute.worker.run import build_worker

from .conftest import ReadRecords

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make_job(job_id: str, **fields: Any) -> Job:
    return Job(id=job_id, messages=[Message(role="user", content=f"summarise {job_id}")], **fields)


def fake_attempt(n: int, cost: str) -> Attempt:
    return Attempt(
        n=n,
        provider="sim",
        model="fake-model",
        outcome="rate_limited" if cost == "0" else "success",
        action="retry" if cost == "0" else "done",
        billed=cost != "0",
        cost_usd=Decimal(cost),
        started_at=datetime.now(UTC),
        duration_ms=1.0,
    )


def finished_for(job: Job, attempts: tuple[Attempt, ...]) -> Finished:
    now = datetime.now(UTC)
    timings = Timings(created_at=job.created_at, started_at=now, finished_at=now, queue_ms=0, run_ms=0)
    result = Result(
        job_id=job.id,
        tenant=job.tenant,
        batch_id=job.batch_id,
        status="succeeded",
        output=f"done {job.id}",
        provider="sim",
        model="fake-model",
        timings=timings,
    )
    total = sum((a.cost_usd for a in attempts), start=Decimal(0))
    cost = CostRecord(
        job_id=job.id,
        tenant=job.tenant,
        attempts=list(attempts),
        total_cost_usd=total,
        price_source="test",
        price_version="1",
    )
    return Finished(result=result, cost=cost)


class FakeProcessor:
    """Finishes every job after a short random sleep; records concurrency and what it was given."""

    def __init__(
        self, *, max_sleep_s: float = 0.03, defer_once: bool = False, crash: frozenset[str] = frozenset()
    ):
        self.max_sleep_s = max_sleep_s
        self.defer_once = defer_once
        self.crash = crash
        self.active = 0
        self.max_active = 0
        self.calls: list[tuple[str, tuple[Attempt, ...]]] = []

    async def __call__(self, job: Job, prior: tuple[Attempt, ...]) -> Finished | Deferred:
        self.calls.append((job.id, prior))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(random.uniform(0, self.max_sleep_s))
            if job.id in self.crash:
                raise RuntimeError("processor bug")
            if self.defer_once and not prior:
                return Deferred(not_before=time.time() + 0.5, attempts=(fake_attempt(1, "0"),))
            return finished_for(job, (*prior, fake_attempt(len(prior) + 1, "0.000125")))
        finally:
            self.active -= 1


RunWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(unique_settings: Settings) -> AsyncIterator[RunWorker]:
    """`await start_worker(processor, **options)`: a worker running in this loop; stopped after the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(processor: Any, **options: Any) -> Worker:
        worker = build_worker(unique_settings, processor, **options)
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, task in running:
        await worker.stop()
        await task


async def publish(
    producer: AIOKafkaProducer, topic: str, values: Sequence[bytes | None], **kwargs: Any
) -> dict[int, int]:
    """Send and wait for every ack; returns partition → highest offset written."""
    futures = [
        await producer.send(topic, value=v, key=None if v is not None else b"null-value", **kwargs)
        for v in values
    ]
    high: dict[int, int] = {}
    for future in futures:
        meta = await future
        high[meta.partition] = max(high.get(meta.partition, -1), meta.offset)
    return high


async def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll a counter condition (the worker's counters are plain attributes, not awaitables)."""
    for _ in range(round(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"condition not met within {timeout_s}s")


async def committed(settings: Settings, topic: str, partitions: list[int]) -> dict[int, int | None]:
    consumer = make_consumer(settings.kafka, settings.worker.group_id)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


def job_ids(records: list[Any]) -> Counter[str]:
    return Counter(json.loads(r.value)["job_id"] for r in records)


class TestDelivery:
    """Every job gets exactly one result and one cost record, and the offsets reach the end."""

    async def test_all_jobs_once_and_offsets_committed(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """N jobs in → N results and N cost records, each job id once, offsets committed to the end."""
        topics = unique_settings.topics
        n = 200
        high = await publish(producer, topics.jobs, [encode(make_job(f"job-{i}")) for i in range(n)])
        processor = FakeProcessor()
        worker = await start_worker(processor)
        await wait_for(lambda: worker.counters.jobs_done >= n)
        await worker.stop()

        results = await read_records(topics.results, n)
        costs = await read_records(topics.costs, n)
        assert job_ids(results) == Counter({f"job-{i}": 1 for i in range(n)})
        assert job_ids(costs) == Counter({f"job-{i}": 1 for i in range(n)})
        offsets = await committed(unique_settings, topics.jobs, sorted(high))
        assert offsets == {p: o + 1 for p, o in high.items()}
        assert worker.phase == "stopped"

    async def test_result_headers_and_key(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """Results and cost records are keyed by job id, name their schema and carry the traceparent."""
        topics = unique_settings.topics
        await publish(
            producer, topics.jobs, [encode(make_job("traced"))], headers=[("traceparent", TRACEPARENT)]
        )
        worker = await start_worker(FakeProcessor())
        await wait_for(lambda: worker.counters.jobs_done >= 1)
        (result,) = await read_records(topics.results, 1)
        (cost,) = await read_records(topics.costs, 1)
        for record, schema in ((result, b"result"), (cost, b"cost_record")):
            headers = dict(record.headers)
            assert record.key == b"traced"
            assert headers["content-type"] == b"application/json"
            assert headers["qroute-schema"] == schema
            assert headers["qroute-schema-version"] == b"1"
            assert headers["traceparent"] == TRACEPARENT
        assert Decimal(json.loads(cost.value)["total_cost_usd"]) == Decimal("0.000125")

    async def test_many_in_flight_on_one_partition(
        self, unique_settings: Settings, producer: AIOKafkaProducer, start_worker: RunWorker
    ) -> None:
        """With all jobs on one partition, far more than the partition count run at once."""
        topics = unique_settings.topics
        n = 120
        values = [encode(make_job(f"hot-{i}")) for i in range(n)]
        high = await publish(producer, topics.jobs, values, partition=0)
        assert list(high) == [0]
        processor = FakeProcessor(max_sleep_s=0.3)
        worker = await start_worker(processor)
        await wait_for(lambda: worker.counters.jobs_done >= n)
        assert processor.max_active > topics.partitions
        assert processor.max_active > 1

    async def test_in_flight_cap_respected(
        self, unique_settings: Settings, producer: AIOKafkaProducer, start_worker: RunWorker
    ) -> None:
        """The processor never sees more concurrent jobs than max_in_flight."""
        topics = unique_settings.topics
        n = 80
        await publish(producer, topics.jobs, [encode(make_job(f"cap-{i}")) for i in range(n)])
        processor = FakeProcessor(max_sleep_s=0.05)
        worker = await start_worker(processor, max_in_flight=7)
        await wait_for(lambda: worker.counters.jobs_done >= n)
        assert processor.max_active <= 7
        assert worker.counters.max_in_flight_seen <= 7


class TestPartitionCap:
    """A slow record at the head of a partition limits how much of that partition runs behind it."""

    async def test_slow_head_pauses_partition(
        self, unique_settings: Settings, producer: AIOKafkaProducer, start_worker: RunWorker
    ) -> None:
        """With max_uncommitted_per_partition=5, at most 5 records start while the head is unfinished."""
        topics = unique_settings.topics
        n = 30
        await publish(producer, topics.jobs, [encode(make_job(f"p-{i}")) for i in range(n)], partition=0)
        processor = HeadBlocker("p-0", hold_s=1.5)
        worker = await start_worker(processor, max_uncommitted_per_partition=5)
        await wait_for(lambda: worker.counters.jobs_done >= n)
        assert processor.started_while_held == 5
        assert len(processor.calls) == n


class HeadBlocker(FakeProcessor):
    """Holds one job for `hold_s` and counts how many jobs start meanwhile (itself included)."""

    def __init__(self, head_id: str, hold_s: float) -> None:
        super().__init__(max_sleep_s=0.01)
        self.head_id = head_id
        self.hold_s = hold_s
        self.holding = False
        self.started_while_held = 0

    async def __call__(self, job: Job, prior: tuple[Attempt, ...]) -> Finished | Deferred:
        if job.id == self.head_id:
            self.holding = True
            self.started_while_held += 1
            try:
                await asyncio.sleep(self.hold_s)
            finally:
                self.holding = False
            self.calls.append((job.id, prior))
            return finished_for(job, prior)
        if self.holding:
            self.started_while_held += 1
        return await super().__call__(job, prior)


class TestMetrics:
    """The worker feeds the Prometheus collectors it is given."""

    async def test_counters_reach_metrics(
        self, unique_settings: Settings, producer: AIOKafkaProducer, start_worker: RunWorker
    ) -> None:
        """Jobs, dead letters, commits and assignment show up in the registry."""
        topics = unique_settings.topics
        await publish(producer, topics.jobs, [b"{oops", *(encode(make_job(f"m-{i}")) for i in range(20))])
        metrics = Metrics()
        worker = await start_worker(FakeProcessor(), metrics=metrics, commit_interval_s=0.2)
        await wait_for(lambda: worker.counters.jobs_done >= 20 and worker.counters.commits >= 1)
        await worker.stop()
        sample = metrics.registry.get_sample_value
        assert sample("qroute_jobs_total", {"status": "succeeded"}) == 20
        assert sample("qroute_dlq_total", {"reason": "invalid_json"}) == 1
        assert (sample("qroute_commits_total") or 0) >= 1
        assert (sample("qroute_assigned_partitions") or 0) > 0
        assert sample("qroute_in_flight") == 0


class TestPoison:
    """Bad records go to the dead-letter topic with a reason; good ones still complete."""

    async def test_every_kind_of_poison(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """Undecodable, invalid JSON, schema violation, oversize and unknown model are dead-lettered."""
        topics = unique_settings.topics
        oversize = encode(make_job("big", metadata={"pad": "x" * 3000}))
        poison: dict[str, bytes | None] = {
            "undecodable": b"\xff\xfe\x00garbage",
            "invalid_json": b'{"id": "broken", ',
            "schema_violation": json.dumps({"id": "no-messages"}).encode(),
            "oversize": oversize,
            "unknown_model": encode(
                make_job("typo", constraints={"allowed_models": ["fake-model", "gpt-9-ultra"]})
            ),
        }
        good = [encode(make_job(f"good-{i}")) for i in range(10)]
        values: list[bytes | None] = [*poison.values(), None, *good]
        await publish(producer, topics.jobs, values)
        worker = await start_worker(
            FakeProcessor(), max_job_bytes=2048, known_model=lambda name: name == "fake-model"
        )
        await wait_for(lambda: worker.counters.jobs_done >= 10 and worker.counters.dead_lettered >= 6)
        letters = [DeadLetter.model_validate_json(r.value) for r in await read_records(topics.dlq, 6)]
        reasons = Counter(letter.reason for letter in letters)
        assert reasons == Counter(
            {"undecodable": 2, "invalid_json": 1, "schema_violation": 1, "oversize": 1, "unknown_model": 1}
        )
        by_reason = {letter.reason: letter for letter in letters}
        assert "gpt-9-ultra" in by_reason["unknown_model"].message
        assert by_reason["unknown_model"].job_id == "typo"
        assert by_reason["schema_violation"].job_id == "no-messages"
        assert "messages" in by_reason["schema_violation"].message
        assert base64.b64decode(by_reason["oversize"].payload_b64) == oversize
        assert all(letter.source_topic == topics.jobs for letter in letters)
        results = await read_records(topics.results, 10)
        assert job_ids(results) == Counter({f"good-{i}": 1 for i in range(10)})

    async def test_processor_crash_retried_then_dead_lettered(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """A processor that raises gets one retry through a delay topic, then a processing_error letter."""
        topics = unique_settings.topics
        await publish(producer, topics.jobs, [encode(make_job("buggy")), encode(make_job("fine"))])
        processor = FakeProcessor(crash=frozenset({"buggy"}))
        worker = await start_worker(processor, crash_retry_delay_s=0.3)
        await wait_for(lambda: worker.counters.dead_lettered >= 1 and worker.counters.jobs_done >= 1)
        (letter,) = [DeadLetter.model_validate_json(r.value) for r in await read_records(topics.dlq, 1)]
        assert letter.reason == "processing_error"
        assert letter.job_id == "buggy"
        assert letter.source_topic == topics.jobs
        assert [job_id for job_id, _ in processor.calls].count("buggy") == 2


class TestReplyTopic:
    """reply_to is honoured only under an allowed prefix."""

    async def test_disallowed_reply_gets_failed_result_on_default_topic(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """A job whose reply_to is not allowed is not run and gets a failed result on the results topic."""
        topics = unique_settings.topics
        await publish(producer, topics.jobs, [encode(make_job("sneaky", reply_to="payments.ledger"))])
        processor = FakeProcessor()
        worker = await start_worker(processor)
        await wait_for(lambda: worker.counters.jobs_done >= 1)
        (record,) = await read_records(topics.results, 1)
        result = Result.model_validate_json(record.value)
        assert result.status == "failed"
        assert result.error is not None
        assert result.error.type == "reply_topic_not_allowed"
        (cost_record,) = await read_records(topics.costs, 1)
        cost = CostRecord.model_validate_json(cost_record.value)
        assert cost.attempts == []
        assert cost.total_cost_usd == 0
        assert processor.calls == []

    async def test_allowed_reply_topic_used(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """A reply_to under an allowed prefix receives the result."""
        topics = unique_settings.topics
        reply = topics.reply_prefixes[0] + ".team-a"
        admin = make_admin(unique_settings.kafka)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(reply, 1, 1)])
            for _ in range(200):
                if reply in await admin.list_topics():
                    break
                await asyncio.sleep(0.05)
        finally:
            await admin.close()
        await publish(producer, topics.jobs, [encode(make_job("polite", reply_to=reply))])
        worker = await start_worker(FakeProcessor())
        await wait_for(lambda: worker.counters.jobs_done >= 1)
        (record,) = await read_records(reply, 1)
        assert Result.model_validate_json(record.value).job_id == "polite"
        assert await read_records(topics.results, 1, timeout_s=0.5) == []


class TestDeferral:
    """A deferred job comes back through the delay topic with its attempt history."""

    async def test_defer_round_trip(
        self,
        unique_settings: Settings,
        producer: AIOKafkaProducer,
        read_records: ReadRecords,
        start_worker: RunWorker,
    ) -> None:
        """Defer once, then finish: one result, and the cost record lists the attempt made before deferring."""
        topics = unique_settings.topics
        n = 5
        high = await publish(producer, topics.jobs, [encode(make_job(f"later-{i}")) for i in range(n)])
        processor = FakeProcessor(defer_once=True)
        worker = await start_worker(processor)
        await wait_for(lambda: worker.counters.jobs_done >= n)
        await worker.stop()

        assert worker.counters.deferred == n
        parked = await read_records(topics.delay_topic(5), n)
        assert {r.key for r in parked} == {f"later-{i}".encode() for i in range(n)}
        headers = dict(parked[0].headers)
        assert int(headers["qroute-not-before"]) > 0
        assert json.loads(headers["qroute-attempts"])[0]["outcome"] == "rate_limited"
        second_calls = [prior for _, prior in processor.calls if prior]
        assert len(second_calls) == n
        assert all(len(prior) == 1 and prior[0].outcome == "rate_limited" for prior in second_calls)
        costs = [CostRecord.model_validate_json(r.value) for r in await read_records(topics.costs, n)]
        assert all([a.n for a in c.attempts] == [1, 2] for c in costs)
        assert job_ids(await read_records(topics.results, n)) == Counter({f"later-{i}": 1 for i in range(n)})
        offsets = await committed(unique_settings, topics.jobs, sorted(high))
        assert offsets == {p: o + 1 for p, o in high.items()}
