"""The planner: eligibility with reasons, cheapest-first ranking, deterministic ties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.catalog.types import ModelSpec, ProviderSpec, Route
from qroute.models import Capability, Job
from qroute.routing.planner import plan
from qroute.routing.tokens import estimate_input_tokens
from qroute.types import RouteHealth


def route(
    provider: str,
    model: str,
    *,
    tier: int = 2,
    input_per_m: str = "1.00",
    output_per_m: str = "2.00",
    context_window: int = 128_000,
    max_output_tokens: int = 16_384,
    capabilities: frozenset[Capability] = frozenset(),
) -> Route:
    return Route(
        provider=ProviderSpec(name=provider, family="openai", base_url="http://127.0.0.1:1/v1"),
        model=ModelSpec(
            provider=provider,
            model=model,
            tier=tier,
            input_per_m=Decimal(input_per_m),
            output_per_m=Decimal(output_per_m),
            context_window=context_window,
            max_output_tokens=max_output_tokens,
            capabilities=capabilities,
            price_source="test",
            price_date=date(2026, 11, 1),
        ),
    )


def job(content: str = "Summarise this text.", **fields: Any) -> Job:
    return Job.model_validate({"id": "j1", "messages": [{"role": "user", "content": content}], **fields})


CHEAP = route("a", "cheap", tier=1, input_per_m="0.10", output_per_m="0.40")
MID = route(
    "b", "mid", tier=2, input_per_m="1.00", output_per_m="4.00", capabilities=frozenset({"json_mode"})
)
STRONG = route("c", "strong", tier=4, input_per_m="5.00", output_per_m="25.00", max_output_tokens=64_000)
ALL = (STRONG, MID, CHEAP)


def ids(routes: Any) -> list[str]:
    return [r.route.id for r in routes]


class TestEligibility:
    def test_all_routes_eligible_without_constraints(self) -> None:
        """With no constraints every route is eligible and ranked cheapest first."""
        result = plan(job(), ALL)
        assert ids(result.ranked) == ["a/cheap", "b/mid", "c/strong"]
        assert all(v.eligible and v.reasons == () for v in result.verdicts)

    def test_allowlist_by_model_name_or_route_id(self) -> None:
        """allowed_models matches catalog model names and provider/model route ids."""
        result = plan(job(constraints={"allowed_models": ["mid", "c/strong"]}), ALL)
        assert ids(result.ranked) == ["b/mid", "c/strong"]
        cheap = next(v for v in result.verdicts if v.route.id == "a/cheap")
        assert cheap.reasons == ("model cheap is not in allowed_models",)

    def test_min_tier(self) -> None:
        """Without an allowlist, routes below min_tier are dropped."""
        result = plan(job(constraints={"min_tier": 2}), ALL)
        assert ids(result.ranked) == ["b/mid", "c/strong"]
        assert result.verdicts[0].reasons == ("tier 1 < min_tier 2",)

    def test_allowlist_wins_over_min_tier(self) -> None:
        """An explicitly allowed model is eligible even below min_tier."""
        result = plan(job(constraints={"allowed_models": ["cheap"], "min_tier": 3}), ALL)
        assert ids(result.ranked) == ["a/cheap"]

    def test_context_window_counts_input_and_max_output(self) -> None:
        """A route is dropped when estimated input + max_tokens exceeds its context window."""
        small = route("d", "small", context_window=1000, max_output_tokens=1000)
        the_job = job("word " * 400, params={"max_tokens": 900})
        estimated = estimate_input_tokens(the_job)
        verdict = plan(the_job, [small]).verdicts[0]
        assert not verdict.eligible
        assert verdict.reasons == (f"context window 1000 < estimated {estimated} input + 900 max output",)

    def test_max_output_tokens(self) -> None:
        """A route whose output limit is below max_tokens is dropped."""
        result = plan(job(params={"max_tokens": 20_000}), ALL)
        assert ids(result.ranked) == ["c/strong"]
        assert "max output 16384 < max_tokens 20000" in result.verdicts[0].reasons

    def test_required_capabilities(self) -> None:
        """Routes missing a required capability are dropped, naming the capability."""
        result = plan(job(constraints={"required_capabilities": ["json_mode", "tools"]}), ALL)
        assert result.ranked == ()
        assert result.verdicts[1].reasons == ("missing capabilities: tools",)

    def test_json_response_format_implies_json_mode(self) -> None:
        """response_format json_object needs json_mode even when not listed."""
        result = plan(job(params={"response_format": "json_object"}), ALL)
        assert ids(result.ranked) == ["b/mid"]
        assert result.verdicts[0].reasons == ("missing capabilities: json_mode",)

    def test_excluded_provider(self) -> None:
        """An excluded provider's routes are dropped."""
        result = plan(job(constraints={"excluded_providers": ["a"]}), ALL)
        assert ids(result.ranked) == ["b/mid", "c/strong"]
        assert result.verdicts[0].reasons == ("provider a is excluded",)

    def test_price_cap_uses_full_max_tokens(self) -> None:
        """The cap is checked against input + the full max_tokens, not the expected output."""
        the_job = job("hi", params={"max_tokens": 1000})
        tokens_in = estimate_input_tokens(the_job)
        # expected (500 out) fits a cap that the worst case (1000 out) does not
        expected = (tokens_in * Decimal("1.00") + 500 * Decimal("4.00")) / 1_000_000
        worst = (tokens_in * Decimal("1.00") + 1000 * Decimal("4.00")) / 1_000_000
        cap = (expected + worst) / 2
        result = plan(job("hi", params={"max_tokens": 1000}, constraints={"max_cost_usd": str(cap)}), [MID])
        assert result.ranked == ()
        (reason,) = result.verdicts[0].reasons
        assert reason.startswith(
            f"worst-case cost ${worst.normalize():f} ({tokens_in} input + 1000 max output)"
        )
        assert result.verdicts[0].estimate.cost_usd == expected

    def test_price_cap_allows_exact_worst_case(self) -> None:
        """A cap equal to the worst case is allowed (≤, not <)."""
        tokens_in = estimate_input_tokens(job("hi", params={"max_tokens": 1000}))
        worst = (tokens_in * Decimal("1.00") + 1000 * Decimal("4.00")) / 1_000_000
        result = plan(job("hi", params={"max_tokens": 1000}, constraints={"max_cost_usd": str(worst)}), [MID])
        assert ids(result.ranked) == ["b/mid"]

    def test_none_eligible_explains_every_route(self) -> None:
        """When nothing fits, the plan is empty and every verdict carries reasons."""
        result = plan(job(constraints={"excluded_providers": ["a", "b", "c"]}), ALL)
        assert result.ranked == ()
        assert all(v.reasons for v in result.verdicts)
        assert result.explanation.count("is excluded") == 3

    def test_no_routes(self) -> None:
        """An empty catalog gives an empty plan."""
        result = plan(job(), [])
        assert result.ranked == ()
        assert result.verdicts == ()


