"""One record, start to finish: admit → process → publish (result, delay-topic copy or dead letter).

`RecordHandler.handle` returns normally once whatever the record turned into is
acknowledged by the broker; only then may its offset count as done. It never
raises for bad input, refused reply topics or processor bugs; it raises
`PublisherClosed` when the producer is gone (the record stays unfinished) and
`CancelledError` when the worker hands the job back.

A processor that raises is a bug, not a provider problem. The job is retried
once through the smallest delay tier (header `qroute-crashes`); a second raise
dead-letters it with reason `processing_error`, original bytes included, so it
can be replayed once the bug is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from qroute.config import TopicSettings
from qroute.models import Attempt, DeadLetter, Job
from qroute.observability.logging import job_context
from qroute.worker import headers
from qroute.worker.delay import pick_tier
from qroute.worker.emit import Emitter, Outgoing, PublishRejected, dead_letter_record, result_records
from qroute.worker.headers import DelayInfo, SourceRef
from qroute.worker.intake import KnownModel, admit, dead_letter, refused_reply, reply_topic
from qroute.worker.observe import WorkerCounters, WorkerMetrics
from qroute.worker.processing import Deferred, Finished, Processor

log = structlog.get_logger(__name__)

Record = Any
"""An aiokafka `ConsumerRecord[bytes, bytes]` (aiokafka ships no type information)."""

EMIT_GRACE_S = 5.0
"""After a drain or revoke timeout, how long a job already publishing may still finish.

