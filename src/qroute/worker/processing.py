"""The seam between the Kafka layer and the attempt loop.

The worker hands a decoded `Job` (plus the attempt history it carried through
earlier deferrals) to a `Processor` and gets back what to do with the record:
publish a `Finished` result and cost record, or park the job on a delay topic
until `Deferred.not_before`. The worker owns delivery; the processor owns routing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qroute.models import Attempt, CostRecord, Job, Result


@dataclass(frozen=True, slots=True)
class Finished:
    """The job is over (succeeded or failed): publish both, then commit."""

    result: Result
    cost: CostRecord


@dataclass(frozen=True, slots=True)
class Deferred:
    """The job should run again no earlier than `not_before` (epoch seconds).

    `attempts` is the history so far; it travels with the job through the delay
    topic so the cost record at the end lists every attempt.
    """

    not_before: float
    attempts: tuple[Attempt, ...] = ()


Processor = Callable[[Job, tuple[Attempt, ...]], Awaitable[Finished | Deferred]]
"""Runs one job. Must not raise for provider trouble; a raise is treated as a bug."""
