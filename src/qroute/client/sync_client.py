"""`SyncQRouteClient`: the same client for code without an event loop (scripts, Django, Flask).

It runs a `QRouteClient` on a private event loop in a background thread and
forwards each call to it, so the guarantees (acks=all, one shared reply reader,
typed errors) are the async client's. Safe to call from several threads.

    with SyncQRouteClient(bootstrap="127.0.0.1:9092") as client:
        result = client.result(client.submit(job), timeout=60)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self, TypeVar

from qroute.client.async_client import DEFAULT_MAX_PENDING, JobInput, QRouteClient
from qroute.client.errors import ClientClosed
from qroute.client.replies import DEFAULT_STREAM_QUEUE
from qroute.models import Result

T = TypeVar("T")


class SyncQRouteClient:
    """Blocking facade over `QRouteClient`; takes the same arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: QRouteClient | None = None

    def start(self) -> None:
        """Start the loop thread and the client in it."""
        if self._loop is not None:
            raise RuntimeError("the client is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="qroute-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def build() -> QRouteClient:
            client = QRouteClient(*self._args, **self._kwargs)  # aiokafka objects bind to this loop
            await client.start()
            return client

        try:
            self._client = self._call(build())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Close the client, then stop and join the loop thread; idempotent."""
        if self._loop is None:
            return
        if self._client is not None:
            try:
                self._call(self._client.close())
            finally:
                self._client = None
        self._stop_loop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def submit(self, job: JobInput) -> str:
        """Send one job; returns its id once acknowledged. Raises `JobRejected` or `SubmitFailed`."""
        return self._call(self._running().submit(job))

    def submit_many(self, jobs: Iterable[JobInput], *, max_pending: int = DEFAULT_MAX_PENDING) -> list[str]:
        """Send many jobs pipelined; ids in input order. See `QRouteClient.submit_many`."""
        return self._call(self._running().submit_many(jobs, max_pending=max_pending))

    def result(self, job_id: str, timeout: float | None = None) -> Result:
        """The job's result, waiting up to `timeout` seconds; raises `ResultTimeout`."""
        return self._call(self._running().result(job_id, timeout))

    def submit_and_wait(self, job: JobInput, timeout: float | None = None) -> Result:
        return self._call(self._running().submit_and_wait(job, timeout))

    def results(self, *, max_queue: int = DEFAULT_STREAM_QUEUE) -> Iterator[Result]:
        """Results as they arrive, from this call on; stop iterating (or `close()` it) to unsubscribe."""
        client = self._running()

        async def open_stream() -> Any:
            return client.results(max_queue=max_queue)

        stream = self._call(open_stream())

        def iterate() -> Iterator[Result]:
            try:
                while True:
                    try:
                        yield self._call(stream.__anext__())
                    except StopAsyncIteration:
                        return
            finally:
                if self._loop is not None and self._loop.is_running():
                    self._call(stream.aclose())

        return iterate()

    def _running(self) -> QRouteClient:
        if self._client is None:
            raise ClientClosed("the client is not started")
        return self._client

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the client's loop and wait; Ctrl-C while waiting cancels it there."""
        if self._loop is None:
            coro.close()
            raise ClientClosed("the client is not started")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()
