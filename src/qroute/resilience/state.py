"""Everything a worker knows about its routes' health and quota, in one place.

The attempt loop asks it three questions before a call — may this route be
called at all (`allow`, the circuit breaker), when (`available_at`, pacing),
and how long will it take (`expected_latency`) — reserves quota when it goes
(`reserve`), and reports every outcome (`observe`). The planner reads a
`health_view`, metrics read `circuit_states`.

State lives in memory, per worker. Workers need not share it: the provider's
rate-limit headers give each of them the same view of the account's quota.
Configured rpm/tpm buckets, however, are per worker; with several workers on
one account the headers are the real guard.

Routes are created on first sight. All methods take `now` (wall-clock epoch
seconds) and fall back to the injected clock when it is omitted. Single event
loop only; no locks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from qroute.catalog.types import ProviderSpec, Route
from qroute.config import RoutingSettings
from qroute.providers.base import ProviderOutcome
from qroute.resilience.backoff import retry_delay
from qroute.resilience.circuit import CircuitBreaker, CircuitState
from qroute.resilience.latency import LatencyEwma
from qroute.resilience.pacing import ProviderLimiter, RoutePacer, spread_wakeup
from qroute.types import RouteHealth, RouteHealthView

DEFAULT_LATENCY_S = 5.0
"""Assumed provider latency before a route's first success: a typical short
completion. Deadline checks add `deadline_margin_s` on top."""


@dataclass(slots=True)
class RouteState:
    """One route's breaker, latency estimate and pacing."""

    circuit: CircuitBreaker
    latency: LatencyEwma = field(default_factory=LatencyEwma)
    pacer: RoutePacer = field(default_factory=RoutePacer)


