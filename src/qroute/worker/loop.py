"""The consume loop: many jobs in flight per partition, committed only once published.

One aiokafka consumer (auto-commit off) reads the jobs topic and every delay
topic in one consumer group. Each record becomes an asyncio task; the loop
itself only fetches, dispatches, pauses/resumes and commits:

    getmany ──► dispatch (OffsetTracker ticket) ──► task: admit → process → emit ──► done
       ▲                                                                                │
       └── pause/resume (caps, delay gate) ◄── commit (timer or count): to_commit() ◄──┘

Guarantees (at-least-once):
- an offset is committed only when every record below it on its partition has
  its result and cost record (or dead letter, or delay-topic copy) acknowledged;
- a revoked partition's in-flight jobs get `revoke_timeout_s` to finish, then
  its done prefix is committed and the new owner continues from there;
- `stop()` drains: nothing new is taken, in-flight jobs get `drain_timeout_s`,
  the done prefix is committed and the member leaves the group.
A stop or rebalance whose jobs finish in time produces no duplicates. A job
still running at the timeout is cancelled before it publishes ("handed back"):
its record and the finished records above it on its partition are read again
by the next owner, so those finished ones produce duplicates, as does a crash
(what finished since the last commit: about `commit_every_records` of the done
prefix, or less when the `commit_interval_s` timer comes first, plus records
finished above a still-running one).
Consumers deduplicate by job id (the Kafka key).

The delay consumer is this same consumer: delay topics are subscribed next to
the jobs topic, so their records share the in-flight caps, the offset tracker
and the rebalance handling. A delay partition whose head record is not due is
sought back to that record and paused until it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from qroute.config import Settings, TopicSettings
from qroute.observability.logging import bound
from qroute.worker import headers
from qroute.worker.delay import DelayGate, gate_time
from qroute.worker.emit import Emitter, PublisherClosed
from qroute.worker.flow import Backpressure
from qroute.worker.handler import EMIT_GRACE_S, Record, RecordHandler
from qroute.worker.headers import DelayInfo
from qroute.worker.intake import KnownModel
from qroute.worker.observe import WorkerCounters, WorkerMetrics, WorkerPhase
from qroute.worker.offsets import OffsetTracker, Ticket
from qroute.worker.processing import Processor
from qroute.worker.share import jobs_share

log = structlog.get_logger(__name__)

_FETCH_ERROR_BACKOFF_S = 1.0


@dataclass(slots=True)
class _Running:
    """One dispatched record and the task working on it."""

    ticket: Ticket[TopicPartition]
    task: asyncio.Task[None] | None = None
    in_processor: bool = False
    """True only while the processor runs: the one phase that may be cancelled without a duplicate."""


@dataclass(frozen=True, slots=True)
class _Batch:
    records: dict[TopicPartition, list[Record]]
    epochs: dict[TopicPartition, int | None] = field(default_factory=dict)
    """The tracker epoch of each partition when the batch was returned."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._worker._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._worker._on_assigned(set(assigned))


