"""OffsetTracker: what may be committed while records finish out of order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qroute.worker.offsets import OffsetTracker, Ticket

TP = ("jobs", 0)
OTHER = ("jobs", 1)


def _tracker(*partitions: tuple[str, int]) -> OffsetTracker[tuple[str, int]]:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    tracker.assign(partitions or (TP,))
    return tracker


def _dispatch(tracker: OffsetTracker[tuple[str, int]], *offsets: int) -> list[Ticket[tuple[str, int]]]:
    tickets = [tracker.dispatch(TP, offset) for offset in offsets]
    assert all(t is not None for t in tickets)
    return [t for t in tickets if t is not None]


class TestCommittable:
    """The committable offset is the first unfinished one, or one past the last dispatched."""

    def test_nothing_dispatched(self) -> None:
        """A partition with nothing dispatched has nothing to commit."""
        tracker = _tracker()
        assert tracker.committable(TP) is None
        assert tracker.to_commit() == {}

    def test_unfinished_record_holds_the_commit(self) -> None:
        """A dispatched but unfinished first record keeps the commit at its own offset."""
        tracker = _tracker()
        _dispatch(tracker, 0, 1, 2)
        assert tracker.committable(TP) == 0

    def test_completion_above_a_gap_does_not_advance(self) -> None:
        """A completion above an unfinished record does not advance the committable offset."""
        tracker = _tracker()
        t0, _t1, t2 = _dispatch(tracker, 0, 1, 2)
        assert tracker.done(t2)
        assert tracker.committable(TP) == 0
        assert tracker.done(t0)
        assert tracker.committable(TP) == 1

    def test_all_done_commits_past_the_last(self) -> None:
        """When everything is finished the commit is one past the highest dispatched offset."""
        tracker = _tracker()
        for ticket in reversed(_dispatch(tracker, 5, 6, 7)):
            tracker.done(ticket)
        assert tracker.committable(TP) == 8
        assert tracker.to_commit() == {TP: 8}

    def test_offset_gaps_are_skipped(self) -> None:
        """Offsets never dispatched (compaction, transaction markers) do not block the commit."""
        tracker = _tracker()
        for ticket in _dispatch(tracker, 3, 10, 11):
            tracker.done(ticket)
        assert tracker.committable(TP) == 12

    def test_partitions_are_independent(self) -> None:
        """An unfinished record on one partition does not hold another partition's commit."""
        tracker = _tracker(TP, OTHER)
        tracker.dispatch(TP, 0)
        other = tracker.dispatch(OTHER, 0)
        assert other is not None
        tracker.done(other)
        assert tracker.to_commit() == {TP: 0, OTHER: 1}


class TestCommitProgress:
    """to_commit reports only progress since the last commit and never goes backwards."""

    def test_committed_offset_not_repeated(self) -> None:
        """After mark_committed the same offset is not offered again."""
        tracker = _tracker()
        (ticket,) = _dispatch(tracker, 0)
        tracker.done(ticket)
        tracker.mark_committed(tracker.to_commit())
        assert tracker.to_commit() == {}

    def test_new_progress_offered(self) -> None:
        """Completions after a commit are offered in the next commit."""
        tracker = _tracker()
        first, second = _dispatch(tracker, 0, 1)
        tracker.done(first)
        tracker.mark_committed(tracker.to_commit())
        tracker.done(second)
        assert tracker.to_commit() == {TP: 2}

    def test_only_requested_partitions(self) -> None:
        """to_commit(partitions) limits the answer to those partitions."""
        tracker = _tracker(TP, OTHER)
        for tp in (TP, OTHER):
            ticket = tracker.dispatch(tp, 0)
            assert ticket is not None
            tracker.done(ticket)
        assert tracker.to_commit([OTHER]) == {OTHER: 1}


class TestEpochs:
    """Completions from a revoked or older assignment never count."""

    def test_unassigned_partition_refuses_dispatch(self) -> None:
        """Dispatching on a partition that is not assigned returns None."""
        tracker = _tracker()
        assert tracker.dispatch(OTHER, 0) is None

    def test_revoked_completion_dropped(self) -> None:
        """A completion arriving after its partition was revoked is dropped."""
        tracker = _tracker()
        (ticket,) = _dispatch(tracker, 0)
        tracker.revoke([TP])
        assert not tracker.done(ticket)
        assert tracker.committable(TP) is None

    def test_reassigned_partition_ignores_old_epoch(self) -> None:
        """After revoke and re-assign, an old ticket for the same offset does not count."""
        tracker = _tracker()
        (old,) = _dispatch(tracker, 0)
        tracker.revoke([TP])
        tracker.assign([TP])
        (new,) = _dispatch(tracker, 0)
        assert old.epoch != new.epoch
        assert not tracker.done(old)
        assert tracker.committable(TP) == 0
        assert tracker.done(new)
        assert tracker.committable(TP) == 1

    def test_dispatch_with_stale_epoch_refused(self) -> None:
        """A record fetched under an older epoch is not dispatched under the new one."""
        tracker = _tracker()
        fetched_epoch = tracker.epoch(TP)
        tracker.assign([TP])
        assert tracker.dispatch(TP, 0, epoch=fetched_epoch) is None
        assert tracker.dispatch(TP, 0, epoch=tracker.epoch(TP)) is not None

    def test_double_completion_is_idempotent(self) -> None:
        """Completing the same ticket twice reports False the second time."""
        tracker = _tracker()
        (ticket,) = _dispatch(tracker, 0)
        assert tracker.done(ticket)
        assert not tracker.done(ticket)


