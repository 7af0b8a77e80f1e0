"""Back-pressure: which partitions to pause, given the caps and what is held.

The worker never stops calling `getmany`: with everything paused a fetch stays
pending, so the member keeps counting as alive for `max_poll_interval_ms`
(aiokafka #848). Pausing is how it stops taking work.

Reasons to pause a partition:
- the worker is stopping (drain: take nothing new);
- the global in-flight cap is reached: all partitions, until in-flight falls by
  `resume_gap` (hysteresis: aiokafka's pause drops prefetched records, so
  toggling on every single completion would refetch constantly);
- the partition holds `max_uncommitted` records back from its commit (one slow
  record at the head of a partition holds everything after it);
- it is a delay partition whose head record is not yet due.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class Backpressure(Generic[P]):
    """Decides the paused set; remembers whether the global cap is engaged (hysteresis)."""

    def __init__(self, *, max_in_flight: int, max_uncommitted: int, resume_gap: int | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.max_uncommitted = max_uncommitted
        self.resume_gap = resume_gap if resume_gap is not None else max(1, max_in_flight // 10)
        self._capped = False

    def at_cap(self, in_flight: int) -> bool:
        """Whether the global cap holds all partitions now (updates the hysteresis state)."""
        if in_flight >= self.max_in_flight:
            self._capped = True
        elif in_flight <= self.max_in_flight - self.resume_gap:
            self._capped = False
        return self._capped

    def free_slots(self, in_flight: int) -> int:
        return max(0, self.max_in_flight - in_flight)

    def partition_full(self, uncommittable: int) -> bool:
        return uncommittable >= self.max_uncommitted

    def paused(
        self,
        assigned: Collection[P],
        *,
        in_flight: int,
        stopping: bool,
        held: Collection[P],
        uncommittable: Callable[[P], int],
    ) -> set[P]:
        """The partitions that should be paused now."""
        if stopping or self.at_cap(in_flight):
            return set(assigned)
        return {p for p in assigned if p in held or self.partition_full(uncommittable(p))}
