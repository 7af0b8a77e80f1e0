"""The producer SDK against a real broker: submit, correlate results, typed errors, sync wrapper.

`FakeWorker` answers jobs the way a worker does (Result to reply_to or the results
topic, CostRecord to the costs topic, keyed by job id); the last class runs the
real worker against the provider simulator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import pytest
from aiokafka.admin import NewTopic

from qroute import JobRejected, QRouteClient, ResultTimeout, SyncQRouteClient
from qroute.client import ClientClosed, ResultStream, TopicMissing
from qroute.client.tail import TopicTail
from qroute.codec import DecodeFailure, decode_job, encode
from qroute.config import Settings
from qroute.kafka import make_admin, make_producer
from qroute.models import Attempt, CostRecord, ErrorInfo, Job, Message, Result, Timings, Usage
from qroute.sim import FixedLatency, SimConfig, SimModel, SimProvider, SimServer
from qroute.testing import sim_routes_settings, worker_in_process

FAIL_MARK = "PLEASE-FAIL"


def job(job_id: str, text: str = "Summarise the tides.", **fields: Any) -> Job:
    return Job(id=job_id, messages=[Message(role="user", content=text)], **fields)


def job_cost(job_id: str) -> Decimal:
    """A distinct exact amount per job, with more digits than a float keeps."""
    return Decimal(len(job_id)) * Decimal("0.000000123") + Decimal("0.0000000007")


def answer(done: Job) -> tuple[Result, CostRecord]:
    """What a worker would publish for `done`: jobs mentioning FAIL_MARK fail unbilled."""
    now = datetime.now(UTC)
    timings = Timings(created_at=done.created_at, started_at=now, finished_at=now, queue_ms=0, run_ms=1)
    model = (done.constraints.allowed_models or ["fake-model"])[0]
    failed = any(FAIL_MARK in m.content for m in done.messages)
    cost = Decimal(0) if failed else job_cost(done.id)
    attempt = Attempt(
        n=1,
        provider="fakeprov",
        model=model,
        outcome="bad_request" if failed else "success",
        action="terminal" if failed else "done",
        usage=None if failed else Usage(input_tokens=10, output_tokens=5),
        billed=not failed,
        cost_usd=cost,
        started_at=now,
        duration_ms=1.0,
    )
    common: dict[str, Any] = {
        "job_id": done.id,
        "tenant": done.tenant,
        "batch_id": done.batch_id,
        "timings": timings,
        "metadata": done.metadata,
    }
    if failed:
        result = Result(
            **common,
            status="failed",
            error=ErrorInfo(type="provider_rejected", message="asked to fail"),
            attempts=[],
        )
    else:
        result = Result(
            **common,
            status="succeeded",
            output=f"answer to {done.id}",
            finish_reason="stop",
            provider="fakeprov",
            model=model,
            usage=attempt.usage,
            cost_usd=cost,
        )
    record = CostRecord(
        job_id=done.id,
        tenant=done.tenant,
        batch_id=done.batch_id,
        attempts=[attempt],
        total_cost_usd=cost,
        price_source="fake",
        price_version="1",
    )
    return result, record


class FakeWorker:
    """Reads the jobs topic from the start (no group: no join delay) and answers every job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.costs: list[CostRecord] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        tail = await TopicTail.open(self.settings.kafka, self.settings.topics.jobs, start="beginning")
        producer = make_producer(self.settings.kafka)
        await producer.start()
        self._task = asyncio.create_task(self._run(tail, producer))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, tail: TopicTail, producer: Any) -> None:
        topics = self.settings.topics
        try:
            while True:
                sends = []
                for record in await tail.read(timeout_ms=200):
                    decoded = decode_job(record.value)
                    if isinstance(decoded, DecodeFailure):
                        continue
                    result, cost = answer(decoded)
                    key = decoded.id.encode()
                    sends.append(
                        await producer.send(decoded.reply_to or topics.results, encode(result), key=key)
                    )
                    sends.append(await producer.send(topics.costs, encode(cost), key=key))
                    self.costs.append(cost)
                await asyncio.gather(*sends)
        finally:
            await tail.close()
            await producer.stop()


