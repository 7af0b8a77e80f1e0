"""Prometheus collectors for one qroute worker, behind typed methods.

The metric names are a contract: dashboards, alert rules and the deployment
tests use them (see docs/metrics.md and `METRIC_NAMES`). Callers never touch a
collector directly; they call a method with typed arguments, so a label typo
is a type error rather than a new, silently empty time series.

Collectors live on the registry given to `Metrics` (a fresh one by default),
never implicitly on prometheus_client's global registry: two workers in one
process, or two tests, must not clash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from qroute import __version__
from qroute.models import AttemptAction, AttemptOutcome, DeadLetterReason, Usage

JobStatus = Literal["succeeded", "failed"]
"""How a job ended (the `status` label of `qroute_jobs_total`)."""

CircuitState = Literal["closed", "half_open", "half-open", "open"]
"""A circuit breaker state as the resilience layer names it (both spellings of half-open)."""

CIRCUIT_STATE_VALUES: Final[Mapping[str, int]] = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
"""Gauge value of `qroute_circuit_state` per state: ordered so `max()` is the worst."""

TOKEN_KINDS: Final = ("input", "cached_input", "cache_write", "output", "reasoning")
"""`kind` label values of `qroute_tokens_total`; they mirror `Usage` (input includes cached)."""

PROVIDER_LATENCY_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
)  # fmt: skip
"""Seconds. LLM calls take 0.5–60 s; the top bucket matches the longest provider timeouts."""

JOB_LATENCY_BUCKETS: Final = (*PROVIDER_LATENCY_BUCKETS, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds. Deferred jobs wait minutes in delay topics, so the tail reaches an hour."""

METRIC_NAMES: Final[frozenset[str]] = frozenset(
    {
        "qroute_jobs_total",
        "qroute_attempts_total",
        "qroute_cost_usd_total",
        "qroute_tokens_total",
        "qroute_provider_latency_seconds",
        "qroute_job_latency_seconds",
        "qroute_in_flight",
        "qroute_consumer_lag",
        "qroute_dlq_total",
        "qroute_deferred_total",
        "qroute_circuit_state",
        "qroute_failovers_total",
        "qroute_rate_limited_total",
        "qroute_commits_total",
        "qroute_assigned_partitions",
        "qroute_build_info",
    }
)
"""Every metric family qroute exposes, named as in the text exposition's `# TYPE` lines.

Histograms add `_bucket`, `_sum` and `_count` samples; counters and histograms
also get prometheus_client's `<name>_created` companion series.
"""


