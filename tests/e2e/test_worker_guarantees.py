"""Issue 4's guarantees with the real worker: real broker, real attempt loop, simulator over HTTP.

The integration tests (tests/integration/test_worker_*.py) prove the consume loop
with a fake processor; these run the whole worker as `qroute worker` builds it.
The SIGKILL test with worker processes is in test_worker_processes.py.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from qroute.codec import encode
from qroute.config import Settings
from qroute.kafka import make_producer
from qroute.models import Constraints, CostRecord, DeadLetter, DeadLetterReason, Job, Message
from qroute.sim import SimServer
from qroute.testing import produce_jobs, sim_routes_settings, worker_in_process
from qroute.worker.headers import read_delay_info

from .support import (
    TopicTail,
    committed_and_end,
    job_ids,
    make_jobs,
    read_json,
    read_topic,
    topics_of,
    two_routes,
    with_knobs,
)

pytestmark = pytest.mark.broker


def ids_of(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def with_directive(job: Job, directive: str) -> Job:
    """`job` with a simulator directive appended to its prompt (e.g. `[sim:429*1]`)."""
    (message,) = job.messages
    return job.model_copy(
        update={"messages": [Message(role="user", content=f"{message.content} {directive}")]}
    )


class TestBulkDelivery:
    """A large batch is answered exactly once, and a graceful stop leaves nothing to redo."""

    @pytest.mark.slow
    async def test_2000_jobs_exactly_once_with_exact_costs(self, unique_settings: Settings) -> None:
        """2,000 jobs, the worker stopped gracefully mid-run and replaced: each id once, costs == the bill."""
        jobs = make_jobs(2_000, "bulk")
        expected = Counter(ids_of(jobs))
        async with SimServer(two_routes(latency_s=0.05, cheap_faults={"503": 0.02})) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            async with TopicTail.running(settings, settings.topics.costs) as costs:
                async with worker_in_process(settings) as first:
                    await produce_jobs(settings, jobs)
                    await costs.wait_until(
                        lambda: len(costs.ids) >= 800, timeout_s=120, what="800 cost records"
                    )
                    in_flight_at_stop = first.worker.in_flight
                    await first.worker.stop()  # SIGTERM's path: drain, publish, commit, leave
                answered_by_first = first.worker.counters.jobs_done
                async with worker_in_process(settings) as second:
                    await costs.wait_for_ids(expected, timeout_s=240)
            # the block's exit stopped the second worker gracefully too
            ledger = await sim.ledger(entries=False)

        results = await read_json(settings, settings.topics.results)
        cost_records = await read_json(settings, settings.topics.costs)
        assert job_ids(results) == expected
        assert job_ids(cost_records) == expected
        assert Counter(r["status"] for r in results) == Counter({"succeeded": len(jobs)})
        total = sum((Decimal(c["total_cost_usd"]) for c in cost_records), start=Decimal(0))
        assert total == ledger.total_cost
        assert sum(len(c["attempts"]) for c in cost_records) > len(jobs), "the injected 503s were retried"
        assert in_flight_at_stop > 0, "the first worker was stopped with jobs in flight"
        assert 0 < answered_by_first < len(jobs)
        for running in (first, second):
            assert running.worker.phase == "stopped"
            assert running.worker.counters.handed_back == 0
        committed, ends = await committed_and_end(settings, settings.topics.jobs)
        assert sum(ends.values()) == len(jobs)
        assert {p: committed[p] or 0 for p in ends} == ends, "a restart would read nothing again"


MAX_JOB_BYTES = 4096


REASONS: tuple[DeadLetterReason, ...] = (
    "undecodable",
    "invalid_json",
    "schema_violation",
    "oversize",
    "unknown_model",
)


def poison(i: int) -> tuple[DeadLetterReason, bytes | None]:
    """The i-th bad record: the five input reasons in turn, three shapes of each."""
    good = Job(id=f"p{i}", messages=[Message(role="user", content=f"poison {i}")])
    fields = json.loads(encode(good))

    def allowing(*names: str) -> bytes:
        return json.dumps({**fields, "constraints": {"allowed_models": list(names)}}).encode()

    shapes: dict[DeadLetterReason, tuple[bytes | None, ...]] = {
        "undecodable": (b"\xff\xfe\x00binary", b"caf\xe9", None),
        "invalid_json": (b'{"id": "cut", ', b"not json at all", b"{'single': 'quotes'}"),
        "schema_violation": (
            json.dumps({"id": f"no-messages-{i}"}).encode(),
            json.dumps({**fields, "id": f"bad id {i}"}).encode(),
            b"[1, 2, 3]",
        ),
        "oversize": (
            json.dumps({**fields, "metadata": {"pad": "x" * MAX_JOB_BYTES}}).encode(),
            b"y" * (MAX_JOB_BYTES + 1),
            b"[" + b"1," * MAX_JOB_BYTES + b"1]",
        ),
        "unknown_model": (
            allowing("small", "gpt-9-ultra"),
            allowing("cheap/nope"),
            allowing("premium/large", "claude-0"),
        ),
    }
    reason = REASONS[i % len(REASONS)]
    return reason, shapes[reason][(i // len(REASONS)) % 3]


class TestPoison:
    """Bad records are dead-lettered with their reason and bytes; good ones around them complete."""

    async def test_500_poison_records_among_1000_jobs(self, unique_settings: Settings) -> None:
        """500 bad records of every kind among 1,000 jobs → 500 dead letters, 1,000 results, still running."""
        jobs = make_jobs(1_000, "good")
        bad = [poison(i) for i in range(500)]
        stream: list[tuple[bytes, bytes | None, DeadLetterReason | None]] = [
            (job.id.encode(), encode(job), None) for job in jobs
        ]
        stream += [(f"bad-{i}".encode(), value, reason) for i, (reason, value) in enumerate(bad)]
        random.Random(4).shuffle(stream)
        async with SimServer(two_routes(latency_s=0.01)) as sim:
            settings = with_knobs(
                sim_routes_settings(unique_settings, sim), worker={"max_job_bytes": MAX_JOB_BYTES}
            )
            async with worker_in_process(settings) as running:
                producer = make_producer(settings.kafka)
                await producer.start()
                try:
                    sends = [
                        await producer.send(settings.topics.jobs, value, key=key) for key, value, _ in stream
                    ]
                    written = [await send for send in sends]
                finally:
                    await producer.stop()
                async with (
                    TopicTail.running(settings, settings.topics.results) as results,
                    TopicTail.running(settings, settings.topics.dlq) as dead,
                ):
                    await results.wait_for_ids(ids_of(jobs), timeout_s=120)
                    await dead.wait_until(lambda: dead.count >= len(bad), timeout_s=30, what="dead letters")
                    # still consuming: one more job is answered
                    (late,) = make_jobs(1, "late")
                    await produce_jobs(settings, [late])
                    await results.wait_for_ids([late.id], timeout_s=30)
                    assert running.worker.phase == "running"
                    assert not running.task.done()

        dlq = await read_topic(settings, settings.topics.dlq)
        assert len(dlq) == len(bad)
        letters = {
            (d.source_partition, d.source_offset): d
            for d in (DeadLetter.model_validate_json(r.value) for r in dlq)
        }
        sent_bad = {
            (meta.partition, meta.offset): (value, reason)
            for meta, (_, value, reason) in zip(written, stream, strict=True)
            if reason is not None
        }
        assert letters.keys() == sent_bad.keys(), "one dead letter per bad record, naming where it was read"
        for where, (value, reason) in sent_bad.items():
            letter = letters[where]
            assert letter.reason == reason, (where, letter.message)
            assert letter.message
            assert base64.b64decode(letter.payload_b64) == (value or b"")
            assert letter.source_topic == settings.topics.jobs
        assert Counter(d.reason for d in letters.values()) == Counter(dict.fromkeys(REASONS, 100))
        final = await read_json(settings, settings.topics.results)
        assert job_ids(final) == Counter([*ids_of(jobs), late.id])
        assert all(r["status"] == "succeeded" for r in final)


class TestExpired:
    """A job read after its deadline fails at once, without spending money on a provider call."""

    async def test_expired_jobs_fail_without_a_call(self, unique_settings: Settings) -> None:
        """Jobs whose deadline passed before they were read → failed `expired` results, nothing billed."""
        past = datetime.now(UTC) - timedelta(minutes=5)
        expired = make_jobs(20, "late", constraints=Constraints(deadline=past))
        fresh = make_jobs(5, "fresh")
        async with SimServer(two_routes(latency_s=0.01)) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            async with (
                worker_in_process(settings),
                TopicTail.running(settings, settings.topics.costs) as costs,
            ):
                await produce_jobs(settings, [*expired, *fresh])
                await costs.wait_for_ids(ids_of([*expired, *fresh]), timeout_s=60)
            ledger = await sim.ledger()

        results = {r["job_id"]: r for r in await read_json(settings, settings.topics.results)}
        records = {c["job_id"]: c for c in await read_json(settings, settings.topics.costs)}
        for job in expired:
            assert results[job.id]["status"] == "failed"
            assert results[job.id]["error"]["type"] == "expired"
            assert records[job.id]["attempts"] == []
            assert Decimal(records[job.id]["total_cost_usd"]) == 0
        assert all(results[job.id]["status"] == "succeeded" for job in fresh)
        answers = sum(n for counts in ledger.status_counts.values() for n in counts.values())
        assert answers == len(ledger.entries) == len(fresh), "only the fresh jobs reached the simulator"


class TestRebalance:
    """A worker joining mid-run takes over partitions without losing or repeating a job."""

    async def test_second_worker_joining_mid_run(self, unique_settings: Settings) -> None:
        """A second worker joins while jobs are in flight: both rebalance, every job is answered once."""
        jobs = make_jobs(400, "join")
        async with SimServer(two_routes(latency_s=0.3)) as sim:
            settings = with_knobs(sim_routes_settings(unique_settings, sim), worker={"max_in_flight": 24})
            async with (
                TopicTail.running(settings, settings.topics.results) as results,
                worker_in_process(settings) as first,
            ):
                await produce_jobs(settings, jobs)
                await results.wait_until(lambda: len(results.ids) >= 100, timeout_s=60, what="100 results")
                async with worker_in_process(settings) as second:
                    await results.wait_for_ids(ids_of(jobs), timeout_s=120)

        assert first.worker.counters.rebalances >= 1, "the join revoked the first worker's partitions"
        assert second.worker.counters.jobs_done > 0, "the newcomer took over partitions and worked on them"
        for running in (first, second):
            assert running.worker.counters.handed_back == 0
        final = await read_json(settings, settings.topics.results)
        assert job_ids(final) == Counter(ids_of(jobs)), (
            "nothing lost, and a graceful rebalance repeats nothing"
        )


class TestDeferral:
    """Jobs the cheap route cannot take soon wait on delay topics, then run there, not elsewhere."""

    @pytest.mark.slow
    async def test_deferred_jobs_return_after_not_before_and_stay_cheap(
        self, unique_settings: Settings
    ) -> None:
        """A cheap route at 60 rpm and no deadlines: jobs are parked, come back when due, all run cheap."""
        rate_limited_once = {"defer-1", "defer-4"}
        jobs = [
            with_directive(job, "[sim:429*1@cheap]") if job.id in rate_limited_once else job
            for job in make_jobs(8, "defer")
        ]
        async with SimServer(two_routes(latency_s=0.05, cheap_rpm=60)) as sim:
            settings = with_knobs(
                sim_routes_settings(unique_settings, sim, rpm={"cheap": 60}),
                routing={"defer_threshold_s": 1.0},
                topics={"delay_tiers_s": [1, 5]},
            )
            async with (
                topics_of(settings),
                worker_in_process(settings) as running,
                TopicTail.running(settings, settings.topics.costs) as costs,
            ):
                await produce_jobs(settings, jobs)
                await costs.wait_for_ids(ids_of(jobs), timeout_s=90)
                parked = [
                    record
                    for tier in settings.topics.delay_tiers_s
                    for record in await read_topic(settings, settings.topics.delay_topic(tier))
                ]
            ledger = await sim.ledger()

        assert running.worker.counters.deferred == len(parked) > 0, "every park is a delay-topic record"
        result_list = await read_json(settings, settings.topics.results)
        cost_list = await read_json(settings, settings.topics.costs)
        assert job_ids(result_list) == job_ids(cost_list) == Counter(ids_of(jobs))
        results = {r["job_id"]: r for r in result_list}
        records = {c["job_id"]: CostRecord.model_validate(c) for c in cost_list}
        assert {(r["status"], r["provider"], r["model"]) for r in results.values()} == {
            ("succeeded", "cheap", "small")
        }
        assert ledger.billed("premium") == []
        assert len(ledger.billed("cheap")) == len(jobs)
        assert sum((c.total_cost_usd for c in records.values()), start=Decimal(0)) == ledger.total_cost
        for job_id in rate_limited_once:
            assert [a.outcome for a in records[job_id].attempts] == ["rate_limited", "success"]
        for record in parked:
            info = read_delay_info(record.headers)
            assert info.not_before is not None
            cost = records[record.key.decode()]
            final = cost.attempts[-1]
            assert final.outcome == "success"
            assert final.started_at.timestamp() >= info.not_before - 0.001, "ran before its not-before time"
            assert cost.attempts[: len(info.attempts)] == list(info.attempts), "history kept through deferral"
        assert any(read_delay_info(r.headers).attempts for r in parked), "a job was parked after an attempt"