async def publish_results(settings: Settings, results: list[Result], topic: str | None = None) -> None:
    """Publish results pipelined, so the broker stores them as one batch."""
    producer = make_producer(settings.kafka, linger_ms=50)
    await producer.start()
    try:
        sends = [
            await producer.send(topic or settings.topics.results, encode(r), key=r.job_id.encode())
            for r in results
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def topic_count(settings: Settings, topic: str) -> int:
    """How many records `topic` holds now (read to the high-water mark, not end_offsets)."""
    tail = await TopicTail.open(settings.kafka, topic, start="beginning")
    count = 0
    try:
        while True:
            count += len(await tail.read(timeout_ms=100))
            if await tail.caught_up():
                return count
    finally:
        await tail.close()


async def take(stream: ResultStream, count: int) -> list[Result]:
    """The next `count` results of `stream`; closes it."""
    taken: list[Result] = []
    async with stream:
        async for result in stream:
            taken.append(result)
            if len(taken) == count:
                break
    return taken


@pytest.fixture
async def client(unique_settings: Settings) -> AsyncIterator[QRouteClient]:
    async with QRouteClient(unique_settings) as started:
        yield started


class TestSubmitAndResult:
    async def test_round_trip(self, unique_settings: Settings, client: QRouteClient) -> None:
        """submit() returns the id once acknowledged; result() returns that job's Result."""
        async with FakeWorker(unique_settings):
            job_id = await client.submit(job("rt-1"))
            result = await client.result(job_id, timeout=30)
        assert job_id == "rt-1"
        assert result.job_id == "rt-1"
        assert result.output == "answer to rt-1"

    async def test_dict_jobs_are_validated_and_sent(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """A plain dict is validated into a Job before it is sent."""
        async with FakeWorker(unique_settings):
            result = await client.submit_and_wait(
                {"id": "d-1", "messages": [{"role": "user", "content": "hi"}]}, timeout=30
            )
        assert result.status == "succeeded"

    async def test_result_that_arrived_first_is_buffered(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """A result that arrives before result() is called is kept and handed over."""
        stream = client.results()
        async with FakeWorker(unique_settings):
            await client.submit(job("early-1"))
            seen = await asyncio.wait_for(anext(stream), 30)  # routed while nobody waited for it
            await stream.aclose()
        assert seen.job_id == "early-1"
        result = await client.result("early-1", timeout=0)
        assert result.output == "answer to early-1"

    async def test_failed_job_is_a_result_not_an_exception(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """A job the worker fails comes back as a failed Result with its error."""
        async with FakeWorker(unique_settings):
            result = await client.submit_and_wait(job("f-1", FAIL_MARK), timeout=30)
        assert result.status == "failed"
        assert result.error is not None
        assert result.error.type == "provider_rejected"

    async def test_closed_client_can_start_again(self, unique_settings: Settings) -> None:
        """close() then start() gives a working client (a fresh reader and result routing)."""
        client = QRouteClient(unique_settings)
        await client.start()
        await client.close()
        await client.start()
        try:
            async with FakeWorker(unique_settings):
                result = await client.submit_and_wait(job("again-1"), timeout=30)
        finally:
            await client.close()
        assert result.job_id == "again-1"


class TestSubmitMany:
    async def test_pipelined_in_order_and_all_answered(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """500 jobs with at most 50 unacknowledged: ids in input order, one result each, streamed too."""
        collector = asyncio.create_task(take(client.results(), 500))
        jobs = (job(f"many-{i}") for i in range(500))
        async with FakeWorker(unique_settings):
            ids = await client.submit_many(jobs, max_pending=50)
            results = await asyncio.gather(*(client.result(i, timeout=60) for i in ids))
            streamed = await asyncio.wait_for(collector, 60)
        assert ids == [f"many-{i}" for i in range(500)]
        assert [r.job_id for r in results] == ids
        assert sorted(r.job_id for r in streamed) == sorted(ids)

    async def test_rejected_job_stops_the_stream_after_sending_the_ones_before(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """JobRejected carries the index; the jobs before it were sent, nothing after it."""
        items: list[Any] = [job("ok-0"), job("ok-1"), {"id": "bad", "messages": []}, job("never")]
        with pytest.raises(JobRejected) as caught:
            await client.submit_many(items)
        assert caught.value.index == 2
        assert caught.value.job_id == "bad"
        assert "messages" in caught.value.message
        assert await topic_count(unique_settings, unique_settings.topics.jobs) == 2

    async def test_async_iterables_are_accepted(self, client: QRouteClient) -> None:
        """submit_iter takes an async generator and yields ids as they are acknowledged."""

        async def generate() -> AsyncIterator[Job]:
            for i in range(5):
                yield job(f"gen-{i}")

        assert [i async for i in client.submit_iter(generate(), max_pending=2)] == [
            f"gen-{i}" for i in range(5)
        ]


class TestTypedErrors:
    async def test_invalid_job_is_rejected_before_sending(
        self, unique_settings: Settings, client: QRouteClient
    ) -> None:
        """JobRejected carries the validation message and nothing reaches the jobs topic."""
        with pytest.raises(JobRejected) as caught:
            await client.submit({"id": "has space", "messages": [{"role": "user", "content": "x"}]})
        assert caught.value.message.startswith("id:")
        assert await topic_count(unique_settings, unique_settings.topics.jobs) == 0

    async def test_oversize_job_is_rejected(self, client: QRouteClient) -> None:
        """A job over the workers' size cap is refused locally, not dead-lettered later."""
        with pytest.raises(JobRejected, match="larger than"):
            await client.submit(job("big", "x" * (client.settings.worker.max_job_bytes + 1)))

    async def test_result_timeout(self, client: QRouteClient) -> None:
        """No worker, no result: ResultTimeout (a TimeoutError) names the job."""
        await client.submit(job("lonely"))
        with pytest.raises(ResultTimeout) as caught:
            await client.result("lonely", timeout=0.3)
        assert caught.value.job_id == "lonely"
        assert isinstance(caught.value, TimeoutError)

    async def test_missing_reply_topic(self, unique_settings: Settings) -> None:
        """A reply topic that does not exist fails start() instead of waiting forever."""
        with pytest.raises(TopicMissing):
            async with QRouteClient(unique_settings, reply_topic=f"nope-{uuid.uuid4().hex}"):
                pass

    async def test_closed_client_fails_waiters(self, unique_settings: Settings) -> None:
        """Closing the client wakes result() callers with ClientClosed."""
        client = QRouteClient(unique_settings)
        await client.start()
        waiter = asyncio.create_task(client.result("never"))
        await asyncio.sleep(0)
        await client.close()
        with pytest.raises(ClientClosed):
            await waiter

    async def test_submit_only_client_does_not_read(self, unique_settings: Settings) -> None:
        """listen=False: no reader, and result() says so."""
        async with QRouteClient(unique_settings, listen=False) as client:
            await client.submit(job("s-1"))
            with pytest.raises(ClientClosed, match="listen=False"):
                await client.result("s-1")


def old_result(job_id: str) -> Result:
    now = datetime.now(UTC)
    return Result(
        job_id=job_id,
        tenant="t",
        status="succeeded",
        output="old",
        timings=Timings(created_at=now, started_at=now, finished_at=now, queue_ms=0, run_ms=0),
    )


class TestWhereTheReaderStarts:
    async def test_now_skips_everything_already_on_the_topic(self, unique_settings: Settings) -> None:
        """With a batch of old results on the topic (end_offsets is short on Tansu), none is delivered."""
        await publish_results(unique_settings, [old_result(f"old-{i}") for i in range(40)])
        async with QRouteClient(unique_settings) as client:
            stream = client.results()
            await publish_results(unique_settings, [old_result("marker")])
            first = await asyncio.wait_for(anext(stream), 30)
            await stream.aclose()
            assert first.job_id == "marker"
            with pytest.raises(ResultTimeout):
                await client.result("old-39", timeout=0.2)

    async def test_beginning_reads_what_came_before(self, unique_settings: Settings) -> None:
        """results_from="beginning" serves results published before the client started."""
        await publish_results(unique_settings, [old_result(f"past-{i}") for i in range(10)])
        async with QRouteClient(unique_settings, results_from="beginning") as client:
            result = await client.result("past-9", timeout=30)
        assert result.output == "old"


class TestReplyTopic:
    async def test_own_reply_topic(self, unique_settings: Settings) -> None:
        """A client with its own reply topic stamps reply_to, and the worker answers there."""
        reply = unique_settings.topics.results + ".svc"
        admin = make_admin(unique_settings.kafka)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(reply, 2, 1)])
        finally:
            await admin.close()
        async with FakeWorker(unique_settings), QRouteClient(unique_settings, reply_topic=reply) as client:
            prepared = client.prepare(job("r-1"))
            assert prepared.job.reply_to == reply
            result = await client.submit_and_wait(job("r-1"), timeout=30)
        assert result.job_id == "r-1"
        assert await topic_count(unique_settings, unique_settings.topics.results) == 0


class TestSyncClient:
    async def test_round_trip_without_an_event_loop(self, unique_settings: Settings) -> None:
        """The blocking client submits, waits and iterates results from plain threads."""

        def use_sync_client() -> tuple[str, list[str], str, list[str]]:
            with SyncQRouteClient(unique_settings) as sync:
                stream = sync.results()
                first = sync.submit(job("sync-1"))
                many = sync.submit_many([job("sync-2"), job("sync-3")])
                output = sync.result(first, timeout=30).output or ""
                streamed = sorted(next(stream).job_id for _ in range(3))
                return first, many, output, streamed

        async with FakeWorker(unique_settings):
            first, many, output, streamed = await asyncio.to_thread(use_sync_client)
        assert first == "sync-1"
        assert many == ["sync-2", "sync-3"]
        assert output == "answer to sync-1"
        assert streamed == ["sync-1", "sync-2", "sync-3"]

    def test_sync_errors_are_the_same_types(self, unique_settings: Settings) -> None:
        """JobRejected and ResultTimeout surface unchanged through the sync wrapper."""
        with SyncQRouteClient(unique_settings) as sync:
            with pytest.raises(JobRejected):
                sync.submit({"id": "x", "messages": []})
            with pytest.raises(ResultTimeout):
                sync.result("nothing", timeout=0.2)
        with pytest.raises(ClientClosed):
            sync.submit(job("after-close"))


def one_provider_sim() -> SimConfig:
    return SimConfig(
        seed=5,
        providers=[
            SimProvider(
                name="simco",
                family="openai",
                latency=FixedLatency(seconds=0.01),
                models=[
                    SimModel(
                        name="small", input_per_m="0.15", cached_input_per_m="0.015", output_per_m="0.60"
                    )
                ],
            )
        ],
    )


class TestWithTheRealWorker:
    async def test_sdk_round_trip_through_worker_and_simulator(self, unique_settings: Settings) -> None:
        """SDK → jobs topic → real worker → simulated provider → result(): costs match the simulator's bill."""
        async with SimServer(one_provider_sim()) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            async with worker_in_process(settings), QRouteClient(settings) as client:
                ids = await client.submit_many(job(f"real-{i}", batch_id="real") for i in range(20))
                results = await asyncio.gather(*(client.result(i, timeout=60) for i in ids))
            ledger = await sim.ledger()
        assert all(r.status == "succeeded" for r in results)
        assert {(r.provider, r.model) for r in results} == {("simco", "small")}
        assert sum((r.cost_usd for r in results), start=Decimal(0)) == ledger.total_cost
        assert ledger.total_cost > 0
