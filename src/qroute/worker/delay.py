"""Delay topics: parking jobs that must wait without blocking their partition.

One topic per delay tier (`<prefix>.<seconds>s`). A job that must wait `w`
seconds goes to the smallest tier `t >= w` (or the largest tier). A delay
partition is read in order: while its head record is not due the partition is
sought back to it and paused, then resumed when it is (Spring Kafka's
retry-topic pattern; Uber's reprocessing queues). Separate tiers keep short
waits from queueing behind long ones.

A record's *gate time* is the earlier of its not-before and its arrival plus
the tier span. Gate times in one partition are not strictly ordered (waits
within a tier differ), so a record may wait behind its head, but never past
its own arrival plus the tier span: a deferred job runs at most one tier span
after it was parked. When a wait is longer than the largest tier, the record
comes due at the end of the span with its not-before still ahead: the worker
parks it again rather than letting it hold up the records behind it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


def pick_tier(wait_s: float, tiers: Sequence[int]) -> int:
    """The smallest tier that covers `wait_s`, or the largest tier when none does."""
    ordered = sorted(tiers)
    for tier in ordered:
        if tier >= wait_s:
            return tier
    return ordered[-1]


def gate_time(not_before: float | None, arrived_at: float, tier_s: int) -> float:
    """When a delay record should be looked at again (epoch seconds)."""
    span_end = arrived_at + tier_s
    return span_end if not_before is None else min(not_before, span_end)


class DelayGate(Generic[P]):
    """Delay partitions held (paused) until their head record is due."""

    def __init__(self) -> None:
        self._until: dict[P, float] = {}

    def hold(self, partition: P, until: float) -> None:
        self._until[partition] = until

    def release_due(self, now: float) -> list[P]:
        """Partitions whose head is due; they are no longer held."""
        due = [p for p, until in self._until.items() if until <= now]
        for partition in due:
            del self._until[partition]
        return due

    def drop(self, partitions: Iterable[P]) -> None:
        """Forget partitions (revoked): a new owner re-reads their head and holds again."""
        for partition in partitions:
            self._until.pop(partition, None)

    def next_due(self) -> float | None:
        return min(self._until.values(), default=None)

    @property
    def held(self) -> frozenset[P]:
        return frozenset(self._until)
