"""The metrics contract: names, buckets, and that every method moves its series."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from qroute import __version__
from qroute.models import Usage
from qroute.observability.metrics import (
    JOB_LATENCY_BUCKETS,
    METRIC_NAMES,
    PROVIDER_LATENCY_BUCKETS,
    Metrics,
)

ROUTE = "openai/gpt-4o-mini"


def _exposed_name(name: str, kind: str) -> str:
    """The family name as the text exposition's `# TYPE` line spells it."""
    suffix = {"counter": "_total", "info": "_info"}.get(kind, "")
    return name + suffix


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


class TestNames:
    """Metric names are a contract shared with dashboards and alert rules."""

    def test_collected_families_match_metric_names(self, metrics: Metrics) -> None:
        """The registry holds exactly the families listed in METRIC_NAMES."""
        exposed = {_exposed_name(f.name, f.type) for f in metrics.registry.collect()}
        assert exposed == METRIC_NAMES

    def test_every_name_has_a_type_line_in_the_scrape(self, metrics: Metrics) -> None:
        """Each contract name appears as a `# TYPE` line, even before anything is observed."""
        text = generate_latest(metrics.registry).decode()
        type_lines = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
        assert type_lines >= METRIC_NAMES

    def test_all_names_are_prefixed(self) -> None:
        """Every metric lives under the qroute_ namespace."""
        assert all(name.startswith("qroute_") for name in METRIC_NAMES)


class TestRegistry:
    """Each Metrics owns its collectors; nothing lands on the global registry."""

    def test_two_instances_do_not_clash(self) -> None:
        """Two workers in one process get independent registries and counts."""
        a, b = Metrics(), Metrics()
        a.committed()
        assert value(a, "qroute_commits_total") == 1.0
        assert value(b, "qroute_commits_total") == 0.0

    def test_global_registry_untouched(self) -> None:
        """Creating Metrics() registers nothing on prometheus_client's default registry."""
        Metrics()
        assert REGISTRY.get_sample_value("qroute_commits_total") is None

    def test_given_registry_is_used(self) -> None:
        """A registry passed in receives the collectors."""
        registry = CollectorRegistry()
        m = Metrics(registry)
        m.committed()
        assert m.registry is registry
        assert registry.get_sample_value("qroute_commits_total") == 1.0

    def test_same_registry_twice_is_refused(self) -> None:
        """Registering the collectors twice on one registry fails loudly instead of double counting."""
        registry = CollectorRegistry()
        Metrics(registry)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            Metrics(registry)

    def test_build_info_carries_version(self, metrics: Metrics) -> None:
        """qroute_build_info exposes the package version as a label."""
        assert value(metrics, "qroute_build_info", version=__version__) == 1.0


class TestBuckets:
    """Latency histograms cover slow LLM calls and long deferrals."""

    def test_provider_buckets_reach_120s(self) -> None:
        """The provider histogram's top finite bucket is 120 s and buckets ascend."""
        assert max(PROVIDER_LATENCY_BUCKETS) == 120.0
        assert list(PROVIDER_LATENCY_BUCKETS) == sorted(set(PROVIDER_LATENCY_BUCKETS))

    def test_job_buckets_extend_to_an_hour(self) -> None:
        """The job histogram keeps the provider buckets and adds minutes to an hour."""
        assert JOB_LATENCY_BUCKETS[: len(PROVIDER_LATENCY_BUCKETS)] == PROVIDER_LATENCY_BUCKETS
        assert max(JOB_LATENCY_BUCKETS) == 3600.0
        assert list(JOB_LATENCY_BUCKETS) == sorted(set(JOB_LATENCY_BUCKETS))

    def test_exposed_provider_buckets(self, metrics: Metrics) -> None:
        """A 100 s call falls in the 120 s bucket, not only +Inf."""
        metrics.attempt(ROUTE, "success", "done", 100.0)
        le_90 = value(metrics, "qroute_provider_latency_seconds_bucket", route=ROUTE, le="90.0")
        le_120 = value(metrics, "qroute_provider_latency_seconds_bucket", route=ROUTE, le="120.0")
        assert (le_90, le_120) == (0.0, 1.0)


class TestJobs:
    """Job-level counters and the end-to-end histogram."""

    def test_job_finished_counts_by_status(self, metrics: Metrics) -> None:
        """Each finished job increments its status and records its latency."""
        metrics.job_finished("succeeded", 2.5)
        metrics.job_finished("succeeded", 0.5)
        metrics.job_finished("failed", 400.0)
        assert value(metrics, "qroute_jobs_total", status="succeeded") == 2.0
        assert value(metrics, "qroute_jobs_total", status="failed") == 1.0
        assert value(metrics, "qroute_job_latency_seconds_count") == 3.0
        assert value(metrics, "qroute_job_latency_seconds_bucket", le="600.0") == 3.0
        assert value(metrics, "qroute_job_latency_seconds_bucket", le="300.0") == 2.0

    def test_negative_latency_is_clamped(self, metrics: Metrics) -> None:
        """Producer clock ahead of ours gives a 0 s observation, never a negative sum."""
        metrics.job_finished("succeeded", -3.0)
        assert value(metrics, "qroute_job_latency_seconds_sum") == 0.0

    def test_job_without_latency(self, metrics: Metrics) -> None:
        """Latency is optional; the counter still moves."""
        metrics.job_finished("failed")
        assert value(metrics, "qroute_jobs_total", status="failed") == 1.0
        assert value(metrics, "qroute_job_latency_seconds_count") == 0.0

    def test_dlq_and_deferred(self, metrics: Metrics) -> None:
        """DLQ counts by reason; deferrals count by delay tier named in seconds."""
        metrics.dlq("invalid_json")
        metrics.deferred(30)
        metrics.deferred(30)
        assert value(metrics, "qroute_dlq_total", reason="invalid_json") == 1.0
        assert value(metrics, "qroute_deferred_total", tier="30s") == 2.0