class TestEstimates:
    def test_expected_output_is_ratio_of_max_tokens(self) -> None:
        """Estimates use ratio × max_tokens output tokens, rounded up."""
        result = plan(job(params={"max_tokens": 1001}), [CHEAP], expected_output_ratio=0.25)
        assert result.ranked[0].output_tokens == 251

    def test_estimate_cost_is_exact(self) -> None:
        """Estimated cost is input × input price + expected output × output price, exact."""
        the_job = job(params={"max_tokens": 100})
        tokens_in = estimate_input_tokens(the_job)
        (estimate,) = plan(the_job, [CHEAP]).ranked
        assert estimate.input_tokens == tokens_in
        assert estimate.cost_usd == (tokens_in * Decimal("0.10") + 50 * Decimal("0.40")) / 1_000_000

    def test_bad_ratio_is_refused(self) -> None:
        """An expected-output ratio outside (0, 1] is a configuration error."""
        with pytest.raises(ValueError):
            plan(job(), ALL, expected_output_ratio=0.0)


class TestTieBreaks:
    def test_higher_tier_first_at_equal_cost(self) -> None:
        """At equal estimated cost the higher tier ranks first."""
        low, high = route("x", "low", tier=1), route("y", "high", tier=3)
        assert ids(plan(job(), [low, high]).ranked) == ["y/high", "x/low"]

    def test_lower_latency_then_unknown_last(self) -> None:
        """At equal cost and tier, lower observed latency first; unknown latency last."""
        routes = [route("p", "m"), route("q", "m"), route("r", "m")]
        health = {"p/m": RouteHealth(latency_s=2.0), "r/m": RouteHealth(latency_s=0.5)}
        assert ids(plan(job(), routes, health).ranked) == ["r/m", "p/m", "q/m"]

    def test_route_id_last(self) -> None:
        """Full ties are broken by route id, whatever the input order."""
        routes = [route("z", "m"), route("a", "m"), route("m", "m")]
        assert ids(plan(job(), routes).ranked) == ["a/m", "m/m", "z/m"]

    def test_open_circuit_does_not_change_the_plan(self) -> None:
        """Circuit state is the attempt loop's concern, not the planner's."""
        health = {"a/cheap": RouteHealth(circuit_open=True)}
        assert ids(plan(job(), ALL, health).ranked) == ids(plan(job(), ALL).ranked)


