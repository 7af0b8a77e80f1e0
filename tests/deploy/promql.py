"""The PromQL expressions of the alert rules and the dashboard, and what they reference.

Not a PromQL parser: promtool checks the syntax (test_prometheus.py). This only
pulls out metric names, label matchers and grouping labels, which is all the
cross-check against the worker's registry needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$route": ".*",
}
"""Grafana's template variables with a value that makes the expression plain PromQL."""

_SELECTOR = re.compile(r"\b(qroute_[a-z0-9_]+)\b(\{[^}]*\})?")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it came from (for failure messages)."""

    where: str
    text: str


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


def alert_expressions(rules: dict[str, Any]) -> Iterator[Expression]:
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            yield Expression(f"alerts.yml {group['name']}/{name}", str(rule["expr"]))


def dashboard_expressions(dashboard: dict[str, Any]) -> Iterator[Expression]:
    """Every panel target's expr, and the template variables' queries."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield Expression(f"qroute.json panel {panel['title']!r} {target['refId']}", target["expr"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            yield Expression(f"qroute.json variable {variable['name']}", query["query"])


def substitute_grafana_variables(text: str) -> str:
    """Replace Grafana variables (longest first) so promtool can parse the expression."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        text = text.replace(name, GRAFANA_VARIABLES[name])
    return text


def selectors(text: str) -> list[Selector]:
    """qroute_* metric references with the label names of their matchers."""
    return [
        Selector(m.group(1), frozenset(_MATCHER_LABEL.findall(m.group(2) or "")))
        for m in _SELECTOR.finditer(text)
    ]


def grouping_labels(text: str) -> set[str]:
    """Labels named in by (...) / without (...) clauses."""
    return {
        label.strip() for m in _GROUPING.finditer(text) for label in m.group(1).split(",") if label.strip()
    }
