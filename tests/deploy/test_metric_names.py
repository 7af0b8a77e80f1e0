"""Every metric the alerts and the dashboard query is one the worker exports, with those labels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from qroute.models import Usage
from qroute.observability.metrics import METRIC_NAMES, Metrics
from tests.deploy.promql import (
    Expression,
    alert_expressions,
    dashboard_expressions,
    grouping_labels,
    selectors,
)

ROUTE = "sim-cheap/gpt-5-nano"
TARGET_LABELS = frozenset({"instance", "job"})
"""Labels Prometheus adds to every scraped series."""


@pytest.fixture(scope="module")
def exported() -> dict[str, frozenset[str]]:
    """Sample name -> label names, from a worker registry with every labelled series touched once."""
    m = Metrics()
    m.job_finished("succeeded", 1.5)
    m.job_finished("failed", 2.0)
    m.attempt(ROUTE, "success", "done", 0.4)
    m.attempt(ROUTE, "server_error", "failover", 0.2)
    m.cost(ROUTE, Decimal("0.000123"), Usage(input_tokens=100, output_tokens=20))
    m.failover(ROUTE)
    m.rate_limited(ROUTE)
    m.set_circuit(ROUTE, "open")
    m.set_in_flight(3)
    m.set_lag("qroute.jobs", 0, 42)
    m.dlq("oversize")
    m.deferred(30)
    m.committed()
    m.set_assigned(4)
    out: dict[str, frozenset[str]] = {}
    for family in m.registry.collect():
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, frozenset()) | frozenset(sample.labels)
    return out


def expressions(alerts: dict[str, Any], dashboard: dict[str, Any]) -> list[Expression]:
    return [*alert_expressions(alerts), *dashboard_expressions(dashboard)]


class TestMetricNames:
    """Names and labels in PromQL match the worker's registry."""

    def test_registry_exports_the_documented_families(self, exported: dict[str, frozenset[str]]) -> None:
        """The exercised registry has a sample for every family in METRIC_NAMES (sanity of the fixture)."""
        for name in METRIC_NAMES:
            assert any(s == name or s.startswith(name + "_") for s in exported), name

    def test_every_referenced_metric_is_exported(
        self, alerts: dict[str, Any], dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
    ) -> None:
        """qroute_* names (with their _bucket/_sum/_count/_total forms) exist in the scrape."""
        missing = [
            f"{expr.where}: {sel.metric}"
            for expr in expressions(alerts, dashboard)
            for sel in selectors(expr.text)
            if sel.metric not in exported
        ]
        assert not missing, missing

    def test_matchers_use_labels_the_metric_has(
        self, alerts: dict[str, Any], dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
    ) -> None:
        """A matcher on a label the series lacks would silently select nothing."""
        wrong = [
            f"{expr.where}: {sel.metric} has no label(s) {sorted(sel.labels - exported[sel.metric] - TARGET_LABELS)}"
            for expr in expressions(alerts, dashboard)
            for sel in selectors(expr.text)
            if sel.metric in exported and not sel.labels <= exported[sel.metric] | TARGET_LABELS
        ]
        assert not wrong, wrong

    def test_grouping_labels_exist_on_the_metrics_grouped(
        self, alerts: dict[str, Any], dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
    ) -> None:
        """by (...) names labels of the expression's qroute metrics (or target labels)."""
        wrong = []
        for expr in expressions(alerts, dashboard):
            metrics = [s.metric for s in selectors(expr.text) if s.metric in exported]
            if not metrics:
                continue  # recording-rule inputs such as qroute:consumer_lag:sum
            available = frozenset().union(*(exported[m] for m in metrics)) | TARGET_LABELS
            unknown = grouping_labels(expr.text) - available
            if unknown:
                wrong.append(f"{expr.where}: {sorted(unknown)}")
        assert not wrong, wrong

    def test_the_check_sees_a_wrong_name(self, exported: dict[str, frozenset[str]]) -> None:
        """A misspelt metric or label is caught by the helpers the checks above use."""
        sel = selectors('sum by (route) (rate(qroute_job_total{status="failed"}[5m]))')
        assert sel[0].metric not in exported
        (lag,) = selectors('max(qroute_consumer_lag{route="x"})')
        assert not lag.labels <= exported[lag.metric]

    def test_both_sources_reference_metrics(self, alerts: dict[str, Any], dashboard: dict[str, Any]) -> None:
        """The extraction found expressions in both files (an empty scan would pass vacuously)."""
        assert sum(1 for e in alert_expressions(alerts) if selectors(e.text)) >= 6
        assert sum(1 for e in dashboard_expressions(dashboard) if selectors(e.text)) >= 15