class TestAttempts:
    """Per-route attempt, cost, token and resilience series."""

    def test_attempt_counts_and_times(self, metrics: Metrics) -> None:
        """An attempt moves its (route, outcome, action) counter and the latency histogram."""
        metrics.attempt(ROUTE, "rate_limited", "retry", 0.2)
        assert (
            value(metrics, "qroute_attempts_total", route=ROUTE, outcome="rate_limited", action="retry")
            == 1.0
        )
        assert value(metrics, "qroute_provider_latency_seconds_count", route=ROUTE) == 1.0
        assert value(metrics, "qroute_provider_latency_seconds_sum", route=ROUTE) == pytest.approx(0.2)

    def test_attempt_without_call_skips_latency(self, metrics: Metrics) -> None:
        """A circuit-open attempt made no call, so no latency is observed."""
        metrics.attempt(ROUTE, "circuit_open", "failover")
        assert (
            value(metrics, "qroute_attempts_total", route=ROUTE, outcome="circuit_open", action="failover")
            == 1.0
        )
        assert value(metrics, "qroute_provider_latency_seconds_count", route=ROUTE) is None

    def test_attempt_does_not_count_429_or_failover(self, metrics: Metrics) -> None:
        """Those have their own methods, so callers are not double counted."""
        metrics.attempt(ROUTE, "rate_limited", "failover", 0.1)
        assert value(metrics, "qroute_rate_limited_total", route=ROUTE) is None
        assert value(metrics, "qroute_failovers_total", from_route=ROUTE) is None

    def test_cost_adds_usd_and_tokens(self, metrics: Metrics) -> None:
        """Cost is added as float USD; tokens are split by kind as Usage reports them."""
        usage = Usage(
            input_tokens=1000,
            cached_input_tokens=200,
            cache_write_tokens=100,
            output_tokens=300,
            reasoning_tokens=50,
        )
        metrics.cost(ROUTE, Decimal("0.000375"), usage)
        metrics.cost(ROUTE, Decimal("0.000125"), Usage(input_tokens=10, output_tokens=5))
        assert value(metrics, "qroute_cost_usd_total", route=ROUTE) == pytest.approx(0.0005)
        kinds = {
            kind: value(metrics, "qroute_tokens_total", route=ROUTE, kind=kind)
            for kind in ("input", "cached_input", "cache_write", "output", "reasoning")
        }
        assert kinds == {
            "input": 1010,
            "cached_input": 200,
            "cache_write": 100,
            "output": 305,
            "reasoning": 50,
        }

    def test_failover_and_rate_limited(self, metrics: Metrics) -> None:
        """failover() counts by the route left; rate_limited() by the route that said 429."""
        metrics.failover(ROUTE)
        metrics.rate_limited(ROUTE)
        metrics.rate_limited(ROUTE)
        assert value(metrics, "qroute_failovers_total", from_route=ROUTE) == 1.0
        assert value(metrics, "qroute_rate_limited_total", route=ROUTE) == 2.0


class TestCircuit:
    """Circuit state is a gauge ordered by severity."""

    @pytest.mark.parametrize(
        ("state", "expected"), [("closed", 0.0), ("half_open", 1.0), ("half-open", 1.0), ("open", 2.0)]
    )
    def test_state_values(self, metrics: Metrics, state: str, expected: float) -> None:
        """Each known state maps to its documented number."""
        metrics.set_circuit(ROUTE, state)
        assert value(metrics, "qroute_circuit_state", route=ROUTE) == expected

    def test_unknown_state_is_refused(self, metrics: Metrics) -> None:
        """A misspelt state raises instead of exporting a misleading number."""
        with pytest.raises(ValueError, match="unknown circuit state"):
            metrics.set_circuit(ROUTE, "ajar")

    def test_set_circuits_from_mapping(self, metrics: Metrics) -> None:
        """A whole circuit_states() mapping is recorded at once."""
        metrics.set_circuits({ROUTE: "open", "anthropic/claude-haiku": "closed"})
        assert value(metrics, "qroute_circuit_state", route=ROUTE) == 2.0
        assert value(metrics, "qroute_circuit_state", route="anthropic/claude-haiku") == 0.0


class TestConsumer:
    """Consumer-side gauges and counters."""

    def test_gauges_follow_the_latest_value(self, metrics: Metrics) -> None:
        """In-flight and assignment gauges show the last value set."""
        metrics.set_in_flight(7)
        metrics.set_in_flight(3)
        metrics.set_assigned(4)
        assert value(metrics, "qroute_in_flight") == 3.0
        assert value(metrics, "qroute_assigned_partitions") == 4.0

    def test_lag_per_partition_and_removal(self, metrics: Metrics) -> None:
        """Lag is kept per (topic, partition) and can be forgotten on revoke."""
        metrics.set_lag("qroute.jobs", 0, 12)
        metrics.set_lag("qroute.jobs", 1, 0)
        assert value(metrics, "qroute_consumer_lag", topic="qroute.jobs", partition="0") == 12.0
        metrics.remove_lag("qroute.jobs", 0)
        metrics.remove_lag("qroute.jobs", 9)  # never set: no error
        assert value(metrics, "qroute_consumer_lag", topic="qroute.jobs", partition="0") is None
        assert value(metrics, "qroute_consumer_lag", topic="qroute.jobs", partition="1") == 0.0

    def test_commits(self, metrics: Metrics) -> None:
        """Each successful commit increments the counter."""
        metrics.committed()
        metrics.committed()
        assert value(metrics, "qroute_commits_total") == 2.0