# --- properties ---------------------------------------------------------------

price = st.decimals(min_value=0, max_value=50, places=3).map(str)


@st.composite
def routes(draw: st.DrawFn) -> list[Route]:
    count = draw(st.integers(min_value=0, max_value=8))
    out: list[Route] = []
    for i in range(count):
        window = draw(st.integers(min_value=16, max_value=300_000))
        out.append(
            route(
                draw(st.sampled_from(["a", "b", "c"])),
                f"m{i}",
                tier=draw(st.integers(min_value=1, max_value=4)),
                input_per_m=draw(price),
                output_per_m=draw(price),
                context_window=window,
                max_output_tokens=draw(st.integers(min_value=1, max_value=window)),
                capabilities=frozenset(draw(st.sets(st.sampled_from(["json_mode", "tools", "vision"])))),
            )
        )
    return out


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    constraints: dict[str, Any] = {
        "required_capabilities": sorted(draw(st.sets(st.sampled_from(["json_mode", "tools", "vision"])))),
        "excluded_providers": sorted(draw(st.sets(st.sampled_from(["a", "b", "c"]), max_size=2))),
    }
    if draw(st.booleans()):
        constraints["min_tier"] = draw(st.integers(min_value=1, max_value=4))
    if draw(st.booleans()):
        names = st.sampled_from([f"m{i}" for i in range(8)] + ["a/m1", "b/m2", "c/m3"])
        constraints["allowed_models"] = draw(st.lists(names, min_size=1, max_size=4))
    if draw(st.booleans()):
        constraints["max_cost_usd"] = str(draw(st.decimals(min_value=0, max_value=1, places=6)))
    return job(
        draw(st.text(min_size=1, max_size=300)),
        params={
            "max_tokens": draw(st.integers(min_value=1, max_value=100_000)),
            "response_format": draw(st.sampled_from(["text", "json_object"])),
        },
        constraints=constraints,
    )


def eligible_by_hand(the_job: Job, candidate: Route) -> bool:
    """The eligibility rules restated independently of the planner's code."""
    c, spec = the_job.constraints, candidate.model
    tokens_in, max_out = estimate_input_tokens(the_job), the_job.params.max_tokens
    needed = set(c.required_capabilities) | (
        {"json_mode"} if the_job.params.response_format == "json_object" else set()
    )
    allowed = (
        spec.model in c.allowed_models or candidate.id in c.allowed_models
        if c.allowed_models is not None
        else c.min_tier is None or spec.tier >= c.min_tier
    )
    worst = (tokens_in * spec.input_per_m + max_out * spec.output_per_m) / 1_000_000
    return (
        allowed
        and spec.context_window >= tokens_in + max_out
        and spec.max_output_tokens >= max_out
        and needed <= spec.capabilities
        and spec.provider not in c.excluded_providers
        and (c.max_cost_usd is None or worst <= c.max_cost_usd)
    )


class TestPlannerProperties:
    @given(jobs(), routes())
    def test_ranked_is_sorted_by_cost_and_only_eligible(self, the_job: Job, candidates: list[Route]) -> None:
        """No route ranks above a cheaper eligible one, and every ranked route is eligible."""
        result = plan(the_job, candidates)
        costs = [e.cost_usd for e in result.ranked]
        assert costs == sorted(costs)
        assert [e.route.id for e in result.ranked] == [v.route.id for v in result.verdicts if v.eligible]
        assert {e.route.id for e in result.ranked} == {
            r.id for r in candidates if eligible_by_hand(the_job, r)
        }

    @given(jobs(), routes())
    def test_every_route_gets_one_verdict(self, the_job: Job, candidates: list[Route]) -> None:
        """Each input route has exactly one verdict; ineligible ones always say why."""
        result = plan(the_job, candidates)
        assert sorted(v.route.id for v in result.verdicts) == sorted(r.id for r in candidates)
        assert all(v.eligible == (v.reasons == ()) for v in result.verdicts)

    @given(jobs(), routes())
    def test_nothing_eligible_means_empty_plan(self, the_job: Job, candidates: list[Route]) -> None:
        """Excluding every provider leaves nothing ranked and a reason for every route."""
        blocked = the_job.model_copy(
            update={
                "constraints": the_job.constraints.model_copy(update={"excluded_providers": ["a", "b", "c"]})
            }
        )
        result = plan(blocked, candidates)
        assert result.ranked == ()
        assert all(any("excluded" in r for r in v.reasons) for v in result.verdicts)