class RouteStateBook:
    """Per-route and per-provider resilience state for one worker."""

    def __init__(
        self,
        settings: RoutingSettings,
        providers: Mapping[str, ProviderSpec],
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        *,
        default_latency_s: float = DEFAULT_LATENCY_S,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._default_latency_s = default_latency_s
        self._routes: dict[str, RouteState] = {}
        self._share = 1.0
        self._limiters: dict[str, ProviderLimiter] = {
            name: ProviderLimiter.for_provider(spec) for name, spec in providers.items()
        }

    # -- sharing accounts with other workers --------------------------------------

    @property
    def share(self) -> float:
        return self._share

    def set_share(self, share: float) -> None:
        """Pace to `share` of every provider account (0 < share ≤ 1).

        Workers of one group call the same accounts; each paced to the whole
        quota, N workers would send N times too much (and collect 429s). The
        worker sets its share of the jobs topic's partitions after each
        rebalance: that is its share of the load, and the shares add up to 1.
        Applies to configured rpm/tpm at once and to quota headers from the next
        answer on.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if share == self._share:
            return
        self._share = share
        for state in self._routes.values():
            state.pacer.share = share
        self._limiters = {name: limiter.with_share(share) for name, limiter in self._limiters.items()}

    # -- per-call questions ------------------------------------------------------

    def allow(self, route: Route, now: float | None = None) -> bool:
        """Whether the route's breaker lets a call through; reserves the probe when half-open.

        Call it only when about to call: a reserved probe nobody uses blocks other
        probes until its lease (`circuit_open_s`) runs out.
        """
        return self._state(route).circuit.allow(self._now(now))

    def available_at(self, route: Route, est_tokens: int, now: float | None = None) -> float:
        """When a request of `est_tokens` may go to `route` (≤ `now`: go now).

        The latest of the route's cooldown, its quota-header reset (when the quota
        is used up) and the provider's rpm/tpm buckets; when that is in the future
        a random spread is added so waiting jobs do not all wake at once.
        """
        at = self._now(now)
        # Only waits on a provider signal (cooldown, quota reset) are spread: every
        # waiter sees the same reset time. Bucket waits are already distinct slots,
        # because each booking puts the bucket further into debt.
        pacer = self._state(route).pacer
        signalled = spread_wakeup(pacer.available_at(at, est_tokens), at, self._rng)
        return max(signalled, pacer.learned_ready_at(at), self._limiter(route).available_at(at, est_tokens))

    def signal_ready_at(self, route: Route, est_tokens: int, now: float | None = None) -> float:
        """Like `available_at` but ignoring the buckets: for a job that already booked its slot."""
        at = self._now(now)
        return spread_wakeup(self._state(route).pacer.available_at(at, est_tokens), at, self._rng)

    def reserve(self, route: Route, est_tokens: int, now: float | None = None) -> None:
        """Record that a request of `est_tokens` is going to `route` now."""
        at = self._now(now)
        self._state(route).pacer.reserve(at, est_tokens)
        self._limiter(route).reserve(at, est_tokens)

    def book(self, route: Route, est_tokens: int, now: float | None = None) -> bool:
        """Take a future slot in the provider's rpm/tpm buckets for a job that will wait for it.

        Bookings put the buckets into debt, so the next caller's `available_at` is
        the next free slot: waiting jobs queue instead of all aiming at one instant,
        and a job can tell from its slot whether waiting meets its deadline.
        Returns whether any bucket gave a slot: with neither configured limits nor a
        learned rate there is none, and the wait is only for a provider signal.
        """
        at = self._now(now)
        configured = self._limiter(route).reserve(at, est_tokens)
        learned = self._state(route).pacer.book(at)
        return configured or learned

    def sending(self, route: Route, est_tokens: int, now: float | None = None) -> None:
        """A booked request is going out now: count it against the quota headers only."""
        self._state(route).pacer.reserve(self._now(now), est_tokens)

    def circuit_ready_at(self, route: Route, now: float | None = None) -> float:
        """When the route's breaker could next let a call (or probe) through; ≤ `now` means now."""
        at = self._now(now)
        state = self._routes.get(route.id)
        return at if state is None else state.circuit.ready_at(at)

    def expected_latency(self, route: Route) -> float:
        """Observed latency of successful calls (EWMA), or the default before the first one."""
        state = self._routes.get(route.id)
        value = None if state is None else state.latency.value
        return self._default_latency_s if value is None else value

    # -- feedback ----------------------------------------------------------------

    def observe(
        self, route: Route, outcome: ProviderOutcome, latency_s: float, now: float | None = None
    ) -> None:
        """Fold one finished call into the route's state.

        - the breaker counts the outcome (see `qroute.resilience.circuit`);
        - latency feeds the estimate only on success: a fast 429 or a slow
          timeout is not how long a result takes;
        - a quota snapshot is adopted unless a fresher one is already held;
        - a retry-after hint (on any outcome) or a 429 sets a cooldown: the hint
          when given, else capped full-jitter backoff growing with 429s in a row.
        """
        at = self._now(now)
        state = self._state(route)
        state.circuit.record(outcome.outcome, at)
        pacer = state.pacer
        pacer.answered = True
        if outcome.outcome == "success":
            state.latency.observe(latency_s)
            pacer.consecutive_rate_limits = 0
        if outcome.rate_limit is not None:
            pacer.observe_snapshot(outcome.rate_limit, sent_at=at - max(0.0, latency_s), received_at=at)
        if outcome.outcome == "rate_limited" or outcome.retry_after_s is not None:
            delay = retry_delay(
                pacer.consecutive_rate_limits,
                outcome.retry_after_s,
                base=self._settings.backoff_base_s,
                cap=self._settings.backoff_cap_s,
                rng=self._rng,
            )
            pacer.cool_down(at + delay)
        if outcome.outcome == "rate_limited":
            pacer.consecutive_rate_limits += 1

    # -- views -------------------------------------------------------------------

    def health_view(self, now: float | None = None) -> RouteHealthView:
        """Route id → what the planner may know; routes never seen are absent (healthy)."""
        at = self._now(now)
        return {
            route_id: RouteHealth(
                latency_s=state.latency.value,
                circuit_open=state.circuit.state(at) == "open",
            )
            for route_id, state in self._routes.items()
        }

    def circuit_states(self, now: float | None = None) -> dict[str, CircuitState]:
        """Route id → breaker state, for metrics."""
        at = self._now(now)
        return {route_id: state.circuit.state(at) for route_id, state in self._routes.items()}

    def route_state(self, route: Route) -> RouteState:
        """The route's state objects (created if new), for inspection and tests."""
        return self._state(route)

    # -- internals -----------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _state(self, route: Route) -> RouteState:
        state = self._routes.get(route.id)
        if state is None:
            s = self._settings
            state = RouteState(
                circuit=CircuitBreaker(
                    failure_threshold=s.circuit_failure_threshold,
                    failure_rate=s.circuit_failure_rate,
                    window_s=s.circuit_window_s,
                    min_calls=s.circuit_min_calls,
                    open_s=s.circuit_open_s,
                ),
                pacer=RoutePacer(share=self._share),
            )
            self._routes[route.id] = state
        return state

    def _limiter(self, route: Route) -> ProviderLimiter:
        name = route.provider.name
        limiter = self._limiters.get(name)
        if limiter is None:
            limiter = ProviderLimiter.for_provider(route.provider, share=self._share)
            self._limiters[name] = limiter
        return limiter
