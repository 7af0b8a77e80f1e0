"""A circuit breaker per route: stop calling a route that keeps failing, probe it later.

States:

- **closed**: calls flow. The breaker opens after `failure_threshold`
  consecutive failures, or when at least `min_calls` calls in the last
  `window_s` seconds failed at a rate ≥ `failure_rate`.
- **open**: calls are refused until the open period ends.
- **half_open**: exactly one probe call at a time. A successful probe closes the
  breaker (all counters reset); a failed probe opens it again.

Which outcomes count (see `classify`):

- route-health failures — server_error, overloaded, timeout, connection_error,
  malformed_response — count towards both triggers;
- hard failures — auth_error, not_found, quota_exhausted — open the breaker at
  once: the route cannot work until someone fixes a key, a model name or a
  balance, and every call until then is wasted;
- everything else (rate_limited, bad_request, context_length, content_filter,
  circuit_open) says nothing about the route's health and is ignored; pacing
  handles rate limits, and the others are about the job.

Each time the breaker re-opens without having closed in between, the open
period doubles (from `open_s`, capped at `max_open_s`). So a transient outage
is probed every `open_s`, while a dead key or an exhausted balance settles
into one unbilled probe every few minutes and recovers by itself once fixed.
Hard failures use the same escalation instead of a fixed long ban because
`quota_exhausted` also covers one oversized request ("Request too large … on
tokens per minute"), which says nothing about the next job.

A probe is *leased*: if no result is recorded within `probe_lease_s` (the
caller reserved a probe and then chose not to call, or was cancelled),
another caller may probe. Without the lease one lost probe would wedge the
route in half-open forever.

Times are wall-clock seconds passed in by the caller; nothing here sleeps or
reads a clock. Not thread-safe: one breaker belongs to one event loop.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from qroute.models import AttemptOutcome

CircuitState = Literal["closed", "open", "half_open"]
"""What a breaker does with the next call: pass it, refuse it, or let one probe through."""

OutcomeClass = Literal["success", "failure", "hard_failure", "neutral"]
"""How an attempt outcome bears on a route's health."""

FAILURES: frozenset[AttemptOutcome] = frozenset(
    {"server_error", "overloaded", "timeout", "connection_error", "malformed_response"}
)
"""Outcomes that say the route is unhealthy right now."""

HARD_FAILURES: frozenset[AttemptOutcome] = frozenset({"auth_error", "not_found", "quota_exhausted"})
"""Outcomes that say the route cannot work until an operator acts; they open the breaker at once."""

MAX_OPEN_S = 300.0
"""Default longest open period after repeated re-opens (five minutes)."""


def classify(outcome: AttemptOutcome) -> OutcomeClass:
    """How `outcome` counts for the breaker."""
    if outcome == "success":
        return "success"
    if outcome in FAILURES:
        return "failure"
    if outcome in HARD_FAILURES:
        return "hard_failure"
    return "neutral"


class CircuitBreaker:
    """Closed → open → half-open → closed, for one route. See the module docstring."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        failure_rate: float,
        window_s: float,
        min_calls: int,
        open_s: float,
        max_open_s: float | None = None,
        probe_lease_s: float | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.window_s = window_s
        self.min_calls = min_calls
        self.open_s = open_s
        self.max_open_s = max(open_s, MAX_OPEN_S if max_open_s is None else max_open_s)
        self.probe_lease_s = open_s if probe_lease_s is None else probe_lease_s
        self._open_until: float | None = None
        """None while closed; else when the open period ends (half-open after it)."""
        self._reopens = 0
        """Opens since the breaker last closed; drives the doubling of the open period."""
        self._probe_until: float | None = None
        """While half-open: when the outstanding probe's lease runs out (None: no probe out)."""
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()
        """(time, failed) of recent counted calls, oldest first."""
        self._window_failures = 0

    # -- queries -----------------------------------------------------------------

    def state(self, now: float) -> CircuitState:
        """The state at `now`; has no side effects."""
        if self._open_until is None:
            return "closed"
        return "open" if now < self._open_until else "half_open"

    def open_until(self) -> float | None:
        """When the current open period ends (None while closed)."""
        return self._open_until

    def ready_at(self, now: float) -> float:
        """Earliest time `allow` could say yes: now, the end of the open period, or the probe lease's end."""
        if self._open_until is None:
            return now
        if now < self._open_until:
            return self._open_until
        if self._probe_until is not None and now < self._probe_until:
            return self._probe_until
        return now

    # -- the two operations ------------------------------------------------------

    def allow(self, now: float) -> bool:
        """Whether a call may go now. In half-open this reserves the single probe."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open":
            return False
        if self._probe_until is not None and now < self._probe_until:
            return False
        self._probe_until = now + self.probe_lease_s
        return True

    def record(self, outcome: AttemptOutcome, now: float) -> None:
        """Account for a finished call's outcome."""
        kind = classify(outcome)
        state = self.state(now)
        if state == "open":
            # A straggler that started before the breaker opened: it says nothing new.
            return
        if state == "half_open":
            self._probe_until = None
            if kind == "success":
                self._close()
            elif kind in ("failure", "hard_failure"):
                self._trip(now)
            return
        if kind == "neutral":
            return
        if kind == "hard_failure":
            self._trip(now)
            return
        failed = kind == "failure"
        self._consecutive = self._consecutive + 1 if failed else 0
        self._push(now, failed)
        if self._consecutive >= self.failure_threshold or self._rate_exceeded():
            self._trip(now)

    # -- internals -----------------------------------------------------------------

    def _push(self, now: float, failed: bool) -> None:
        self._window.append((now, failed))
        self._window_failures += failed
        horizon = now - self.window_s
        while self._window and self._window[0][0] <= horizon:
            _, old_failed = self._window.popleft()
            self._window_failures -= old_failed

    def _rate_exceeded(self) -> bool:
        calls = len(self._window)
        # Divide rather than multiply: 3 / 10 == 0.3 exactly as floats, 0.3 * 10 is not 3.
        return calls >= self.min_calls and self._window_failures / calls >= self.failure_rate

    def _trip(self, now: float) -> None:
        period = min(self.max_open_s, self.open_s * 2.0 ** min(self._reopens, 64))
        self._open_until = now + period
        self._reopens += 1
        self._probe_until = None
        self._reset_counts()

    def _close(self) -> None:
        self._open_until = None
        self._reopens = 0
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._consecutive = 0
        self._window.clear()
        self._window_failures = 0
