"""Delay tiers, the delay gate, and back-pressure decisions."""

from __future__ import annotations

from qroute.worker.delay import DelayGate, gate_time, pick_tier
from qroute.worker.flow import Backpressure

TIERS = [5, 30, 300]


class TestPickTier:
    """A wait goes to the smallest tier that covers it, or the largest."""

    def test_smallest_covering_tier(self) -> None:
        """Waits map to the first tier at least as long."""
        assert pick_tier(0.2, TIERS) == 5
        assert pick_tier(5, TIERS) == 5
        assert pick_tier(5.01, TIERS) == 30
        assert pick_tier(299, TIERS) == 300

    def test_longer_than_all_tiers(self) -> None:
        """A wait beyond every tier uses the largest tier."""
        assert pick_tier(3600, TIERS) == 300

    def test_unsorted_tiers(self) -> None:
        """Tier order in the settings does not matter."""
        assert pick_tier(10, [300, 5, 30]) == 30

    def test_negative_wait(self) -> None:
        """A not-before already past maps to the smallest tier."""
        assert pick_tier(-4, TIERS) == 5


class TestGateTime:
    """A delay record is looked at when its not-before or its tier's span ends, whichever is first."""

    def test_not_before_within_span(self) -> None:
        """not-before inside the span wins."""
        assert gate_time(102.0, arrived_at=100.0, tier_s=5) == 102.0

    def test_span_end_caps_long_waits(self) -> None:
        """A not-before beyond the span is capped at arrival + tier (the job is parked again)."""
        assert gate_time(1000.0, arrived_at=100.0, tier_s=5) == 105.0

    def test_missing_not_before(self) -> None:
        """Without a not-before the record waits out the tier span."""
        assert gate_time(None, arrived_at=100.0, tier_s=30) == 130.0


class TestDelayGate:
    """Held partitions are released once due, soonest first."""

    def test_release_due(self) -> None:
        """Only partitions whose time has come are released, and they stop being held."""
        gate: DelayGate[str] = DelayGate()
        gate.hold("a", 10.0)
        gate.hold("b", 20.0)
        assert gate.next_due() == 10.0
        assert gate.release_due(15.0) == ["a"]
        assert gate.held == frozenset({"b"})
        assert gate.next_due() == 20.0

    def test_drop_forgets(self) -> None:
        """Dropped (revoked) partitions are no longer held."""
        gate: DelayGate[str] = DelayGate()
        gate.hold("a", 10.0)
        gate.drop(["a"])
        assert gate.held == frozenset()
        assert gate.next_due() is None


class TestBackpressure:
    """Which partitions to pause: stop, global cap with hysteresis, per-partition cap, delay holds."""

    def _paused(
        self,
        flow: Backpressure[str],
        in_flight: int,
        *,
        stopping: bool = False,
        held: frozenset[str] = frozenset(),
        uncommittable: dict[str, int] | None = None,
    ) -> set[str]:
        counts = uncommittable or {}
        return flow.paused(
            ["a", "b", "c"],
            in_flight=in_flight,
            stopping=stopping,
            held=held,
            uncommittable=lambda p: counts.get(p, 0),
        )

    def test_nothing_paused_when_idle(self) -> None:
        """Under every cap nothing is paused."""
        assert self._paused(Backpressure(max_in_flight=10, max_uncommitted=5), 0) == set()

    def test_stopping_pauses_all(self) -> None:
        """While stopping every partition is paused."""
        assert self._paused(Backpressure(max_in_flight=10, max_uncommitted=5), 0, stopping=True) == {
            "a",
            "b",
            "c",
        }

    def test_global_cap_with_hysteresis(self) -> None:
        """At the cap all pause; they resume only after in-flight falls by resume_gap."""
        flow: Backpressure[str] = Backpressure(max_in_flight=10, max_uncommitted=5, resume_gap=3)
        assert self._paused(flow, 10) == {"a", "b", "c"}
        assert self._paused(flow, 8) == {"a", "b", "c"}
        assert self._paused(flow, 7) == set()
        assert self._paused(flow, 9) == set()

    def test_partition_cap(self) -> None:
        """A partition holding max_uncommitted records back is paused alone."""
        flow: Backpressure[str] = Backpressure(max_in_flight=100, max_uncommitted=5)
        assert self._paused(flow, 6, uncommittable={"b": 5, "c": 4}) == {"b"}

    def test_held_delay_partition(self) -> None:
        """A delay partition waiting for its head record stays paused."""
        flow: Backpressure[str] = Backpressure(max_in_flight=100, max_uncommitted=5)
        assert self._paused(flow, 0, held=frozenset({"c"})) == {"c"}

    def test_free_slots(self) -> None:
        """Free slots never go negative."""
        flow: Backpressure[str] = Backpressure(max_in_flight=4, max_uncommitted=5)
        assert flow.free_slots(1) == 3
        assert flow.free_slots(9) == 0
