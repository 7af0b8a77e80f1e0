"""Small shared types of the decode → plan → execute → emit → commit pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteHealth:
    """What the planner may know about a route right now (from the resilience layer).

    The planner only reads it; `qroute.resilience` owns and updates it.
    """

    latency_s: float | None = None
    """Observed provider latency (EWMA), None before the first call."""
    circuit_open: bool = False
    """True while the route's circuit breaker refuses calls."""


RouteHealthView = Mapping[str, RouteHealth]
"""Route id (`provider/model`) → health. Missing routes are unknown, i.e. healthy."""
