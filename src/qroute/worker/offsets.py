"""Which offset each partition may commit while many of its records are in flight.

Records of one partition finish in any order. Kafka keeps one committed offset
per partition ("the next offset to read"), so the worker may only commit up to
the first record that is still unfinished: committing past it would lose that
record if the worker died (at-least-once). This is the scheme of Confluent's
parallel consumer, without its metadata-encoded completions above the gap
(Tansu drops commit metadata).

Each assignment of a partition gets a fresh *epoch*. A completion carries the
epoch of its dispatch; one from a revoked or older assignment is dropped, since
another member may already own the record (a duplicate beats a loss; see
confluentinc/parallel-consumer#777).

Costs: dispatch and completion are O(log n) (a heap of unfinished offsets with
lazy deletion); the committable offset is O(1).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)
"""A partition key: aiokafka's `TopicPartition` in the worker, anything hashable in tests."""


@dataclass(frozen=True, slots=True)
class Ticket(Generic[P]):
    """Proof that a record was dispatched under one assignment epoch; hand it back when done."""

    partition: P
    offset: int
    epoch: int


@dataclass(slots=True)
class _Partition:
    epoch: int
    pending: set[int] = field(default_factory=set)
    heap: list[int] = field(default_factory=list)
    """Dispatched offsets at or above the first unfinished one (finished ones leave lazily)."""
    high: int = -1
    """Highest offset dispatched in this epoch; -1 before the first."""
    committed: int | None = None
    """Last offset committed in this epoch (Kafka convention: the next to read)."""

    def settle(self) -> None:
        """Drop finished offsets from the front of the heap, so heap[0] is unfinished."""
        heap, pending = self.heap, self.pending
        while heap and heap[0] not in pending:
            heapq.heappop(heap)

    def committable(self) -> int | None:
        if self.heap:
            return self.heap[0]
        return self.high + 1 if self.high >= 0 else None


class OffsetTracker(Generic[P]):
    """Per-partition bookkeeping of dispatched and finished offsets. Not thread-safe (asyncio only)."""

    def __init__(self) -> None:
        self._parts: dict[P, _Partition] = {}
        self._epochs = itertools.count(1)
        self._advanced = 0

    # -- assignment -------------------------------------------------------------

    def assign(self, partitions: Iterable[P]) -> None:
        """Start a new epoch for each partition, forgetting what its previous epoch dispatched."""
        for partition in partitions:
            self._parts[partition] = _Partition(epoch=next(self._epochs))

    def revoke(self, partitions: Iterable[P]) -> None:
        """Forget partitions; completions of their outstanding tickets will be dropped."""
        for partition in partitions:
            self._parts.pop(partition, None)

    @property
    def partitions(self) -> list[P]:
        return list(self._parts)

    def epoch(self, partition: P) -> int | None:
        """The partition's current epoch, or None when it is not assigned."""
        state = self._parts.get(partition)
        return None if state is None else state.epoch

    # -- records ----------------------------------------------------------------

    def dispatch(self, partition: P, offset: int, *, epoch: int | None = None) -> Ticket[P] | None:
        """Record that `offset` is being worked on. None if the partition (or `epoch`) is not current.

        Pass the epoch seen when the record was fetched, so records fetched before a
        rebalance are not dispatched under the new assignment.
        """
        state = self._parts.get(partition)
        if state is None or (epoch is not None and epoch != state.epoch):
            return None
        if offset not in state.pending:
            state.pending.add(offset)
            heapq.heappush(state.heap, offset)
        state.high = max(state.high, offset)
        return Ticket(partition, offset, state.epoch)

    def done(self, ticket: Ticket[P]) -> bool:
        """Mark a record finished. False (and no effect) when its epoch is no longer current."""
        state = self._parts.get(ticket.partition)
        if state is None or state.epoch != ticket.epoch or ticket.offset not in state.pending:
            return False
        before = state.committable()
        state.pending.discard(ticket.offset)
        state.settle()
        after = state.committable()
        if before is not None and after is not None:
            self._advanced += after - before
        return True

    def is_current(self, ticket: Ticket[P]) -> bool:
        """Whether a completion of this ticket would still count."""
        state = self._parts.get(ticket.partition)
        return state is not None and state.epoch == ticket.epoch

    # -- commits ----------------------------------------------------------------

    def committable(self, partition: P) -> int | None:
        """The next offset to read such that everything dispatched below it is finished.

        None when nothing was dispatched in this epoch (or the partition is not assigned).
        """
        state = self._parts.get(partition)
        return None if state is None else state.committable()

    def to_commit(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """Offsets that moved past the last commit, per partition (never backwards)."""
        wanted = self._parts.keys() if partitions is None else partitions
        out: dict[P, int] = {}
        for partition in wanted:
            state = self._parts.get(partition)
            if state is None:
                continue
            offset = state.committable()
            if offset is not None and (state.committed is None or offset > state.committed):
                out[partition] = offset
        return out

    @property
    def advanced(self) -> int:
        """How many offsets the committable prefixes moved since `reset_advanced()`.

        What a full commit now would newly cover, and so what a crash before it would
        repeat; the worker commits early when this grows large (`commit_every_records`).
        Records finished above an unfinished one count only once the gap closes.
        """
        return self._advanced

    def reset_advanced(self) -> None:
        """Start counting again (call when a commit of every partition begins)."""
        self._advanced = 0

    def mark_committed(self, offsets: dict[P, int]) -> None:
        """Remember what the broker accepted, so `to_commit` only returns progress."""
        for partition, offset in offsets.items():
            state = self._parts.get(partition)
            if state is not None and (state.committed is None or offset > state.committed):
                state.committed = offset

    # -- back-pressure ----------------------------------------------------------

    def unfinished(self, partition: P) -> int:
        """Records of this partition dispatched and not finished."""
        state = self._parts.get(partition)
        return 0 if state is None else len(state.pending)

    def uncommittable(self, partition: P) -> int:
        """Records held back from the commit: unfinished, or finished above the first unfinished one.

        This is what `max_uncommitted_per_partition` bounds: a single slow record
        holds every later record of its partition uncommitted.
        """
        state = self._parts.get(partition)
        return 0 if state is None else len(state.heap)
