"""RouteStateBook: per-route breaker, latency and pacing, per-provider buckets, views for planner and metrics."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from qroute.catalog.types import ModelSpec, ProviderSpec, Route
from qroute.config import RoutingSettings
from qroute.models import AttemptAction, AttemptOutcome, Usage
from qroute.providers.base import ProviderOutcome, RateLimitSnapshot
from qroute.resilience.latency import LatencyEwma
from qroute.resilience.state import DEFAULT_LATENCY_S, RouteStateBook
from qroute.types import RouteHealth

T0 = 1_800_000_000.0


def provider(name: str, *, rpm: int | None = None, tpm: int | None = None) -> ProviderSpec:
    return ProviderSpec(name=name, family="openai", base_url="http://127.0.0.1:1/v1", rpm=rpm, tpm=tpm)


def route(spec: ProviderSpec, model: str) -> Route:
    return Route(
        provider=spec,
        model=ModelSpec(
            provider=spec.name,
            model=model,
            tier=2,
            input_per_m=Decimal("1"),
            output_per_m=Decimal("2"),
            context_window=128_000,
            max_output_tokens=8_192,
            price_source="test",
            price_date=date(2026, 11, 1),
        ),
    )


ACME = provider("acme", rpm=60)
OTHER = provider("other")
SMALL = route(ACME, "small")
LARGE = route(ACME, "large")
SOLO = route(OTHER, "solo")

ACTIONS: dict[str, AttemptAction] = {"success": "done", "rate_limited": "retry", "auth_error": "failover"}


def outcome(
    kind: AttemptOutcome,
    *,
    retry_after_s: float | None = None,
    rate_limit: RateLimitSnapshot | None = None,
) -> ProviderOutcome:
    return ProviderOutcome(
        outcome=kind,
        action=ACTIONS.get(kind, "retry"),
        usage=Usage(input_tokens=10, output_tokens=5) if kind == "success" else None,
        billed=kind == "success",
        retry_after_s=retry_after_s,
        rate_limit=rate_limit,
    )


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def book(
    settings: RoutingSettings | None = None, *, draw: float = 0.5, clock: FakeClock | None = None
) -> RouteStateBook:
    return RouteStateBook(
        settings or RoutingSettings(circuit_failure_threshold=3, circuit_open_s=10.0),
        {"acme": ACME, "other": OTHER},
        clock=clock or FakeClock(),
        rng=lambda: draw,
    )


class TestCircuit:
    """allow() is the route's breaker, fed by observe()."""

    def test_failures_open_only_that_route(self) -> None:
        """Three timeouts open `acme/small`; its sibling and other providers stay closed."""
        b = book()
        for _ in range(3):
            b.observe(SMALL, outcome("timeout"), 30.0, T0)
        assert not b.allow(SMALL, T0 + 1)
        assert b.allow(LARGE, T0 + 1)
        assert b.allow(SOLO, T0 + 1)
        assert b.circuit_states(T0 + 1) == {
            "acme/small": "open",
            "acme/large": "closed",
            "other/solo": "closed",
        }

    def test_half_open_probe_then_close(self) -> None:
        """After open_s one probe goes; its success closes the breaker."""
        b = book()
        for _ in range(3):
            b.observe(SMALL, outcome("server_error"), 0.2, T0)
        assert b.circuit_states(T0 + 10) == {"acme/small": "half_open"}
        assert b.allow(SMALL, T0 + 10)
        assert not b.allow(SMALL, T0 + 10)
        b.observe(SMALL, outcome("success"), 1.0, T0 + 11)
        assert b.circuit_states(T0 + 11) == {"acme/small": "closed"}

    def test_circuit_ready_at(self) -> None:
        """An open route reports when it can be probed; unknown routes are ready now."""
        b = book()
        for _ in range(3):
            b.observe(SMALL, outcome("timeout"), 1.0, T0)
        assert b.circuit_ready_at(SMALL, T0 + 1) == T0 + 10
        assert b.circuit_ready_at(SOLO, T0 + 1) == T0 + 1

    def test_rate_limits_do_not_open_the_circuit(self) -> None:
        """Many 429s cool the route down but never open its breaker."""
        b = book()
        for i in range(20):
            b.observe(SMALL, outcome("rate_limited"), 0.05, T0 + i)
        assert b.circuit_states(T0 + 20) == {"acme/small": "closed"}


