"""Stopping, handing back and rebalancing without losing or duplicating jobs (real broker)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer

from qroute.codec import encode
from qroute.config import Settings
from qroute.models import Attempt, Job
from qroute.worker.processing import Deferred, Finished
from qroute.worker.run import build_worker, run_worker

from .conftest import ReadRecords
from .test_worker_flow import FakeProcessor, committed, finished_for, job_ids, make_job, publish, wait_for


class SlowOnce(FakeProcessor):
    """Takes `slow_s` the first time it sees `slow_id`; everything else is quick."""

    def __init__(self, slow_id: str, slow_s: float) -> None:
        super().__init__()
        self.slow_id = slow_id
        self.slow_s = slow_s
        self.seen_slow = False

    async def __call__(self, job: Job, prior: tuple[Attempt, ...]) -> Finished | Deferred:
        if job.id == self.slow_id and not self.seen_slow:
            self.seen_slow = True
            await asyncio.sleep(self.slow_s)
            return finished_for(job, prior)
        return await super().__call__(job, prior)


class TestGracefulStop:
    """A graceful stop finishes in-flight work, commits it, and the next member continues without duplicates."""

    async def test_stop_midway_then_resume(
        self, unique_settings: Settings, producer: AIOKafkaProducer, read_records: ReadRecords
    ) -> None:
        """Stop after part of the stream, start a new worker: every job has exactly one result."""
        topics = unique_settings.topics
        n = 300
        high = await publish(producer, topics.jobs, [encode(make_job(f"s-{i}")) for i in range(n)])
        first = build_worker(unique_settings, FakeProcessor(max_sleep_s=0.2), max_in_flight=40)
        run_first = asyncio.create_task(first.run())
        await wait_for(lambda: first.counters.jobs_done >= 60)
        await first.stop()
        await run_first
        done_first = first.counters.jobs_done
        assert first.counters.handed_back == 0
        assert done_first < n

        second = build_worker(unique_settings, FakeProcessor())
        run_second = asyncio.create_task(second.run())
        await wait_for(lambda: second.counters.jobs_done >= n - done_first)
        await second.stop()
        await run_second

        results = await read_records(topics.results, n)
        assert job_ids(results) == Counter({f"s-{i}": 1 for i in range(n)})
        assert second.counters.jobs_done == n - done_first
        assert await committed(unique_settings, topics.jobs, sorted(high)) == {
            p: o + 1 for p, o in high.items()
        }

    async def test_drain_timeout_hands_back(
        self, unique_settings: Settings, producer: AIOKafkaProducer, read_records: ReadRecords
    ) -> None:
        """A job still running at the drain timeout is not published or committed; the next member runs it."""
        topics = unique_settings.topics
        high = await publish(producer, topics.jobs, [encode(make_job("slow"))])
        (partition, offset) = next(iter(high.items()))
        first = build_worker(unique_settings, SlowOnce("slow", slow_s=60), drain_timeout_s=0.3)
        run_first = asyncio.create_task(first.run())
        await wait_for(lambda: first.in_flight == 1)
        await first.stop()
        await run_first
        assert first.counters.handed_back == 1
        assert first.counters.jobs_done == 0
        assert (await committed(unique_settings, topics.jobs, [partition]))[partition] in (None, offset)

        second = build_worker(unique_settings, FakeProcessor())
        run_second = asyncio.create_task(second.run())
        await wait_for(lambda: second.counters.jobs_done >= 1)
        await second.stop()
        await run_second
        assert job_ids(await read_records(topics.results, 1)) == Counter({"slow": 1})


class TestSignals:
    """run_worker stops gracefully on SIGTERM."""

    async def test_sigterm_drains_and_returns(
        self, unique_settings: Settings, producer: AIOKafkaProducer, read_records: ReadRecords
    ) -> None:
        """After SIGTERM, run_worker returns its counters with every published job accounted for."""
        topics = unique_settings.topics
        n = 30
        high = await publish(producer, topics.jobs, [encode(make_job(f"t-{i}")) for i in range(n)])
        running = asyncio.create_task(run_worker(unique_settings, FakeProcessor()))
        results = await read_records(topics.results, n)
        assert len(results) == n  # so the worker is running and its signal handlers are installed
        signal.raise_signal(signal.SIGTERM)
        counters = await asyncio.wait_for(running, timeout=30)
        assert counters.jobs_done == n
        assert await committed(unique_settings, topics.jobs, sorted(high)) == {
            p: o + 1 for p, o in high.items()
        }


class TestRebalance:
    """A member joining mid-stream takes partitions over without losing or duplicating jobs."""

    async def test_second_member_joins(
        self, unique_settings: Settings, producer: AIOKafkaProducer, read_records: ReadRecords
    ) -> None:
        """Two members, a rebalance in the middle: every job exactly once, offsets committed to the end.

        Each member is told its share of the jobs topic (what it paces provider quotas to):
        all of it alone, then parts that add up to the whole.
        """
        topics = unique_settings.topics
        n = 400
        shares_a: list[float] = []
        shares_b: list[float] = []
        first_half = [encode(make_job(f"r-{i}")) for i in range(n // 2)]
        second_half = [encode(make_job(f"r-{i}")) for i in range(n // 2, n)]
        high = await publish(producer, topics.jobs, first_half)
        a = build_worker(
            unique_settings, FakeProcessor(max_sleep_s=0.1), max_in_flight=30, on_share=shares_a.append
        )
        run_a = asyncio.create_task(a.run())
        await wait_for(lambda: a.counters.jobs_done >= 20)
        b = build_worker(
            unique_settings, FakeProcessor(max_sleep_s=0.1), max_in_flight=30, on_share=shares_b.append
        )
        run_b = asyncio.create_task(b.run())
        more = await publish(producer, topics.jobs, second_half)
        for p, o in more.items():
            high[p] = max(high.get(p, -1), o)
        await wait_for(lambda: a.counters.jobs_done + b.counters.jobs_done >= n, timeout_s=60)
        await asyncio.gather(a.stop(), b.stop())
        await asyncio.gather(run_a, run_b)

        assert a.counters.rebalances >= 1
        assert b.counters.jobs_done > 0
        assert shares_a[0] == 1.0
        assert 0 < shares_b[-1] < 1
        assert shares_a[-1] + shares_b[-1] == pytest.approx(1.0)
        results = await read_records(topics.results, n)
        assert job_ids(results) == Counter({f"r-{i}": 1 for i in range(n)})
        assert await committed(unique_settings, topics.jobs, sorted(high)) == {
            p: o + 1 for p, o in high.items()
        }


class TestCommitCadence:
    """Commits follow finished work, not only the clock: a crash repeats little."""

    async def test_count_triggers_commits_between_timer_ticks(
        self, unique_settings: Settings, producer: AIOKafkaProducer
    ) -> None:
        """With the timer an hour away, 60 finished records still commit every 10 (what a crash would repeat)."""
        topics = unique_settings.topics
        n = 60
        high = await publish(producer, topics.jobs, [encode(make_job(f"c-{i}")) for i in range(n)])
        worker = build_worker(
            unique_settings, FakeProcessor(), commit_interval_s=3600.0, commit_every_records=10
        )
        running = asyncio.create_task(worker.run())

        async def not_committed() -> int:
            offsets = await committed(unique_settings, topics.jobs, sorted(high))
            return sum(o + 1 - (offsets[p] or 0) for p, o in high.items())

        try:
            await wait_for(lambda: worker.counters.jobs_done >= n)
            behind = await not_committed()
            for _ in range(50):  # the last count-triggered commit may still be on its way
                if behind < 10:
                    break
                await asyncio.sleep(0.2)
                behind = await not_committed()
        finally:
            await worker.stop()
            await running
        # all but fewer than 10 finished records were committed long before the timer's first tick
        assert worker.counters.commits >= 2  # at least one count-triggered commit, plus the one on stop
        assert behind < 10