class Worker:
    """Consumes jobs, runs them through a `Processor`, publishes, commits. One per process.

    The worker owns the consumer and producer it is given: `run()` starts them and
    stops them on the way out. Build the clients unstarted (`qroute.kafka`), the
    consumer without topics and without auto-commit.
    """

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        processor: Processor,
        topics: TopicSettings,
        max_in_flight: int = 512,
        max_uncommitted_per_partition: int = 2_000,
        commit_interval_s: float = 1.0,
        commit_every_records: int = 100,
        drain_timeout_s: float = 30.0,
        revoke_timeout_s: float | None = None,
        max_job_bytes: int = 1024 * 1024,
        fetch_max_records: int = 500,
        poll_timeout_s: float = 1.0,
        known_model: KnownModel | None = None,
        metrics: WorkerMetrics | None = None,
        price_source: str = "none",
        price_version: str = "none",
        crash_retry_delay_s: float | None = None,
        on_share: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            max_in_flight: jobs processed at once over all partitions; at the cap every
                partition is paused until in-flight falls by a tenth.
            max_uncommitted_per_partition: a partition is paused while this many of its
                records are held back from the commit (behind an unfinished one).
            commit_interval_s: how often the done prefixes are committed.
            commit_every_records: commit sooner once the committable prefixes moved this many
                records since the last commit. What a crash repeats is what finished but
                was not committed; the timer alone bounds that by throughput x interval.
            drain_timeout_s: on stop, how long in-flight jobs may take to finish.
            revoke_timeout_s: on a rebalance, how long in-flight jobs of revoked partitions
                may take to finish before they are handed back (default: drain_timeout_s).
                Keep it under the consumer's rebalance timeout.
            max_job_bytes: larger job records are dead-lettered as `oversize`.
            fetch_max_records: most records taken per `getmany`.
            poll_timeout_s: how long one `getmany` waits for data.
            known_model: checks `constraints.allowed_models` names; None accepts all.
            metrics: optional sink (`qroute.observability.metrics.Metrics` fits).
            price_source, price_version: copied into cost records the worker writes itself
                (jobs refused before any attempt).
            crash_retry_delay_s: when the processor raises, retry the job once after this
                long, through a delay topic (default: the smallest delay tier).
            on_share: told this worker's share of the jobs topic's partitions after every
                assignment (`qroute.worker.share`), e.g. `RouteStateBook.set_share`, so
                the group's members together pace to one provider quota.
            clock: wall clock (epoch seconds), for delay gating and latencies.
        """
        self._consumer = consumer
        self._producer = producer
        self._topics = topics
        self._flow: Backpressure[TopicPartition] = Backpressure(
            max_in_flight=max_in_flight, max_uncommitted=max_uncommitted_per_partition
        )
        self._commit_interval_s = commit_interval_s
        self._commit_every_records = commit_every_records
        self._drain_timeout_s = drain_timeout_s
        self._revoke_timeout_s = drain_timeout_s if revoke_timeout_s is None else revoke_timeout_s
        self._fetch_max_records = fetch_max_records
        self._poll_timeout_ms = max(1, round(poll_timeout_s * 1000))
        self._metrics = metrics
        self._on_share = on_share
        self._clock = clock
        self.counters = WorkerCounters()
        self._handler = RecordHandler(
            emitter=Emitter(producer),
            processor=processor,
            topics=topics,
            max_job_bytes=max_job_bytes,
            known_model=known_model,
            counters=self.counters,
            metrics=metrics,
            price_source=price_source,
            price_version=price_version,
            crash_retry_delay_s=crash_retry_delay_s,
            clock=clock,
        )

        self._delay_topics = {topics.delay_topic(tier): tier for tier in sorted(set(topics.delay_tiers_s))}
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._gate: DelayGate[TopicPartition] = DelayGate()
        self._jobs: dict[Ticket[TopicPartition], _Running] = {}
        self._closing: set[TopicPartition] = set()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._drain_deadline = 0.0
        self._stopped = asyncio.Event()
        self._phase: WorkerPhase = "created"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        processor: Processor,
        **options: Any,
    ) -> Worker:
        """A worker with the knobs of `settings.worker` and `settings.topics`; `options` override."""
        w = settings.worker
        knobs: dict[str, Any] = {
            "max_in_flight": w.max_in_flight,
            "max_uncommitted_per_partition": w.max_uncommitted_per_partition,
            "commit_interval_s": w.commit_interval_s,
            "commit_every_records": w.commit_every_records,
            "drain_timeout_s": w.drain_timeout_s,
            "max_job_bytes": w.max_job_bytes,
            **options,
        }
        return cls(consumer=consumer, producer=producer, processor=processor, topics=settings.topics, **knobs)

    # -- state for health and metrics -----------------------------------------------

    @property
    def phase(self) -> WorkerPhase:
        return self._phase

    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    @property
    def assigned(self) -> list[TopicPartition]:
        """Partitions this member owns now (jobs and delay topics)."""
        return self._tracker.partitions

    @property
    def topics_read(self) -> list[str]:
        return [self._topics.jobs, *self._delay_topics]

    # -- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        """Start the clients, consume until `stop()`, drain, commit, leave the group."""
        if self._phase != "created":
            raise RuntimeError("a Worker runs once; build a new one")
        self._phase = "starting"
        try:
            self._consumer.subscribe(topics=self.topics_read, listener=_Listener(self))
            await self._producer.start()
            try:
                await self._consumer.start()
                try:
                    if not self._stopping:
                        self._phase = "running"
                    await self._consume()
                finally:
                    await self._close_consumer()
            finally:
                await self._producer.stop()
        finally:
            self._phase = "stopped"
            self._stopped.set()
            log.info("worker_stopped", **self._summary())

    def request_stop(self) -> None:
        """Begin a graceful stop (safe from a signal handler); `run()` returns when drained."""
        if self._stopping:
            return
        self._stopping = True
        self._drain_deadline = time.monotonic() + self._drain_timeout_s
        if self._phase in ("starting", "running"):
            self._phase = "draining"
        log.info("worker_stopping", in_flight=len(self._jobs), drain_timeout_s=self._drain_timeout_s)
        self._poke()

    async def stop(self) -> None:
        """Stop gracefully and wait until `run()` has finished."""
        self.request_stop()
        if self._phase != "created":
            await self._stopped.wait()

    # -- the loop ------------------------------------------------------------------

    async def _consume(self) -> None:
        fetch: asyncio.Task[_Batch] | None = None
        next_commit = time.monotonic() + self._commit_interval_s
        try:
            while True:
                if self._stopping and (not self._jobs or time.monotonic() >= self._drain_deadline):
                    break
                # A fresh wake-up future before looking at the state: a completion from
                # here on (even during the commit below) ends the wait at once.
                wake = self._wake = asyncio.get_running_loop().create_future()
                self._gate.release_due(self._clock())
                self._reconcile_pauses()
                if fetch is None:
                    fetch = asyncio.create_task(self._fetch())
                if time.monotonic() >= next_commit or self._tracker.advanced >= self._commit_every_records:
                    # the fetch above stays pending meanwhile: the member counts as polling
                    await self._commit()
                    self._report_lag()
                    next_commit = time.monotonic() + self._commit_interval_s
                await asyncio.wait(
                    {fetch, wake}, timeout=self._wait_s(next_commit), return_when="FIRST_COMPLETED"
                )
                if fetch.done():
                    done, fetch = fetch, None
                    try:
                        batch = done.result()
                    except KafkaError as exc:
                        log.warning("fetch_failed", error=type(exc).__name__, detail=str(exc))
                        await asyncio.sleep(_FETCH_ERROR_BACKOFF_S)
                        continue
                    self._dispatch(batch)
        finally:
            if fetch is not None:
                fetch.cancel()
                with suppress(asyncio.CancelledError, KafkaError):
                    await fetch

    def _wait_s(self, next_commit: float) -> float:
        now_m = time.monotonic()
        until = next_commit - now_m
        if self._stopping:
            until = min(until, self._drain_deadline - now_m)
        due = self._gate.next_due()
        if due is not None:
            until = min(until, due - self._clock())
        return max(0.0, until)

    async def _fetch(self) -> _Batch:
        """One `getmany`, sized to the free in-flight slots (at least 1: a fetch must stay pending)."""
        slots = self._flow.free_slots(len(self._jobs))
        records = await self._consumer.getmany(
            timeout_ms=self._poll_timeout_ms, max_records=max(1, min(self._fetch_max_records, slots))
        )
        # Records returned now belong to the current assignment (aiokafka drops older ones).
        # aiokafka awaits between installing a new assignment and calling
        # on_partitions_assigned, so a partition may not be tracked yet: adopt it here, in
        # the same step as the return. An epoch must start at the assignment's first record,
        # or the done prefix would skip records.
        assignment = self._consumer.assignment()
        fresh = [tp for tp in records if self._tracker.epoch(tp) is None and tp in assignment]
        self._tracker.assign(tp for tp in fresh if tp not in self._closing)
        return _Batch(records, {tp: self._tracker.epoch(tp) for tp in records})

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _reconcile_pauses(self) -> None:
        assigned = set(self._consumer.assignment()) - self._closing
        desired = self._flow.paused(
            assigned,
            in_flight=len(self._jobs),
            stopping=self._stopping,
            held=self._gate.held,
            uncommittable=self._tracker.uncommittable,
        )
        paused = set(self._consumer.paused()) & assigned
        if desired - paused:
            self._consumer.pause(*(desired - paused))
        if paused - desired:
            self._consumer.resume(*(paused - desired))

    def _dispatch(self, batch: _Batch) -> None:
        """Start a task per record, or leave records for later (they are fetched again).

        Records not dispatched are never committed: a partition stops at the
        first one it cannot take now, and is sought back to it.
        """
        now = self._clock()
        for tp, records in batch.records.items():
            epoch = batch.epochs.get(tp)
            if epoch is None or epoch != self._tracker.epoch(tp) or tp in self._closing or self._stopping:
                continue  # fetched before a rebalance, or on the way out: the owner reads it again
            tier = self._delay_topics.get(tp.topic)
            for record in records:
                info: DelayInfo | None = None
                if tier is not None:
                    info = headers.read_delay_info(record.headers)
                    arrived = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else now
                    due = gate_time(info.not_before, arrived, tier)
                    if due > now:
                        self._consumer.seek(tp, record.offset)
                        self._consumer.pause(tp)
                        self._gate.hold(tp, due)
                        break
                if self._flow.partition_full(self._tracker.uncommittable(tp)):
                    self._consumer.seek(tp, record.offset)
                    break
                ticket = self._tracker.dispatch(tp, record.offset, epoch=epoch)
                if ticket is None:
                    break
                self.counters.records_dispatched += 1
                running = _Running(ticket)
                self._jobs[ticket] = running
                running.task = asyncio.create_task(self._handle(running, record, info))
        n = len(self._jobs)
        self.counters.max_in_flight_seen = max(self.counters.max_in_flight_seen, n)
        if self._metrics is not None:
            self._metrics.set_in_flight(n)

    # -- one record ------------------------------------------------------------------

    async def _handle(self, running: _Running, record: Record, info: DelayInfo | None) -> None:
        ticket = running.ticket

        def processing(active: bool) -> None:
            running.in_processor = active

        try:
            with bound(topic=record.topic, partition=record.partition, offset=record.offset):
                await self._handler.handle(record, info, processing)
            self._tracker.done(ticket)
        except PublisherClosed:
            log.warning("publish_abandoned", reason="producer closed; the record will be read again")
        except asyncio.CancelledError:
            self.counters.handed_back += 1
            raise
        finally:
            self._jobs.pop(ticket, None)
            if self._metrics is not None:
                self._metrics.set_in_flight(len(self._jobs))
            self._poke()

    # -- commits and rebalances -----------------------------------------------------

    async def _commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        if partitions is None:
            self._tracker.reset_advanced()  # what finishes during this commit counts for the next
        offsets = self._tracker.to_commit(partitions)
        if not offsets:
            return
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
        except KafkaError as exc:
            self.counters.commit_failures += 1
            log.warning("commit_failed", error=type(exc).__name__, detail=str(exc), partitions=len(offsets))
            return
        self._tracker.mark_committed(offsets)
        self.counters.commits += 1
        if self._metrics is not None:
            self._metrics.committed()

    def _report_lag(self) -> None:
        if self._metrics is None:
            return
        for tp in self._tracker.partitions:
            end = self._consumer.highwater(tp)
            position = self._tracker.committable(tp)
            if end is not None and position is not None:
                self._metrics.set_lag(tp.topic, tp.partition, max(0, end - position))

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the revoked partitions' jobs finish (bounded), commit their done prefix, forget them."""
        if not revoked:
            return
        self.counters.rebalances += 1
        self._closing |= revoked
        try:
            mine = [r for r in self._jobs.values() if r.ticket.partition in revoked]
            log.info("partitions_revoked", partitions=len(revoked), in_flight=len(mine))
            await self._settle(mine, self._revoke_timeout_s)
            await self._commit(revoked)
        finally:
            self._tracker.revoke(revoked)
            self._gate.drop(revoked)
            self._closing -= revoked
            if self._metrics is not None:
                for tp in revoked:
                    self._metrics.remove_lag(tp.topic, tp.partition)

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """New epochs, and pauses re-applied at once (every rebalance starts with nothing paused)."""
        self._tracker.assign(tp for tp in assigned if self._tracker.epoch(tp) is None)
        self._reconcile_pauses()
        if self._metrics is not None:
            self._metrics.set_assigned(len(assigned))
        log.info("partitions_assigned", partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        self._report_share(assigned)
        self._poke()

    def _report_share(self, assigned: set[TopicPartition]) -> None:
        if self._on_share is None:
            return
        total = self._consumer.partitions_for_topic(self._topics.jobs)
        if not total:
            return  # metadata not known yet: keep the previous share
        share = jobs_share(assigned, self._topics.jobs, len(total))
        self._on_share(share)
        log.info("quota_share", share=round(share, 4), jobs_partitions=len(total))

    async def _settle(self, jobs: list[_Running], timeout_s: float) -> None:
        """Wait up to `timeout_s` for jobs; then hand back those still processing and give
        publishing ones a few more seconds; cancel whatever is left."""
        tasks = [r.task for r in jobs if r.task is not None]
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=timeout_s)
        for running in jobs:
            if running.task is not None and not running.task.done() and running.in_processor:
                running.task.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=EMIT_GRACE_S)
            for task in still:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("jobs_handed_back", count=len(pending))

    async def _close_consumer(self) -> None:
        """After the loop: settle what is left, commit, leave the group."""
        remaining = max(0.0, self._drain_deadline - time.monotonic()) if self._stopping else 0.0
        await self._settle(list(self._jobs.values()), remaining)
        await self._commit()
        try:
            await self._consumer.stop()
        except KafkaError as exc:
            log.warning("consumer_stop_failed", error=type(exc).__name__)

    def _summary(self) -> dict[str, int]:
        c = self.counters
        return {
            "jobs_done": c.jobs_done,
            "dead_lettered": c.dead_lettered,
            "deferred": c.deferred,
            "handed_back": c.handed_back,
            "commits": c.commits,
        }