class TestBackPressureCounts:
    """Counts that drive pausing: unfinished records and records held back from the commit."""

    def test_finished_above_gap_still_uncommittable(self) -> None:
        """A finished record above an unfinished one still counts as held back."""
        tracker = _tracker()
        _t0, t1, _t2 = _dispatch(tracker, 0, 1, 2)
        tracker.done(t1)
        assert tracker.unfinished(TP) == 2
        assert tracker.uncommittable(TP) == 3

    def test_prefix_done_releases(self) -> None:
        """Finishing the head releases every finished record behind it."""
        tracker = _tracker()
        t0, t1, _t2 = _dispatch(tracker, 0, 1, 2)
        tracker.done(t1)
        tracker.done(t0)
        assert tracker.uncommittable(TP) == 1


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=200, unique=True),
    data=st.data(),
)
def test_any_completion_order_commits_exactly_the_done_prefix(
    offsets: list[int], data: st.DataObject
) -> None:
    """For every completion order, the committable offset equals the first unfinished dispatched one."""
    offsets.sort()
    tracker = _tracker()
    tickets = _dispatch(tracker, *offsets)
    order = data.draw(st.permutations(tickets))
    finished: set[int] = set()
    for ticket in order:
        tracker.done(ticket)
        finished.add(ticket.offset)
        unfinished = [o for o in offsets if o not in finished]
        expected = unfinished[0] if unfinished else offsets[-1] + 1
        assert tracker.committable(TP) == expected


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=100, unique=True),
    data=st.data(),
)
def test_advanced_counts_exactly_how_far_the_commit_moved(offsets: list[int], data: st.DataObject) -> None:
    """`advanced` is always the distance the committable offset moved since the last reset."""
    offsets.sort()
    tracker = _tracker()
    tickets = _dispatch(tracker, *offsets)
    order = data.draw(st.permutations(tickets))
    reset_after = data.draw(st.integers(min_value=0, max_value=len(order)))
    start = offsets[0]
    for i, ticket in enumerate(order):
        if i == reset_after:
            tracker.reset_advanced()
            start = tracker.committable(TP) or start
        tracker.done(ticket)
        assert tracker.advanced == (tracker.committable(TP) or 0) - start


def test_advanced_ignores_stale_and_repeated_completions() -> None:
    """A completion from a revoked epoch or a second completion of one ticket moves nothing."""
    tracker = _tracker()
    (t0,) = _dispatch(tracker, 0)
    assert tracker.done(t0)
    assert tracker.advanced == 1
    assert not tracker.done(t0)
    (t1,) = _dispatch(tracker, 1)
    tracker.revoke([TP])
    tracker.assign([TP])
    assert not tracker.done(t1)
    assert tracker.advanced == 1


class TrackerMachine(RuleBasedStateMachine):
    """Random dispatches, completions (current and stale), revocations and commits on two partitions."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
        self.tracker.assign([TP, OTHER])
        self.next_offset = {TP: 0, OTHER: 0}
        self.dispatched: dict[tuple[str, int], list[int]] = {TP: [], OTHER: []}
        self.done_offsets: dict[tuple[str, int], set[int]] = {TP: set(), OTHER: set()}
        self.outstanding: list[Ticket[tuple[str, int]]] = []
        self.committed: dict[tuple[str, int], int] = {}

    @rule(tp=st.sampled_from([TP, OTHER]), gap=st.integers(min_value=0, max_value=3))
    def dispatch(self, tp: tuple[str, int], gap: int) -> None:
        if self.tracker.epoch(tp) is None:
            return
        offset = self.next_offset[tp] + gap
        self.next_offset[tp] = offset + 1
        ticket = self.tracker.dispatch(tp, offset)
        assert ticket is not None
        self.dispatched[tp].append(offset)
        self.outstanding.append(ticket)

    @precondition(lambda self: bool(self.outstanding))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self.outstanding))
        self.outstanding.remove(ticket)
        current = self.tracker.is_current(ticket)
        assert self.tracker.done(ticket) == current
        if current:
            self.done_offsets[ticket.partition].add(ticket.offset)

    @rule(tp=st.sampled_from([TP, OTHER]))
    def rebalance(self, tp: tuple[str, int]) -> None:
        """Eager rebalance: revoked, assigned again, redelivered from the last commit (old tickets stay out)."""
        self.tracker.revoke([tp])
        self.tracker.assign([tp])
        self.next_offset[tp] = self.committed.get(tp, 0)
        self.dispatched[tp] = []
        self.done_offsets[tp] = set()
        self.committed.pop(tp, None)

    @rule()
    def commit(self) -> None:
        offsets = self.tracker.to_commit()
        for tp, offset in offsets.items():
            assert offset > self.committed.get(tp, -1)
        self.tracker.mark_committed(offsets)
        self.committed.update(offsets)

    @invariant()
    def committable_is_done_prefix(self) -> None:
        for tp in (TP, OTHER):
            dispatched = self.dispatched[tp]
            committable = self.tracker.committable(tp)
            if not dispatched:
                assert committable is None
                continue
            assert committable is not None
            unfinished = [o for o in dispatched if o not in self.done_offsets[tp]]
            # never past an unfinished offset, and always the full done prefix
            assert committable == (min(unfinished) if unfinished else max(dispatched) + 1)


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
