"""`QRouteClient`: submit jobs, await their results. The async half of the producer SDK.

    async with QRouteClient(bootstrap="127.0.0.1:9092") as client:
        job_id = await client.submit({"id": "j1", "messages": [{"role": "user", "content": "Hi"}]})
        result = await client.result(job_id, timeout=60)

Publishing goes through a FastStream `KafkaBroker` (acks=all). Results are read by
ONE reader per client from its reply topic and correlated by job id (see
`replies.ReplyRouter`); `result()` never opens a consumer of its own.

Where the reader starts (`results_from`):
- "now" (default): results written after the client started. A job submitted
  through this client can only get its result afterwards, so nothing is missed,
  and results of earlier runs that reused a job id are never mistaken for new ones.
- "beginning": the whole topic; for a client restarted while its jobs were in
  flight. Reads every result ever kept on the topic, so it can take a while.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from pydantic import ValidationError

from qroute.client.connect import jobs_publisher, make_broker
from qroute.client.errors import ClientClosed, JobRejected, ResultTimeout, SubmitFailed
from qroute.client.prepare import JOB_HEADERS, PreparedJob, prepare
from qroute.client.replies import DEFAULT_BUFFER, DEFAULT_STREAM_QUEUE, ReplyRouter, ResultStream
from qroute.client.tail import Start, TopicTail
from qroute.config import KafkaSettings, Settings, load_settings
from qroute.models import Job, Result

log = structlog.get_logger(__name__)

JobInput = Job | Mapping[str, Any]
"""What `submit` accepts: a `Job`, or a mapping validated into one."""

DEFAULT_MAX_PENDING = 1000
"""Jobs `submit_many` keeps sent but unacknowledged at once."""


class QRouteClient:
    """Async producer client. Use as `async with`, or call `start()` and `close()`.

    `settings` (or `bootstrap`, which overrides `settings.kafka.bootstrap_servers`; with
    neither, `load_settings()` reads qroute.toml and `QROUTE_*`) names the broker and topics.
    `reply_topic` defaults to `settings.topics.results`; when set to another topic (it
    must start with one of the workers' `topics.reply_prefixes`), every job without a
    `reply_to` is sent with `reply_to` set to it. `listen=False` makes a submit-only
    client (no reader; `result()` raises `ClientClosed`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        bootstrap: str | None = None,
        reply_topic: str | None = None,
        results_from: Start = "now",
        result_buffer: int = DEFAULT_BUFFER,
        listen: bool = True,
    ) -> None:
        base = settings if settings is not None else (Settings() if bootstrap else load_settings())
        if bootstrap:
            base = base.model_copy(
                update={"kafka": base.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
            )
        self.settings = base
        self.jobs_topic = base.topics.jobs
        self.reply_topic = reply_topic or base.topics.results
        self._stamp_reply_to = self.reply_topic if self.reply_topic != base.topics.results else None
        self._results_from = results_from
        self._listen = listen
        self._result_buffer = result_buffer
        self._router = ReplyRouter(buffer_size=result_buffer)
        self._broker: KafkaBroker | None = None
        self._publisher: DefaultPublisher | None = None
        self._tail: TopicTail | None = None
        self._reader: asyncio.Task[None] | None = None
        self.undecodable_results = 0
        """Records on the reply topic that were not valid results (logged, then skipped)."""

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka

    async def start(self) -> None:
        """Connect the producer and, when listening, position the reply reader ("now" is now)."""
        if self._broker is not None:
            raise RuntimeError("the client is already started")
        self._router = ReplyRouter(buffer_size=self._result_buffer)  # a closed client can start again
        broker = make_broker(self.kafka)
        self._publisher = jobs_publisher(broker, self.jobs_topic)
        self._broker = broker
        try:
            await broker.start()
            if self._listen:
                self._tail = await TopicTail.open(self.kafka, self.reply_topic, start=self._results_from)
                self._reader = asyncio.create_task(self._read_replies(self._tail), name="qroute-replies")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop reading and publishing; waiters get `ClientClosed`. Sent jobs are already acknowledged."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        self._router.close()
        if self._tail is not None:
            await self._tail.close()
            self._tail = None
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- submitting -------------------------------------------------------------------------

    def prepare(self, job: JobInput) -> PreparedJob:
        """Validate and encode without sending; raises `JobRejected`."""
        return prepare(job, reply_to=self._stamp_reply_to, max_bytes=self.settings.worker.max_job_bytes)

    async def submit(self, job: JobInput) -> str:
        """Send one job; returns its id once the broker acknowledged it (acks=all).

        Raises `JobRejected` (nothing sent) or `SubmitFailed` (the broker did not acknowledge).
        """
        prepared = self.prepare(job)
        return await self._confirm(prepared.job.id, await self._send(prepared))

    async def submit_many(
        self, jobs: Iterable[JobInput] | AsyncIterable[JobInput], *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> list[str]:
        """Send many jobs pipelined; returns their ids in input order once all are acknowledged.

        A `JobRejected` carries the `index` of the bad job: every job before it was sent and
        acknowledged, none after it. Validate everything first when you need all-or-nothing.
        """
        return [job_id async for job_id in self.submit_iter(jobs, max_pending=max_pending)]

    async def submit_iter(
        self, jobs: Iterable[JobInput] | AsyncIterable[JobInput], *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> AsyncIterator[str]:
        """Like `submit_many`, yielding each id (in input order) once acknowledged.

        Memory stays bounded: at most `max_pending` jobs are sent but unacknowledged,
        and `jobs` is read lazily, so a generator over a huge file is fine.
        """
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        pending: deque[tuple[str, asyncio.Future[Any]]] = deque()
        index = 0
        try:
            async for item in _aiter(jobs):
                try:
                    prepared = self.prepare(item)
                except JobRejected as exc:
                    while pending:
                        yield await self._confirm(*pending.popleft())
                    exc.index = index
                    raise
                pending.append((prepared.job.id, await self._send(prepared)))
                index += 1
                while pending and (len(pending) >= max_pending or pending[0][1].done()):
                    yield await self._confirm(*pending.popleft())
            while pending:
                yield await self._confirm(*pending.popleft())
        finally:
            for _, future in pending:  # abandoned by the caller: retrieve outcomes so none is logged as lost
                future.add_done_callback(_retrieve)

    async def _send(self, prepared: PreparedJob) -> asyncio.Future[Any]:
        if self._publisher is None or self._broker is None:
            raise ClientClosed("the client is not started")
        try:
            future: asyncio.Future[Any] = await self._publisher.publish(
                prepared.value,
                key=prepared.key,
                headers=JOB_HEADERS,
                correlation_id=prepared.job.id,
                no_confirm=True,
            )
        except KafkaError as exc:
            raise SubmitFailed(prepared.job.id, str(exc) or type(exc).__name__) from exc
        return future

    @staticmethod
    async def _confirm(job_id: str, future: asyncio.Future[Any]) -> str:
        try:
            await future
        except KafkaError as exc:
            raise SubmitFailed(job_id, str(exc) or type(exc).__name__) from exc
        return job_id

    # -- results ----------------------------------------------------------------------------

    # A timeout argument (not asyncio.timeout around the call) so the error is a typed ResultTimeout
    # and the async and sync clients read the same.
    async def result(self, job_id: str, timeout: float | None = None) -> Result:  # noqa: ASYNC109
        """The job's result; waits up to `timeout` seconds (None: forever). Raises `ResultTimeout`.

        Results that arrived before this call are served from a bounded buffer
        (`result_buffer`, oldest dropped first).
        """
        self._require_listening()
        future = self._router.wait_for(job_id)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()
            raise ResultTimeout(job_id, timeout or 0.0) from None
        finally:
            self._router.forget(job_id, future)

    async def submit_and_wait(self, job: JobInput, timeout: float | None = None) -> Result:  # noqa: ASYNC109
        """`submit` then `result`: the whole round trip for one job."""
        return await self.result(await self.submit(job), timeout)

    def results(self, *, max_queue: int = DEFAULT_STREAM_QUEUE) -> ResultStream:
        """Every result arriving on the reply topic from now on (all jobs, not only this client's).

        The stream is registered at once, before the first `__anext__`; close it (or use
        `async with`) when done. Beyond `max_queue` unread results the oldest are dropped.
        """
        self._require_listening()
        return self._router.open_stream(max_queue)

    def _require_listening(self) -> None:
        if not self._listen:
            raise ClientClosed("this client was created with listen=False: it does not read results")
        if self._reader is None:
            raise ClientClosed("the client is not started")

    async def _read_replies(self, tail: TopicTail) -> None:
        try:
            while True:
                for record in await tail.read(timeout_ms=1000):
                    try:
                        result = Result.model_validate_json(record.value or b"")
                    except ValidationError:
                        self.undecodable_results += 1
                        log.warning(
                            "undecodable_result",
                            topic=record.topic,
                            partition=record.partition,
                            offset=record.offset,
                        )
                        continue
                    self._router.deliver(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reader is gone: make every waiter fail instead of hang
            log.error("result_reader_failed", error=type(exc).__name__)
            self._router.close(exc)


async def _aiter(items: Iterable[JobInput] | AsyncIterable[JobInput]) -> AsyncIterator[JobInput]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
