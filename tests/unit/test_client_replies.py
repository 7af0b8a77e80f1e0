"""Reply routing: one reader, many waiters by job id, a bounded buffer, streams that never block it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from qroute.client import ClientClosed
from qroute.client.replies import ReplyRouter
from qroute.models import Result, Timings

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def result(job_id: str, output: str = "ok") -> Result:
    timings = Timings(created_at=NOW, started_at=NOW, finished_at=NOW, queue_ms=0, run_ms=0)
    return Result(job_id=job_id, tenant="t", status="succeeded", output=output, timings=timings)


class TestWaiters:
    async def test_result_goes_to_its_waiter(self) -> None:
        """A waiter gets the result with its job id and no other."""
        router = ReplyRouter()
        a, b = router.wait_for("a"), router.wait_for("b")
        router.deliver(result("b"))
        assert b.done()
        assert b.result().job_id == "b"
        assert not a.done()

    async def test_every_waiter_of_a_job_gets_it(self) -> None:
        """Two callers awaiting the same job both get the result."""
        router = ReplyRouter()
        first, second = router.wait_for("a"), router.wait_for("a")
        router.deliver(result("a"))
        assert first.result() is second.result()
        assert router.waiting == 0

    async def test_forgotten_waiter_leaves_the_result_to_the_buffer(self) -> None:
        """After a caller gives up, a late result is buffered for the next caller."""
        router = ReplyRouter()
        future = router.wait_for("a")
        router.forget("a", future)
        router.deliver(result("a"))
        assert router.buffered == 1
        assert router.wait_for("a").result().job_id == "a"


class TestBuffer:
    async def test_early_result_is_served_later(self) -> None:
        """A result nobody waited for is handed to the first caller, then removed."""
        router = ReplyRouter()
        router.deliver(result("a"))
        assert router.wait_for("a").result().job_id == "a"
        assert router.buffered == 0

    async def test_buffer_drops_the_oldest(self) -> None:
        """Beyond buffer_size the oldest unclaimed results are dropped."""
        router = ReplyRouter(buffer_size=2)
        for job_id in ("a", "b", "c"):
            router.deliver(result(job_id))
        assert router.buffered == 2
        assert not router.wait_for("a").done()
        assert router.wait_for("c").done()

    async def test_duplicate_replaces_the_buffered_copy(self) -> None:
        """At-least-once duplicates do not grow the buffer."""
        router = ReplyRouter()
        router.deliver(result("a", "first"))
        router.deliver(result("a", "second"))
        assert router.buffered == 1
        assert router.wait_for("a").result().output == "second"

    async def test_zero_buffer_keeps_nothing(self) -> None:
        """buffer_size=0 turns buffering off."""
        router = ReplyRouter(buffer_size=0)
        router.deliver(result("a"))
        assert router.buffered == 0


class TestStreams:
    async def test_stream_sees_everything_from_when_it_opened(self) -> None:
        """A stream gets every result delivered after it opened, waiters or not."""
        router = ReplyRouter()
        router.deliver(result("before"))
        stream = router.open_stream()
        router.wait_for("a")
        router.deliver(result("a"))
        router.deliver(result("b"))
        assert [(await anext(stream)).job_id for _ in range(2)] == ["a", "b"]

    async def test_full_stream_drops_oldest_and_counts(self) -> None:
        """An unread stream never blocks delivery: it keeps the newest max_queue results."""
        router = ReplyRouter()
        stream = router.open_stream(max_queue=2)
        for job_id in ("a", "b", "c"):
            router.deliver(result(job_id))
        assert stream.dropped == 1
        assert [(await anext(stream)).job_id for _ in range(2)] == ["b", "c"]

    async def test_closed_stream_ends_and_unsubscribes(self) -> None:
        """After aclose() iteration stops and the router no longer feeds the stream."""
        router = ReplyRouter()
        async with router.open_stream() as stream:
            pass
        router.deliver(result("a"))
        assert [r async for r in stream] == []


class TestClose:
    async def test_close_fails_waiters_and_ends_streams(self) -> None:
        """Closing wakes every waiter with ClientClosed and ends every stream."""
        router = ReplyRouter()
        future = router.wait_for("a")
        stream = router.open_stream()
        router.close()
        with pytest.raises(ClientClosed):
            await future
        assert [r async for r in stream] == []

    async def test_reader_failure_is_the_cause(self) -> None:
        """When the reader died, waiters get ClientClosed naming and chaining the cause."""
        router = ReplyRouter()
        router.close(RuntimeError("broker gone"))
        future = router.wait_for("late")
        with pytest.raises(ClientClosed, match="broker gone") as caught:
            await future
        assert isinstance(caught.value.__cause__, RuntimeError)

    async def test_waiting_resumes_a_sleeping_task(self) -> None:
        """A task blocked on a waiter is woken by delivery (not polled)."""
        router = ReplyRouter()
        task = asyncio.create_task(asyncio.wait_for(router.wait_for("a"), 5))
        await asyncio.sleep(0)
        router.deliver(result("a"))
        assert (await task).job_id == "a"
