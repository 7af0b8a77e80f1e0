"""Circuit breaker: closed → open → half-open → closed, driven by a fake clock."""

from __future__ import annotations

from typing import get_args

import pytest

from qroute.models import AttemptOutcome
from qroute.resilience.circuit import FAILURES, HARD_FAILURES, CircuitBreaker, classify

T0 = 1_800_000_000.0


def breaker(**overrides: float) -> CircuitBreaker:
    params: dict[str, float] = {
        "failure_threshold": 3,
        "failure_rate": 0.5,
        "window_s": 30.0,
        "min_calls": 10,
        "open_s": 10.0,
    }
    params.update(overrides)
    return CircuitBreaker(
        failure_threshold=int(params["failure_threshold"]),
        failure_rate=params["failure_rate"],
        window_s=params["window_s"],
        min_calls=int(params["min_calls"]),
        open_s=params["open_s"],
        max_open_s=params.get("max_open_s"),
    )


def tripped(cb: CircuitBreaker, now: float = T0) -> CircuitBreaker:
    for _ in range(cb.failure_threshold):
        cb.record("server_error", now)
    return cb


class TestClassification:
    """Only route-health outcomes count; job-specific ones are ignored."""

    @pytest.mark.parametrize(
        "outcome", ["server_error", "overloaded", "timeout", "connection_error", "malformed_response"]
    )
    def test_health_failures(self, outcome: AttemptOutcome) -> None:
        """Transport and server trouble counts as a failure."""
        assert classify(outcome) == "failure"

    @pytest.mark.parametrize(
        "outcome", ["rate_limited", "bad_request", "context_length", "content_filter", "circuit_open"]
    )
    def test_neutral(self, outcome: AttemptOutcome) -> None:
        """Rate limits and job-specific rejections say nothing about the route's health."""
        assert classify(outcome) == "neutral"

    @pytest.mark.parametrize("outcome", ["auth_error", "not_found", "quota_exhausted"])
    def test_hard(self, outcome: AttemptOutcome) -> None:
        """Problems only an operator can fix are hard failures."""
        assert classify(outcome) == "hard_failure"

    def test_every_outcome_is_classified_once(self) -> None:
        """No outcome is both a failure and a hard failure, and success is neither."""
        assert not FAILURES & HARD_FAILURES
        assert "success" not in FAILURES | HARD_FAILURES
        assert {classify(o) for o in get_args(AttemptOutcome)} == {
            "success",
            "failure",
            "hard_failure",
            "neutral",
        }


class TestConsecutiveFailures:
    """N consecutive failures open the breaker."""

    def test_opens_after_threshold(self) -> None:
        """Two failures leave it closed; the third opens it."""
        cb = breaker()
        cb.record("timeout", T0)
        cb.record("server_error", T0 + 1)
        assert cb.state(T0 + 1) == "closed"
        cb.record("overloaded", T0 + 2)
        assert cb.state(T0 + 2) == "open"
        assert not cb.allow(T0 + 2)

    def test_success_resets_the_run(self) -> None:
        """A success in between restarts the count."""
        cb = breaker()
        for outcome in ("timeout", "timeout", "success", "timeout", "timeout"):
            cb.record(outcome, T0)
        assert cb.state(T0) == "closed"

    def test_neutral_outcomes_do_not_break_or_extend_the_run(self) -> None:
        """A 429 between failures neither resets nor counts."""
        cb = breaker()
        for outcome in ("timeout", "rate_limited", "bad_request", "timeout"):
            cb.record(outcome, T0)
        assert cb.state(T0) == "closed"
        cb.record("timeout", T0)
        assert cb.state(T0) == "open"

    def test_rate_limits_never_open_it(self) -> None:
        """Any number of 429s leaves the breaker closed: pacing handles them."""
        cb = breaker()
        for i in range(100):
            cb.record("rate_limited", T0 + i * 0.1)
        assert cb.state(T0 + 10) == "closed"


class TestFailureRate:
    """A failure rate ≥ R over the window, with at least M calls, opens the breaker."""

    def test_opens_on_rate_with_enough_calls(self) -> None:
        """Alternating failures (50%) open it once the 10th call is in the window."""
        cb = breaker(failure_threshold=100)
        for i in range(9):
            cb.record("timeout" if i % 2 else "success", T0 + i)
        assert cb.state(T0 + 9) == "closed"
        cb.record("timeout", T0 + 9)
        assert cb.state(T0 + 9) == "open"

    def test_below_rate_stays_closed(self) -> None:
        """Four failures in ten calls is 40% < 50%."""
        cb = breaker(failure_threshold=100)
        for i in range(10):
            cb.record("timeout" if i % 5 in (0, 1) else "success", T0 + i)
        assert cb.state(T0 + 10) == "closed"

    def test_rate_compares_exactly(self) -> None:
        """3 failures of 10 calls meets a 0.3 rate (no float rounding drift)."""
        cb = breaker(failure_threshold=100, failure_rate=0.3)
        for i in range(10):
            cb.record("timeout" if i in (2, 5, 9) else "success", T0 + i)
        assert cb.state(T0 + 10) == "open"

    def test_old_calls_leave_the_window(self) -> None:
        """Failures older than the window no longer count towards the rate."""
        cb = breaker(failure_threshold=100, window_s=30.0)
        for i in range(5):
            cb.record("timeout", T0 + i)
        for i in range(5):
            cb.record("success", T0 + 40 + i)
        assert cb.state(T0 + 45) == "closed"
        cb.record("success", T0 + 46)
        assert cb.state(T0 + 46) == "closed"

    def test_hard_failure_opens_at_once(self) -> None:
        """One auth error opens the breaker without waiting for a count."""
        cb = breaker()
        cb.record("auth_error", T0)
        assert cb.state(T0) == "open"


