"""What the worker reports, and to whom: counters on the worker, plus an optional metrics sink.

`WorkerMetrics` is the slice of `qroute.observability.metrics.Metrics` the consume
loop calls (that class satisfies it); tests and embedders may pass anything with
these methods, or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from qroute.models import DeadLetterReason


class WorkerMetrics(Protocol):
    def job_finished(
        self, status: Literal["succeeded", "failed"], latency_s: float | None = None
    ) -> None: ...
    def dlq(self, reason: DeadLetterReason) -> None: ...
    def deferred(self, tier_s: int) -> None: ...
    def set_in_flight(self, n: int) -> None: ...
    def set_lag(self, topic: str, partition: int, lag: int) -> None: ...
    def remove_lag(self, topic: str, partition: int) -> None: ...
    def committed(self) -> None: ...
    def set_assigned(self, n: int) -> None: ...


WorkerPhase = Literal["created", "starting", "running", "draining", "stopped"]


@dataclass(slots=True)
class WorkerCounters:
    """Totals since start, for health endpoints, tests and benchmarks (cheap to read)."""

    records_dispatched: int = 0
    """Records from the jobs and delay topics handed to a task (redeliveries count again)."""
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    """Results with status failed (including refused reply topics)."""
    dead_lettered: int = 0
    deferred: int = 0
    """Jobs parked on a delay topic (by the processor, a re-park, or a crash retry)."""
    processor_crashes: int = 0
    handed_back: int = 0
    """Jobs cancelled unfinished at a revoke or shutdown; their records will be read again."""
    commits: int = 0
    commit_failures: int = 0
    rebalances: int = 0
    max_in_flight_seen: int = 0

    @property
    def jobs_done(self) -> int:
        """Jobs whose result was published."""
        return self.jobs_succeeded + self.jobs_failed