class Metrics:
    """All qroute collectors on one registry, updated through typed methods.

    Methods are cheap (a dictionary lookup and a locked add) and never block,
    so the attempt loop and the consume loop call them inline.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: Final = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._jobs = Counter("qroute_jobs_total", "Jobs finished, by final status.", ["status"], registry=r)
        self._attempts = Counter(
            "qroute_attempts_total",
            "Provider attempts, by route, classified outcome and the action taken next.",
            ["route", "outcome", "action"],
            registry=r,
        )
        self._cost = Counter(
            "qroute_cost_usd_total",
            "USD billed by providers, by route (float for dashboards; cost records are exact).",
            ["route"],
            registry=r,
        )
        self._tokens = Counter(
            "qroute_tokens_total",
            "Billed tokens by route and kind (input includes cached_input and cache_write; "
            "output includes reasoning).",
            ["route", "kind"],
            registry=r,
        )
        self._provider_latency = Histogram(
            "qroute_provider_latency_seconds",
            "Duration of one provider HTTP call, by route.",
            ["route"],
            buckets=PROVIDER_LATENCY_BUCKETS,
            registry=r,
        )
        self._job_latency = Histogram(
            "qroute_job_latency_seconds",
            "End to end: job created_at (producer clock) to its result being published.",
            buckets=JOB_LATENCY_BUCKETS,
            registry=r,
        )
        self._in_flight = Gauge("qroute_in_flight", "Jobs being processed by this worker.", registry=r)
        self._lag = Gauge(
            "qroute_consumer_lag",
            "Records between the committed offset and the log end, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self._dlq = Counter(
            "qroute_dlq_total", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self._deferred = Counter(
            "qroute_deferred_total",
            "Jobs parked on a delay topic, by delay tier (e.g. 30s).",
            ["tier"],
            registry=r,
        )
        self._circuit = Gauge(
            "qroute_circuit_state",
            "Circuit breaker state per route: 0 closed, 1 half-open, 2 open.",
            ["route"],
            registry=r,
        )
        self._failovers = Counter(
            "qroute_failovers_total",
            "Times a job gave up on a route and moved to the next one, by the route left.",
            ["from_route"],
            registry=r,
        )
        self._rate_limited = Counter(
            "qroute_rate_limited_total",
            "Rate-limit answers (HTTP 429) absorbed, by route.",
            ["route"],
            registry=r,
        )
        self._commits = Counter("qroute_commits_total", "Offset commits made by this worker.", registry=r)
        self._assigned = Gauge(
            "qroute_assigned_partitions", "Partitions currently assigned to this worker.", registry=r
        )
        self._build = Info("qroute_build", "The running qroute version.", registry=r)
        self._build.info({"version": __version__})
        self._cost_children: dict[str, tuple[Counter, ...]] = {}
        # Known label values start at 0, so rate()/increase() see the first event too.
        for status in get_args(JobStatus):
            self._jobs.labels(status)
        for reason in get_args(DeadLetterReason):
            self._dlq.labels(reason)

    # -- jobs -----------------------------------------------------------------

    def job_finished(self, status: JobStatus, latency_s: float | None = None) -> None:
        """A job's result was published. Latency is from its created_at, clamped at 0 for clock skew."""
        self._jobs.labels(status).inc()
        if latency_s is not None:
            self._job_latency.observe(max(0.0, latency_s))

    def dlq(self, reason: DeadLetterReason) -> None:
        """A record went to the dead-letter topic."""
        self._dlq.labels(reason).inc()

    def deferred(self, tier_s: int) -> None:
        """A job was parked on the delay topic of this tier (seconds)."""
        self._deferred.labels(f"{tier_s}s").inc()

    # -- attempts ---------------------------------------------------------------

    def attempt(
        self, route: str, outcome: AttemptOutcome, action: AttemptAction, latency_s: float | None = None
    ) -> None:
        """One provider attempt ended. Pass no latency when no call was made (e.g. circuit open).

        Counts only the attempt and its latency: 429s and failovers have their
        own methods, so the caller decides what counts as one.
        """
        self._attempts.labels(route, outcome, action).inc()
        if latency_s is not None:
            self._provider_latency.labels(route).observe(max(0.0, latency_s))

    def cost(self, route: str, cost_usd: Decimal, usage: Usage) -> None:
        """A billed attempt: add its cost and tokens to the route's totals."""
        cost, inputs, cached, cache_write, output, reasoning = self._route_cost_children(route)
        cost.inc(float(cost_usd))
        inputs.inc(usage.input_tokens)
        cached.inc(usage.cached_input_tokens)
        cache_write.inc(usage.cache_write_tokens)
        output.inc(usage.output_tokens)
        reasoning.inc(usage.reasoning_tokens)

    def _route_cost_children(self, route: str) -> tuple[Counter, ...]:
        """The route's cost and five token counters, looked up once per route.

        `labels()` takes a lock and builds a key on every call; six of them per
        billed attempt were ~1.5% of the worker's CPU. Children of these counters
        are never removed, so holding them is safe."""
        children = self._cost_children.get(route)
        if children is None:
            tokens = self._tokens
            children = (
                self._cost.labels(route),
                tokens.labels(route, "input"),
                tokens.labels(route, "cached_input"),
                tokens.labels(route, "cache_write"),
                tokens.labels(route, "output"),
                tokens.labels(route, "reasoning"),
            )
            self._cost_children[route] = children
        return children

    def failover(self, from_route: str) -> None:
        """A job stopped trying `from_route` and moved on."""
        self._failovers.labels(from_route).inc()

    def rate_limited(self, route: str) -> None:
        """A provider answered 429 and the loop absorbed it (wait, defer or fail over)."""
        self._rate_limited.labels(route).inc()

    def set_circuit(self, route: str, state: CircuitState | str) -> None:
        """Record a route's circuit breaker state. Unknown states are a caller bug: ValueError."""
        try:
            value = CIRCUIT_STATE_VALUES[state]
        except KeyError:
            raise ValueError(f"unknown circuit state {state!r}") from None
        self._circuit.labels(route).set(value)

    def set_circuits(self, states: Mapping[str, str]) -> None:
        """Record many routes at once, e.g. `RouteStateBook.circuit_states(now)`."""
        for route, state in states.items():
            self.set_circuit(route, state)

    # -- consumer -------------------------------------------------------------

    def set_in_flight(self, n: int) -> None:
        self._in_flight.set(n)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Lag of one assigned partition (log end minus committed offset)."""
        self._lag.labels(topic, str(partition)).set(lag)

    def remove_lag(self, topic: str, partition: int) -> None:
        """Forget a partition's lag when it is revoked, so a stale value does not linger."""
        with contextlib.suppress(KeyError):
            self._lag.remove(topic, str(partition))

    def committed(self) -> None:
        """One offset commit succeeded."""
        self._commits.inc()

    def set_assigned(self, n: int) -> None:
        self._assigned.set(n)