class TestHealthView:
    """The planner sees latency and open breakers; unknown routes are absent."""

    def test_view(self) -> None:
        """Observed routes appear with EWMA latency; open is reported, half-open is not."""
        b = book()
        b.observe(SMALL, outcome("success"), 2.0, T0)
        for _ in range(3):
            b.observe(SOLO, outcome("timeout"), 60.0, T0)
        assert b.health_view(T0 + 1) == {
            "acme/small": RouteHealth(latency_s=2.0, circuit_open=False),
            "other/solo": RouteHealth(latency_s=None, circuit_open=True),
        }
        assert b.health_view(T0 + 10)["other/solo"].circuit_open is False

    def test_empty_before_any_call(self) -> None:
        """A fresh book knows nothing, so every route is healthy."""
        assert book().health_view(T0) == {}


class TestLatency:
    """expected_latency is the EWMA of successful calls, with a default before the first."""

    def test_default_before_first_success(self) -> None:
        """Unknown routes, and routes that have only failed, get the default."""
        b = book()
        assert b.expected_latency(SMALL) == DEFAULT_LATENCY_S
        b.observe(SMALL, outcome("timeout"), 120.0, T0)
        b.observe(SMALL, outcome("rate_limited"), 0.01, T0)
        assert b.expected_latency(SMALL) == DEFAULT_LATENCY_S

    def test_ewma(self) -> None:
        """First sample taken as is; then 20% weight on the newest."""
        b = book()
        b.observe(SMALL, outcome("success"), 2.0, T0)
        b.observe(SMALL, outcome("success"), 7.0, T0 + 1)
        assert b.expected_latency(SMALL) == pytest.approx(3.0)

    def test_ewma_ignores_nonsense(self) -> None:
        """Negative or non-finite samples are dropped; alpha outside (0, 1] is refused."""
        ewma = LatencyEwma()
        for bad in (-1.0, float("nan"), float("inf")):
            ewma.observe(bad)
        assert ewma.value is None
        with pytest.raises(ValueError):
            LatencyEwma(alpha=0)


