"""Bulk submission: send a stream of jobs and, optionally, collect their results into a writer.

The result stream is opened before the first job is sent, so no result can slip
past; results for other jobs on the shared reply topic, and duplicates, are
ignored by the writer. Progress (sent, succeeded, failed, exact spend) is reported
through a callback so the CLI can draw it and a library caller can log it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from qroute.batchfile.writer import ResultsWriter
from qroute.client.async_client import DEFAULT_MAX_PENDING, JobInput, QRouteClient
from qroute.client.replies import ResultStream
from qroute.models import Result
from qroute.money import ZERO


@dataclass
class BatchProgress:
    """Counts so far. `spend` is the exact sum of the results' `cost_usd`."""

    total: int
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    spend: Decimal = ZERO
    failures: dict[str, int] = field(default_factory=dict)
    """Failed results by failure type."""

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def count(self, result: Result) -> None:
        self.spend += result.cost_usd
        if result.status == "succeeded":
            self.succeeded += 1
        else:
            self.failed += 1
            kind = result.error.type if result.error else "failed"
            self.failures[kind] = self.failures.get(kind, 0) + 1


@dataclass(frozen=True)
class BatchOutcome:
    """How a bulk run ended. `missing`: expected jobs without a result (only when waiting)."""

    progress: BatchProgress
    missing: list[str]
    timed_out: bool


ProgressCallback = Callable[[BatchProgress], None]


async def run_batch(
    client: QRouteClient,
    jobs: Iterable[JobInput] | AsyncIterable[JobInput],
    *,
    total: int,
    writer: ResultsWriter | None = None,
    on_progress: ProgressCallback | None = None,
    wait_timeout_s: float | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> BatchOutcome:
    """Send `jobs` (`total` of them); with a `writer`, wait until each has a result or the timeout.

    `wait_timeout_s` counts from when the last job was acknowledged. Raises what
    `submit_iter` raises (`JobRejected`, `SubmitFailed`) after the jobs before it were sent.
    """
    progress = BatchProgress(total)
    notify = on_progress or (lambda _: None)
    stream = client.results(max_queue=max(total, 1)) if writer is not None else None
    collector = (
        asyncio.create_task(_collect(stream, writer, progress, notify), name="qroute-collect")
        if stream is not None and writer is not None
        else None
    )
    timed_out = False
    try:
        async for _ in client.submit_iter(jobs, max_pending=max_pending):
            progress.sent += 1
            notify(progress)
        if collector is not None:
            try:
                async with asyncio.timeout(wait_timeout_s):
                    await asyncio.shield(collector)
            except TimeoutError:
                timed_out = True
    finally:
        if collector is not None:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
        if stream is not None:
            await stream.aclose()
    missing = writer.missing() if writer is not None else []
    return BatchOutcome(progress, missing, timed_out)


async def _collect(
    stream: ResultStream, writer: ResultsWriter, progress: BatchProgress, notify: ProgressCallback
) -> None:
    if progress.total == 0:
        return
    async for result in stream:
        if writer.add(result):
            progress.count(result)
            notify(progress)
            if writer.received >= progress.total:
                return