Cancelling it mid-publish could leave a result on the broker with its offset
uncommitted: a duplicate after redelivery. Acks usually take milliseconds."""


class RecordHandler:
    """Turns one consumed record into acknowledged output. Shared by all of a worker's tasks."""

    def __init__(
        self,
        *,
        emitter: Emitter,
        processor: Processor,
        topics: TopicSettings,
        max_job_bytes: int,
        known_model: KnownModel | None,
        counters: WorkerCounters,
        metrics: WorkerMetrics | None = None,
        price_source: str = "none",
        price_version: str = "none",
        crash_retry_delay_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._emitter = emitter
        self._processor = processor
        self._topics = topics
        self._tiers = sorted(set(topics.delay_tiers_s))
        self._max_job_bytes = max_job_bytes
        self._known_model = known_model
        self._counters = counters
        self._metrics = metrics
        self._price_source = price_source
        self._price_version = price_version
        self._crash_retry_delay_s = self._tiers[0] if crash_retry_delay_s is None else crash_retry_delay_s
        self._clock = clock

    async def handle(
        self, record: Record, info: DelayInfo | None, processing: Callable[[bool], None]
    ) -> None:
        """Handle a record from the jobs topic (`info` None) or a due delay-topic record.

        `processing(True/False)` brackets the processor call: the one phase the
        worker may cancel without risking a duplicate.
        """
        here = SourceRef(record.topic, record.partition, record.offset)
        source = info.source if info is not None and info.source is not None else here
        traceparent = headers.get(record.headers, headers.TRACEPARENT)
        if info is not None and info.problem:
            log.warning("delay_headers_unreadable", problem=info.problem)
        admitted = admit(record.value, source, max_bytes=self._max_job_bytes, known_model=self._known_model)
        if isinstance(admitted, DeadLetter):
            await self._dead_letter(admitted, traceparent)
            return
        job = admitted
        prior = info.attempts if info is not None else ()
        crashes = info.crashes if info is not None else 0
        with job_context(job):
            if info is not None and info.not_before is not None and info.not_before > self._clock():
                # due at the end of its tier's span but must wait longer: park it again
                await self._park(job, record.value, info.not_before, prior, source, crashes, traceparent)
                return
            reply = reply_topic(
                job, allowed_prefixes=self._topics.reply_prefixes, default=self._topics.results
            )
            if reply is None:
                refusal = refused_reply(
                    job,
                    allowed_prefixes=self._topics.reply_prefixes,
                    price_source=self._price_source,
                    price_version=self._price_version,
                )
                await self._emit(job, record.value, refusal, self._topics.results, source, traceparent)
                return
            processing(True)
            try:
                outcome = await self._processor(job, prior)
            except Exception as exc:  # a processor bug: retry once via a delay topic, then dead-letter
                processing(False)
                await self._crashed(job, record.value, exc, prior, source, crashes + 1, traceparent)
                return
            processing(False)
            if isinstance(outcome, Deferred):
                await self._park(
                    job, record.value, outcome.not_before, outcome.attempts, source, 0, traceparent
                )
            else:
                await self._emit(job, record.value, outcome, reply, source, traceparent)

    async def _emit(
        self,
        job: Job,
        raw: bytes | None,
        finished: Finished,
        reply: str,
        source: SourceRef,
        traceparent: bytes | None,
    ) -> None:
        records = result_records(
            finished.result,
            finished.cost,
            reply_topic=reply,
            costs_topic=self._topics.costs,
            traceparent=traceparent,
        )
        # A reply topic the producer chose that does not exist must not stall the
        # partition: its result goes to the default results topic instead.
        fallback = {reply: self._topics.results} if reply != self._topics.results else None
        try:
            await self._emitter.publish(records, fallback=fallback)
        except PublishRejected as exc:
            await self._dead_letter(
                dead_letter(
                    raw,
                    source,
                    "processing_error",
                    f"the result could not be published: {exc}",
                    job_id=job.id,
                ),
                traceparent,
            )
            return
        result = finished.result
        if result.status == "succeeded":
            self._counters.jobs_succeeded += 1
        else:
            self._counters.jobs_failed += 1
        if self._metrics is not None:
            self._metrics.job_finished(result.status, self._clock() - job.created_at.timestamp())
        log.info(
            "job_finished",
            status=result.status,
            error=result.error.type if result.error else None,
            provider=result.provider,
            model=result.model,
            attempts=len(finished.cost.attempts),
            cost_usd=str(finished.cost.total_cost_usd),
            reply_topic=reply,
        )

    async def _park(
        self,
        job: Job,
        raw: bytes | None,
        not_before: float,
        attempts: Sequence[Attempt],
        source: SourceRef,
        crashes: int,
        traceparent: bytes | None,
    ) -> None:
        """Publish the original job bytes to the delay tier covering the wait."""
        tier = pick_tier(not_before - self._clock(), self._tiers)
        record = Outgoing(
            self._topics.delay_topic(tier),
            raw or b"",
            job.id.encode(),
            headers.delay_headers(
                not_before=not_before,
                attempts=attempts,
                source=source,
                crashes=crashes,
                traceparent=traceparent,
            ),
        )
        try:
            await self._emitter.publish([record])
        except PublishRejected as exc:
            await self._dead_letter(
                dead_letter(raw, source, "processing_error", f"could not park the job: {exc}", job_id=job.id),
                traceparent,
            )
            return
        self._counters.deferred += 1
        if self._metrics is not None:
            self._metrics.deferred(tier)
        log.info("job_deferred", tier_s=tier, wait_s=round(max(0.0, not_before - self._clock()), 3))

    async def _crashed(
        self,
        job: Job,
        raw: bytes | None,
        exc: Exception,
        attempts: Sequence[Attempt],
        source: SourceRef,
        crashes: int,
        traceparent: bytes | None,
    ) -> None:
        self._counters.processor_crashes += 1
        log.error("processor_raised", error=type(exc).__name__, crashes=crashes, exc_info=exc)
        if crashes <= 1:
            not_before = self._clock() + self._crash_retry_delay_s
            await self._park(job, raw, not_before, attempts, source, crashes, traceparent)
            return
        message = (
            f"the processor raised {type(exc).__name__} on {crashes} runs of this job; see the worker logs"
        )
        await self._dead_letter(
            dead_letter(raw, source, "processing_error", message, job_id=job.id), traceparent
        )

    async def _dead_letter(self, letter: DeadLetter, traceparent: bytes | None) -> None:
        record = dead_letter_record(letter, dlq_topic=self._topics.dlq, traceparent=traceparent)
        try:
            await self._emitter.publish([record])
        except PublishRejected as exc:
            # Nowhere left to put it; holding the partition forever would be worse.
            log.error("dead_letter_dropped", reason=letter.reason, job_id=letter.job_id, error=str(exc))
            return
        self._counters.dead_lettered += 1
        if self._metrics is not None:
            self._metrics.dlq(letter.reason)
        log.warning("dead_lettered", reason=letter.reason, job_id=letter.job_id, message=letter.message)