class TestHalfOpen:
    """After the open period one probe at a time decides."""

    def test_open_until_period_ends(self) -> None:
        """Open for open_s, then half-open."""
        cb = tripped(breaker(open_s=10.0))
        assert cb.state(T0 + 9.99) == "open"
        assert not cb.allow(T0 + 9.99)
        assert cb.state(T0 + 10) == "half_open"

    def test_exactly_one_probe(self) -> None:
        """The first caller gets the probe; the others are refused while it is out."""
        cb = tripped(breaker())
        assert cb.allow(T0 + 10)
        assert not cb.allow(T0 + 10)
        assert not cb.allow(T0 + 12)

    def test_probe_success_closes_and_resets(self) -> None:
        """A successful probe closes the breaker with fresh counters."""
        cb = tripped(breaker())
        assert cb.allow(T0 + 10)
        cb.record("success", T0 + 11)
        assert cb.state(T0 + 11) == "closed"
        assert cb.allow(T0 + 11)
        cb.record("timeout", T0 + 12)
        cb.record("timeout", T0 + 12)
        assert cb.state(T0 + 12) == "closed"

    def test_probe_failure_reopens(self) -> None:
        """A failed probe opens the breaker again, for twice as long."""
        cb = tripped(breaker(open_s=10.0))
        assert cb.allow(T0 + 10)
        cb.record("connection_error", T0 + 11)
        assert cb.state(T0 + 11) == "open"
        assert cb.state(T0 + 30.9) == "open"
        assert cb.state(T0 + 31) == "half_open"

    def test_open_period_is_capped(self) -> None:
        """Repeated probe failures stop doubling at max_open_s, and success resets it."""
        cb = tripped(breaker(open_s=10.0, max_open_s=40.0))
        now = T0
        periods = []
        for _ in range(5):
            opened_until = cb.open_until()
            assert opened_until is not None
            periods.append(opened_until - now)
            now = opened_until
            assert cb.allow(now)
            cb.record("timeout", now)
        assert periods == [10.0, 20.0, 40.0, 40.0, 40.0]
        opened_until = cb.open_until()
        assert opened_until is not None
        assert cb.allow(opened_until)
        cb.record("success", opened_until)
        tripped(cb, opened_until)
        assert cb.open_until() == opened_until + 10.0

    def test_lost_probe_lease_expires(self) -> None:
        """A probe that never reports back stops blocking others after its lease."""
        cb = tripped(breaker(open_s=10.0))
        assert cb.allow(T0 + 10)
        assert not cb.allow(T0 + 19.9)
        assert cb.allow(T0 + 20)

    def test_neutral_probe_result_frees_the_probe(self) -> None:
        """A probe answered with a 429 stays half-open and lets the next probe go."""
        cb = tripped(breaker())
        assert cb.allow(T0 + 10)
        cb.record("rate_limited", T0 + 10.5)
        assert cb.state(T0 + 10.5) == "half_open"
        assert cb.allow(T0 + 10.5)

    def test_stragglers_while_open_are_ignored(self) -> None:
        """A call that started before the breaker opened does not close it."""
        cb = tripped(breaker())
        cb.record("success", T0 + 1)
        assert cb.state(T0 + 1) == "open"


class TestReadyAt:
    """ready_at says when allow() could next say yes."""

    def test_ready_at_through_the_cycle(self) -> None:
        """Now while closed; the open period's end while open; the lease's end while a probe is out."""
        cb = breaker(open_s=10.0)
        assert cb.ready_at(T0) == T0
        tripped(cb)
        assert cb.ready_at(T0 + 1) == T0 + 10
        assert cb.ready_at(T0 + 10) == T0 + 10
        assert cb.allow(T0 + 10)
        assert cb.ready_at(T0 + 12) == T0 + 20
        cb.record("success", T0 + 13)
        assert cb.ready_at(T0 + 13) == T0 + 13


class TestStateIsPure:
    """state() has no side effects."""

    def test_state_does_not_reserve_probe(self) -> None:
        """Asking for the state in half-open leaves the probe available."""
        cb = tripped(breaker())
        for _ in range(3):
            assert cb.state(T0 + 10) == "half_open"
        assert cb.allow(T0 + 10)
