"""The planner: which routes may serve a job, cheapest estimated cost first.

Pure and synchronous: a `Job`, the candidate routes and (optionally) what the
resilience layer knows about them go in; a `Plan` comes out. Every route gets a
verdict with human-readable reasons, so `qroute route --explain` and a
`no_eligible_route` failure can say exactly why a route was dropped.

Eligibility (all must hold):
- the model is allowed: in `constraints.allowed_models` (by model name or route
  id); with no allowlist, its tier is at least `constraints.min_tier`. An
  explicit allowlist wins over `min_tier`: naming a model is the stronger choice;
- context window ≥ estimated input + `params.max_tokens` (the estimate is
  unbiased, ~7 % mean error, see `qroute.routing.tokens`: a job right at a
  window's edge may still get a `context_length` answer, which the attempt loop
  treats as a failover, not a retry);
- model's max output ≥ `params.max_tokens`;
- every required capability is supported (`response_format: json_object`
  requires `json_mode`);
- the provider is not excluded;
- worst-case cost ≤ `constraints.max_cost_usd`, where worst case is the
  estimated input plus the *full* `max_tokens` of output. The ranking uses the
  expected output (ratio × max_tokens), but a cap is a promise, so it is checked
  against the most the answer can cost given the input estimate.

Ranking: estimated cost, then higher tier, then lower observed latency (unknown
last), then route id, so equal inputs always give the same order. Circuit
state is deliberately ignored: the attempt loop skips open circuits and can
come back to them when they half-open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter

from qroute.catalog.types import Route
from qroute.models import Capability, Job
from qroute.money import usd
from qroute.routing.cost import estimate_cost
from qroute.routing.tokens import estimate_input_tokens, expected_output_tokens
from qroute.types import RouteHealth, RouteHealthView

_UNKNOWN = RouteHealth()
_sort_key = itemgetter(0, 1, 2, 3, 4)
"""Cost, higher tier first, known latency first, lower latency, route id; never the verdict itself."""


@dataclass(frozen=True, slots=True)
class RouteEstimate:
    """What one route is expected to cost for one job, before any call."""

    route: Route
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class RouteVerdict:
    """Whether a route may serve the job; `reasons` is empty when it may."""

    route: Route
    eligible: bool
    reasons: tuple[str, ...]
    estimate: RouteEstimate


@dataclass(frozen=True, slots=True)
class Plan:
    """Eligible routes in the order to try them, plus a verdict for every route."""

    ranked: tuple[RouteEstimate, ...]
    verdicts: tuple[RouteVerdict, ...]
    """Every route, eligible or not, in ranking order (cheapest first)."""

    @property
    def explanation(self) -> str:
        """One line per ineligible route: why no route was left, for a failed Result."""
        return "; ".join(f"{v.route.id}: {', '.join(v.reasons)}" for v in self.verdicts if not v.eligible)


@dataclass(frozen=True, slots=True)
class _Needs:
    """The job's requirements, computed once per job rather than once per route."""

    input_tokens: int
    expected_output: int
    max_tokens: int
    allowed: frozenset[str] | None
    min_tier: int | None
    capabilities: tuple[Capability, ...]
    excluded: frozenset[str]
    max_cost: Decimal | None


def _needs(job: Job, expected_output_ratio: float) -> _Needs:
    constraints = job.constraints
    capabilities = list(dict.fromkeys(constraints.required_capabilities))
    if job.params.response_format == "json_object" and "json_mode" not in capabilities:
        capabilities.append("json_mode")
    return _Needs(
        input_tokens=estimate_input_tokens(job),
        expected_output=expected_output_tokens(job, expected_output_ratio),
        max_tokens=job.params.max_tokens,
        allowed=None if constraints.allowed_models is None else frozenset(constraints.allowed_models),
        min_tier=constraints.min_tier,
        capabilities=tuple(capabilities),
        excluded=frozenset(constraints.excluded_providers),
        max_cost=constraints.max_cost_usd,
    )


def _reasons(route: Route, route_id: str, needs: _Needs) -> tuple[str, ...]:
    spec = route.model
    reasons: list[str] = []
    if needs.allowed is not None:
        if spec.model not in needs.allowed and route_id not in needs.allowed:
            reasons.append(f"model {spec.model} is not in allowed_models")
    elif needs.min_tier is not None and spec.tier < needs.min_tier:
        reasons.append(f"tier {spec.tier} < min_tier {needs.min_tier}")
    if spec.context_window < needs.input_tokens + needs.max_tokens:
        reasons.append(
            f"context window {spec.context_window} < estimated {needs.input_tokens} input"
            f" + {needs.max_tokens} max output"
        )
    if spec.max_output_tokens < needs.max_tokens:
        reasons.append(f"max output {spec.max_output_tokens} < max_tokens {needs.max_tokens}")
    missing = [c for c in needs.capabilities if c not in spec.capabilities]
    if missing:
        reasons.append(f"missing capabilities: {', '.join(missing)}")
    if spec.provider in needs.excluded:
        reasons.append(f"provider {spec.provider} is excluded")
    if needs.max_cost is not None:
        worst = estimate_cost(needs.input_tokens, needs.max_tokens, spec)
        if worst > needs.max_cost:
            reasons.append(
                f"worst-case cost {usd(worst)} ({needs.input_tokens} input + {needs.max_tokens} max output)"
                f" > max_cost_usd {usd(needs.max_cost)}"
            )
    return tuple(reasons)


def plan(
    job: Job,
    routes: Sequence[Route],
    health: RouteHealthView | None = None,
    *,
    expected_output_ratio: float = 0.5,
) -> Plan:
    """Judge every route for `job` and rank the eligible ones, cheapest estimate first."""
    needs = _needs(job, expected_output_ratio)
    health = health or {}
    tokens_in, tokens_out = needs.input_tokens, needs.expected_output
    keyed: list[tuple[Decimal, int, bool, float, str, RouteVerdict]] = []
    for route in routes:
        spec = route.model
        route_id = spec.route_id
        cost = estimate_cost(tokens_in, tokens_out, spec)
        reasons = _reasons(route, route_id, needs)
        latency = health.get(route_id, _UNKNOWN).latency_s
        verdict = RouteVerdict(route, not reasons, reasons, RouteEstimate(route, tokens_in, tokens_out, cost))
        keyed.append((cost, -spec.tier, latency is None, latency or 0.0, route_id, verdict))
    keyed.sort(key=_sort_key)
    verdicts = tuple(item[-1] for item in keyed)
    ranked = tuple(v.estimate for v in verdicts if v.eligible)
    return Plan(ranked=ranked, verdicts=verdicts)