class TestPacing:
    """available_at combines cooldowns, quota snapshots and provider buckets."""

    def test_retry_after_sets_cooldown(self) -> None:
        """A 429 with retry-after 20 s holds the route until then (plus spread), not its siblings."""
        b = book(draw=0.0)
        b.observe(SMALL, outcome("rate_limited", retry_after_s=20.0), 0.1, T0)
        assert b.available_at(SMALL, 100, T0 + 1) == T0 + 20
        assert b.available_at(LARGE, 100, T0 + 1) == T0 + 1

    def test_429_without_hint_backs_off_exponentially(self) -> None:
        """No retry-after: capped full-jitter backoff growing with 429s in a row, reset by success."""
        settings = RoutingSettings(backoff_base_s=1.0, backoff_cap_s=8.0)
        b = book(settings, draw=0.999)
        cooldowns = []
        for i in range(6):
            now = T0 + 100 * i
            b.observe(SOLO, outcome("rate_limited"), 0.1, now)
            cooldowns.append(b.route_state(SOLO).pacer.cooldown_until - now)
        assert cooldowns == pytest.approx([0.999, 1.998, 3.996, 7.992, 7.992, 7.992])
        b.observe(SOLO, outcome("success"), 0.1, T0 + 1_000)
        b.observe(SOLO, outcome("rate_limited"), 0.1, T0 + 1_001)
        assert b.route_state(SOLO).pacer.cooldown_until == pytest.approx(T0 + 1_001.999)

    def test_retry_after_on_overload_is_honoured(self) -> None:
        """A 503 carrying retry-after also cools the route down."""
        b = book(draw=0.0)
        b.observe(SOLO, outcome("overloaded", retry_after_s=4.0), 0.1, T0)
        assert b.available_at(SOLO, 10, T0) == T0 + 4

    def test_snapshot_is_timed_by_send_time(self) -> None:
        """A slow call's older snapshot does not replace a quick call's newer one."""
        b = book(draw=0.0)
        exhausted = RateLimitSnapshot(remaining_requests=0, requests_reset_at=T0 + 30)
        plenty = RateLimitSnapshot(remaining_requests=500, requests_reset_at=T0 + 2)
        b.observe(SOLO, outcome("success", rate_limit=exhausted), 0.5, T0 + 10)  # sent at T0+9.5
        b.observe(SOLO, outcome("success", rate_limit=plenty), 20.0, T0 + 11)  # sent at T0-9
        assert b.available_at(SOLO, 10, T0 + 11) == T0 + 30

    def test_reservations_count_against_snapshot(self) -> None:
        """Two requests left: two reservations use them, the third waits for the reset."""
        b = book(draw=0.0)
        snapshot = RateLimitSnapshot(remaining_requests=2, requests_reset_at=T0 + 15)
        b.observe(SOLO, outcome("success", rate_limit=snapshot), 1.0, T0)
        b.reserve(SOLO, 10, T0 + 0.1)
        b.reserve(SOLO, 10, T0 + 0.2)
        assert b.available_at(SOLO, 10, T0 + 0.3) == T0 + 15

    def test_provider_bucket_is_shared_by_its_routes(self) -> None:
        """acme's rpm 60 is one account: a request on `small` delays `large` by a second."""
        b = book(draw=0.0)
        b.reserve(SMALL, 10, T0)
        assert b.available_at(LARGE, 10, T0) == pytest.approx(T0 + 1.0)
        assert b.available_at(SOLO, 10, T0) == T0

    def test_provider_unknown_to_the_book_uses_its_route_spec(self) -> None:
        """A route whose provider was not passed in still gets buckets from its own spec."""
        late = route(provider("late", rpm=6), "m")
        b = book(draw=0.0)
        b.reserve(late, 1, T0)
        assert b.available_at(late, 1, T0) == pytest.approx(T0 + 10.0)

    def test_waiters_are_spread(self) -> None:
        """Jobs blocked on the same reset wake at different times within the spread window."""
        draws = iter([0.0, 0.5, 0.99])
        b = RouteStateBook(RoutingSettings(), {"other": OTHER}, rng=lambda: next(draws))
        b.route_state(SOLO).pacer.cool_down(T0 + 20)
        wakes = [b.available_at(SOLO, 1, T0) for _ in range(3)]
        assert wakes == pytest.approx([T0 + 20, T0 + 22.5, T0 + 24.95])

    def test_clock_is_the_default_time(self) -> None:
        """Without `now`, the injected clock is read."""
        clock = FakeClock(T0)
        b = book(draw=0.0, clock=clock)
        b.observe(SOLO, outcome("rate_limited", retry_after_s=5.0), 0.1)
        assert b.available_at(SOLO, 1) == T0 + 5
        clock.now = T0 + 6
        assert b.available_at(SOLO, 1) == T0 + 6


class TestShare:
    """set_share: this worker's part of every provider account (its share of the jobs topic)."""

    def test_configured_rpm_is_split(self) -> None:
        """rpm 60 alone allows a request a second; at share 0.5 one every two seconds."""
        b = book()
        b.set_share(0.5)
        assert b.share == 0.5
        b.reserve(SMALL, 10, now=100.0)
        assert b.available_at(SMALL, 10, now=100.0) == pytest.approx(102.0)

    def test_routes_seen_before_and_after_get_the_share(self) -> None:
        """Existing route state is updated; state created later starts with the share."""
        b = book()
        seen = b.route_state(SMALL)
        b.set_share(0.25)
        assert seen.pacer.share == 0.25
        assert b.route_state(SOLO).pacer.share == 0.25

    @pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
    def test_share_out_of_range_is_refused(self, share: float) -> None:
        """A share outside (0, 1] is a bug in the caller."""
        with pytest.raises(ValueError, match="share must be"):
            book().set_share(share)


class TestBookReturnsWhetherASlotWasTaken:
    """book() says whether any bucket gave a slot; without one a wait is only for a provider signal."""

    def test_configured_limit_gives_a_slot(self) -> None:
        """rpm configured: every booking takes a slot."""
        assert book().book(SMALL, 10, now=100.0) is True

    def test_nothing_known_gives_no_slot_until_a_rate_is_learned(self) -> None:
        """No configured limit and no learned rate: no slot; after quota headers teach a rate, one."""
        b = book()
        assert b.book(SOLO, 10, now=100.0) is False
        snapshot = RateLimitSnapshot(limit_requests=60, remaining_requests=0, requests_reset_at=160.0)
        b.observe(SOLO, ProviderOutcome("success", "done", rate_limit=snapshot), 0.0, now=100.0)
        assert b.book(SOLO, 10, now=100.0) is True
