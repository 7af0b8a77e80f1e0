"""Resilience: backoff, circuit breakers, pacing and latency per route, gathered in `RouteStateBook`."""

from qroute.resilience.backoff import backoff_delay, retry_delay
from qroute.resilience.circuit import CircuitBreaker, CircuitState
from qroute.resilience.latency import LatencyEwma
from qroute.resilience.pacing import ProviderLimiter, RoutePacer, TokenBucket, spread_wakeup
from qroute.resilience.state import RouteStateBook

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "LatencyEwma",
    "ProviderLimiter",
    "RoutePacer",
    "RouteStateBook",
    "TokenBucket",
    "backoff_delay",
    "retry_delay",
    "spread_wakeup",
]
