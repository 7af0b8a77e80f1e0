"""Correlating results with the callers waiting for them: one reader, many waiters, by job id.

The client reads its reply topic once and hands every `Result` to the `ReplyRouter`:
- a caller in `result(job_id)` gets it through a future keyed by job id;
- a result nobody waits for yet is kept in a bounded buffer (oldest dropped first),
  so `submit()` then `result()` works even when the worker is faster than the caller;
- every open `ResultStream` (`client.results()`) also gets a copy.

Nothing here blocks the reader: a stream that is not read keeps at most
`max_queue` results and drops the oldest beyond that (counted in `dropped`), so a
slow or forgotten iterator can never stall `result()` for everyone else. A
consumer that must see every result with back-pressure should read the topic
with its own Kafka consumer.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import structlog

from qroute.client.errors import ClientClosed
from qroute.models import Result

log = structlog.get_logger(__name__)

DEFAULT_BUFFER = 10_000
"""Results kept for jobs nobody waits for yet."""
DEFAULT_STREAM_QUEUE = 10_000
"""Results an unread `ResultStream` holds before it drops the oldest."""


class ResultStream:
    """Results as they arrive, from the moment the stream was opened. Close it when done.

    Use as `async for result in stream` or `async with client.results() as stream`.
    """

    def __init__(self, router: ReplyRouter, max_queue: int) -> None:
        self._router = router
        self._max = max_queue
        self._queue: asyncio.Queue[Result | None] = asyncio.Queue()
        self._closed = False
        self.dropped = 0
        """Results dropped because the queue was full (the reader never waits for a stream)."""

    def _offer(self, result: Result) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._max:
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1:
                log.warning("result_stream_dropping", max_queue=self._max)
        self._queue.put_nowait(result)

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Result]:
        return self

    async def __anext__(self) -> Result:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Stop receiving; results still queued are discarded."""
        self._router._streams.discard(self)
        self._end()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ReplyRouter:
    """Hands each incoming result to its waiters, the buffer and the open streams."""

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER) -> None:
        if buffer_size < 0:
            raise ValueError("buffer_size must be >= 0")
        self._buffer_size = buffer_size
        self._buffer: OrderedDict[str, Result] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Result]]] = {}
        self._streams: set[ResultStream] = set()
        self._closed: BaseException | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiters.values())

    def deliver(self, result: Result) -> None:
        """Route one result. Duplicates (at-least-once delivery) are routed like any other."""
        futures = self._waiters.pop(result.job_id, [])
        delivered = False
        for future in futures:
            if not future.done():
                future.set_result(result)
                delivered = True
        if not delivered and self._buffer_size:
            self._buffer[result.job_id] = result
            self._buffer.move_to_end(result.job_id)
            while len(self._buffer) > self._buffer_size:
                self._buffer.popitem(last=False)
        for stream in self._streams:
            stream._offer(result)

    def wait_for(self, job_id: str) -> asyncio.Future[Result]:
        """A future for the job's result; already done when the result was buffered."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        buffered = self._buffer.pop(job_id, None)
        if buffered is not None:
            future.set_result(buffered)
        elif self._closed is not None:
            future.set_exception(self._closed_error())
        else:
            self._waiters.setdefault(job_id, []).append(future)
        return future

    def forget(self, job_id: str, future: asyncio.Future[Result]) -> None:
        """Stop tracking a future (its caller gave up); a later result goes to the buffer."""
        futures = self._waiters.get(job_id)
        if futures is None:
            return
        if future in futures:
            futures.remove(future)
        if not futures:
            del self._waiters[job_id]

    def open_stream(self, max_queue: int = DEFAULT_STREAM_QUEUE) -> ResultStream:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        stream = ResultStream(self, max_queue)
        if self._closed is not None:
            stream._end()
        else:
            self._streams.add(stream)
        return stream

    def close(self, cause: BaseException | None = None) -> None:
        """Fail every waiter with `ClientClosed` and end every stream; idempotent."""
        if self._closed is not None:
            return
        self._closed = cause or ClientClosed("the client was closed")
        error = self._closed_error()
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self._waiters.clear()
        for stream in self._streams:
            stream._end()
        self._streams.clear()

    def _closed_error(self) -> ClientClosed:
        cause = self._closed
        if isinstance(cause, ClientClosed):
            return cause
        error = ClientClosed(f"the result reader stopped: {type(cause).__name__}: {cause}")
        error.__cause__ = cause
        return error
