"""The attempt loop against the provider simulator over real HTTP on loopback (issue 3, "Done when").

No Kafka and no mocks: an `Executor` with the production HTTP client talks to a
`SimServer` whose prices equal the catalog's (`sim_routes_settings`), so every
cost record can be checked against the simulator's own ledger, exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from qroute.catalog.load import active_routes, build_catalog
from qroute.catalog.types import Route
from qroute.config import RoutingSettings, Settings
from qroute.execute import CatalogInfo, Executor
from qroute.models import Attempt, CostRecord, Job, Message
from qroute.providers.http import make_http_client
from qroute.resilience.circuit import CircuitState
from qroute.resilience.state import RouteStateBook
from qroute.routing.tokens import estimate_input_tokens
from qroute.sim import SimConfig, SimServer
from qroute.sim.ledger import Ledger, LedgerEntry
from qroute.sim.testing import sim_config, sim_model, sim_provider
from qroute.sim.text import prompt_tokens
from qroute.testing import sim_routes_settings
from qroute.worker.processing import Deferred, Finished

FAST = RoutingSettings(
    deadline_margin_s=0.2,
    backoff_base_s=0.01,
    backoff_cap_s=0.05,
    circuit_failure_threshold=3,
    circuit_open_s=1.0,
)
"""Small waits so the file runs in seconds; a 3-failure breaker that probes after 1 s."""

LOOPBACK_LATENCY_S = 0.05
"""Expected latency before a route's first success: the simulator answers at once."""

CHEAP_PROMPT = "Summarise the minutes of the harbour committee meeting in two sentences."


def cheap_and_mid(*, cheap_window: int = 8192, **cheap: Any) -> SimConfig:
    """`cheap` (OpenAI format) is 10x cheaper than `mid` (Anthropic format); both answer at once."""
    return sim_config(
        sim_provider(
            "cheap",
            "openai",
            models=[
                sim_model(
                    "small",
                    input_per_m="0.10",
                    cached_input_per_m="0.01",
                    output_per_m="0.40",
                    context_window=cheap_window,
                )
            ],
            **cheap,
        ),
        sim_provider(
            "mid",
            "anthropic",
            models=[
                sim_model(
                    "large",
                    input_per_m="1.00",
                    cached_input_per_m="0.10",
                    output_per_m="4.00",
                    context_window=200_000,
                )
            ],
        ),
    )


@dataclass
class Loop:
    """An attempt loop wired to a running simulator."""

    executor: Executor
    state: RouteStateBook
    routes: dict[str, Route]
    """By provider name."""

    def circuit(self, provider: str) -> CircuitState:
        return self.state.circuit_states().get(self.routes[provider].id, "closed")


@contextlib.asynccontextmanager
async def attempt_loop(
    sim: SimServer,
    routing: RoutingSettings = FAST,
    *,
    provider_overrides: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Loop]:
    """The production pieces (catalog, route state, shared HTTP client, Executor) against `sim`."""
    settings = sim_routes_settings(Settings(routing=routing), sim, provider_overrides=provider_overrides)
    catalog = build_catalog(settings, env={})
    routes = active_routes(catalog, env={})
    state = RouteStateBook(settings.routing, catalog.providers, default_latency_s=LOOPBACK_LATENCY_S)
    client = make_http_client()
    executor = Executor(
        routes=routes,
        state=state,
        client=client,
        api_keys={},
        settings=settings.routing,
        catalog=CatalogInfo(source=catalog.source, version=catalog.version),
    )
    try:
        yield Loop(executor, state, {r.provider.name: r for r in routes})
    finally:
        await client.aclose()


def make_job(
    prompt: str = CHEAP_PROMPT,
    *,
    job_id: str = "job-1",
    deadline_in_s: float | None = None,
    max_tokens: int = 64,
) -> Job:
    deadline = None
    if deadline_in_s is not None:
        deadline = datetime.now(UTC) + timedelta(seconds=deadline_in_s)
    return Job(
        id=job_id,
        messages=[Message(role="user", content=prompt)],
        params={"max_tokens": max_tokens},
        constraints={"deadline": deadline},
    )


async def finish(loop: Loop, job: Job, prior: tuple[Attempt, ...] = ()) -> Finished:
    out = await loop.executor.run(job, prior)
    assert isinstance(out, Finished), out
    return out


BillLine = tuple[str, str, int, int, int, Decimal]
"""provider, model, input tokens (cached included), cached input tokens, output tokens, cost."""


def attempt_lines(records: Sequence[CostRecord]) -> Counter[BillLine]:
    """Billed attempts in the form the ledger lists them."""
    lines: Counter[BillLine] = Counter()
    for record in records:
        for a in record.attempts:
            if a.billed:
                assert a.usage is not None
                u = a.usage
                lines[
                    (a.provider, a.model, u.input_tokens, u.cached_input_tokens, u.output_tokens, a.cost_usd)
                ] += 1
    return lines


def ledger_lines(entries: Sequence[LedgerEntry]) -> Counter[BillLine]:
    return Counter(
        (e.provider, e.model, e.input_tokens, e.cached_input_tokens, e.output_tokens, e.cost) for e in entries
    )


def assert_reconciles(records: Sequence[CostRecord], ledger: Ledger) -> None:
    """Every billed attempt is one ledger entry with the same tokens and cost; unbilled ones cost 0."""
    assert attempt_lines(records) == ledger_lines(ledger.entries)
    total = sum((r.total_cost_usd for r in records), start=Decimal(0))
    assert total == ledger.total_cost
    for record in records:
        assert record.total_cost_usd == sum((a.cost_usd for a in record.attempts), start=Decimal(0))
        for a in record.attempts:
            if not a.billed:
                assert (a.cost_usd, a.usage) == (Decimal(0), None)


async def use_up_requests(sim: SimServer, provider: str, model: str) -> None:
    """Another client of the same account spends the provider's request quota before the job arrives."""
    async with httpx.AsyncClient(timeout=10.0) as other:
        response = await other.post(
            f"{sim.base_url(provider)}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "other tenant"}], "max_tokens": 8},
        )
    assert response.status_code == 200


def attempt_end(a: Attempt) -> float:
    return a.started_at.timestamp() + a.duration_ms / 1000


class TestRateLimitedCheapestRoute:
    """A 429 with retry-after on the cheapest route: wait for it when the deadline allows, else fail over."""

    async def test_far_deadline_waits_in_process_and_is_served_on_the_cheap_route(self) -> None:
        """retry-after 1 s (≤ defer_threshold_s): the job sleeps it out and the cheap route serves it."""
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim) as loop:
            out = await finish(loop, make_job(f"{CHEAP_PROMPT} [sim:429*1@cheap]", deadline_in_s=60))
            ledger = await sim.ledger()
        limited, served = out.cost.attempts
        assert (limited.provider, limited.outcome, limited.status_code) == ("cheap", "rate_limited", 429)
        assert (limited.billed, limited.cost_usd, limited.usage) == (False, Decimal(0), None)
        assert (served.provider, served.outcome, served.billed) == ("cheap", "success", True)
        # retry-after: 1 was honoured (a millisecond of slack for the microsecond rounding of timestamps)
        assert served.started_at.timestamp() - attempt_end(limited) >= 0.999
        assert out.result.status == "succeeded"
        assert out.result.provider == "cheap"
        assert "mid" not in ledger.status_counts, "the dearer route was never called"
        assert_reconciles([out.cost], ledger)
        assert out.cost.total_cost_usd == ledger.total_cost > 0

    async def test_far_deadline_wait_above_threshold_is_deferred_then_served_on_the_cheap_route(self) -> None:
        """A wait longer than defer_threshold_s comes back as Deferred; the rerun is served on the cheap route."""
        routing = FAST.model_copy(update={"defer_threshold_s": 0.5})
        job = make_job(f"{CHEAP_PROMPT} [sim:429*1@cheap]", deadline_in_s=60)
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim, routing) as loop:
            deferred = await loop.executor.run(job)
            assert isinstance(deferred, Deferred)
            (limited,) = deferred.attempts
            assert deferred.not_before >= attempt_end(limited) + 0.999, "no earlier than retry-after: 1"
            await asyncio.sleep(max(0.0, deferred.not_before - time.time()))
            out = await finish(loop, job, deferred.attempts)
            ledger = await sim.ledger()
        assert [(a.provider, a.outcome, a.billed) for a in out.cost.attempts] == [
            ("cheap", "rate_limited", False),
            ("cheap", "success", True),
        ]
        assert [a.n for a in out.cost.attempts] == [1, 2]
        assert out.result.provider == "cheap"
        assert_reconciles([out.cost], ledger)

    async def test_exhausted_quota_with_a_far_deadline_defers_for_the_providers_retry_after(self) -> None:
        """A real rpm 429 (retry-after ~60 s) and a 2-hour deadline: parked until the quota returns, nothing paid."""
        async with SimServer(cheap_and_mid(rpm=1)) as sim, attempt_loop(sim) as loop:
            await use_up_requests(sim, "cheap", "small")
            before = time.time()
            out = await loop.executor.run(make_job(deadline_in_s=7200))
            ledger = await sim.ledger()
        assert isinstance(out, Deferred)
        (limited,) = out.attempts
        assert (limited.provider, limited.status_code, limited.billed, limited.cost_usd) == (
            "cheap",
            429,
            False,
            Decimal(0),
        )
        assert out.not_before >= before + 55, "the provider's retry-after (about a minute) sets the time"
        assert "mid" not in ledger.status_counts

    async def test_near_deadline_fails_over_to_the_next_cheapest_route(self) -> None:
        """A real rpm 429 whose wait would miss a 30 s deadline: the next cheapest route serves the job."""
        async with SimServer(cheap_and_mid(rpm=1)) as sim, attempt_loop(sim) as loop:
            await use_up_requests(sim, "cheap", "small")
            out = await finish(loop, make_job(deadline_in_s=30))
            ledger = await sim.ledger()
        limited, served = out.cost.attempts
        assert (limited.provider, limited.outcome, limited.billed, limited.cost_usd) == (
            "cheap",
            "rate_limited",
            False,
            Decimal(0),
        )
        assert (served.provider, served.outcome, served.billed) == ("mid", "success", True)
        assert out.result.provider == "mid"
        (mid_entry,) = ledger.billed("mid")
        assert ledger_lines([mid_entry]) == attempt_lines([out.cost])
        assert out.cost.total_cost_usd == mid_entry.cost
        assert len(ledger.billed("cheap")) == 1, "only the other tenant's request was billed on cheap"


class TestServerErrorStorm:
    """A 503 storm opens the route's circuit, traffic moves, and a half-open probe closes it afterwards."""

    async def test_circuit_opens_traffic_moves_and_a_probe_closes_it(self) -> None:
        """3 consecutive 503s open cheap's breaker; later jobs go to mid; after the outage one probe closes it."""
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim) as loop:
            sim.set_outage("cheap", True)
            first = await finish(loop, make_job(job_id="storm-0"))
            assert [(a.provider, a.status_code) for a in first.cost.attempts] == [
                ("cheap", 503),
                ("cheap", 503),
                ("cheap", 503),
                ("mid", 200),
            ]
            assert loop.circuit("cheap") == "open"
            during = [await finish(loop, make_job(job_id=f"storm-{i}")) for i in range(1, 6)]
            assert all([a.provider for a in d.cost.attempts] == ["mid"] for d in during), "traffic moved"
            assert (await sim.ledger()).status_counts["cheap"] == {"503": 3}

            sim.set_outage("cheap", False)
            open_until = loop.state.route_state(loop.routes["cheap"]).circuit.open_until()
            assert open_until is not None
            await asyncio.sleep(max(0.0, open_until - time.time()) + 0.01)
            assert loop.circuit("cheap") == "half_open"
            probe = await finish(loop, make_job(job_id="storm-probe"))
            after = await finish(loop, make_job(job_id="storm-after"))
            ledger = await sim.ledger()
        assert [(a.provider, a.outcome) for a in probe.cost.attempts] == [("cheap", "success")]
        assert loop.circuit("cheap") == "closed"
        assert after.result.provider == "cheap"
        assert_reconciles([first.cost, *(d.cost for d in during), probe.cost, after.cost], ledger)

    async def test_an_open_circuit_is_waited_for_only_when_no_other_route_is_left(self) -> None:
        """With cheap's breaker open and mid failing too, the job waits for cheap's probe instead of failing."""
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim) as loop:
            sim.set_outage("cheap", True)
            await finish(loop, make_job(job_id="trip"))
            assert loop.circuit("cheap") == "open"
            sim.set_outage("cheap", False)
            sim.set_outage("mid", True)
            out = await finish(loop, make_job(job_id="last-resort"))
            ledger = await sim.ledger()
        assert [(a.provider, a.status_code) for a in out.cost.attempts] == [
            ("mid", 503),
            ("mid", 503),
            ("mid", 503),
            ("cheap", 200),
        ]
        assert out.result.status == "succeeded"
        assert loop.circuit("cheap") == "closed"
        assert out.cost.total_cost_usd == ledger.total_for("cheap")


class TestRejectedRequests:
    """A request the provider rejects on its merits ends the job; one too long for a model moves it."""

    async def test_invalid_request_fails_the_job_with_the_providers_message_and_no_failover(self) -> None:
        """[sim:400]: one attempt, a failed result quoting the provider, nothing billed, mid never called."""
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim) as loop:
            out = await finish(loop, make_job(f"{CHEAP_PROMPT} [sim:400]"))
            ledger = await sim.ledger()
        (only,) = out.cost.attempts
        assert (only.provider, only.outcome, only.action, only.status_code) == (
            "cheap",
            "bad_request",
            "terminal",
            400,
        )
        assert out.result.status == "failed"
        assert out.result.error is not None
        assert out.result.error.type == "provider_rejected"
        assert "Invalid request (forced by [sim:400])" in out.result.error.message
        assert ledger.status_counts == {"cheap": {"400": 1}}
        assert (out.cost.total_cost_usd, ledger.total_cost) == (Decimal(0), Decimal(0))

    async def test_context_length_error_fails_over_to_a_larger_window_route(self) -> None:
        """The planner's estimate fits cheap's 1k window, the provider counts more: mid (200k) serves."""
        prompt = "abcdefghij" * 400  # one long "word": the offline estimate is far below chars/4
        job = make_job(prompt)
        window = 1024
        assert estimate_input_tokens(job) + job.params.max_tokens <= window, "the planner keeps cheap"
        assert prompt_tokens(prompt, 1) + 64 > window, "the sim refuses"
        async with SimServer(cheap_and_mid(cheap_window=window)) as sim, attempt_loop(sim) as loop:
            out = await finish(loop, job)
            ledger = await sim.ledger()
        rejected, served = out.cost.attempts
        assert (rejected.provider, rejected.outcome, rejected.action, rejected.billed) == (
            "cheap",
            "context_length",
            "failover",
            False,
        )
        assert rejected.error is not None
        assert "maximum context length is 1024 tokens" in rejected.error
        assert (served.provider, served.outcome) == ("mid", "success")
        assert out.result.provider == "mid"
        assert_reconciles([out.cost], ledger)


FAULTS = [
    pytest.param("malformed", "malformed_response", id="malformed-json"),
    pytest.param("no-usage", "malformed_response", id="200-without-usage"),
    pytest.param("truncated", "connection_error", id="truncated-body"),  # the connection is cut mid-body
    pytest.param("reset", "connection_error", id="connection-reset"),
    pytest.param("timeout", "timeout", id="read-timeout"),
]
SHORT_TIMEOUTS = {"cheap": {"read_timeout_s": 0.5, "total_timeout_s": 1.0}}


class TestBrokenAnswers:
    """Garbage, cut bodies, resets and timeouts become classified attempts, never exceptions."""

    @pytest.mark.parametrize(("fault", "outcome"), FAULTS)
    async def test_a_single_fault_is_retried_on_the_same_route(self, fault: str, outcome: str) -> None:
        """One broken answer, then the cheap route serves: the broken attempt is unbilled."""
        async with (
            SimServer(cheap_and_mid(hang_s=2.0)) as sim,
            attempt_loop(sim, provider_overrides=SHORT_TIMEOUTS) as loop,
        ):
            out = await finish(loop, make_job(f"{CHEAP_PROMPT} [sim:{fault}*1@cheap]"))
            ledger = await sim.ledger()
        broken, served = out.cost.attempts
        assert (broken.provider, broken.outcome, broken.action, broken.billed) == (
            "cheap",
            outcome,
            "retry",
            False,
        )
        assert (served.provider, served.outcome) == ("cheap", "success")
        assert ledger.fault_counts["cheap"] == {fault: 1}
        assert_reconciles([out.cost], ledger)

    @pytest.mark.parametrize(("fault", "outcome"), FAULTS)
    async def test_a_persistent_fault_fails_over_after_the_route_retries(
        self, fault: str, outcome: str
    ) -> None:
        """The same fault every time on cheap: three tries there, then mid serves the job."""
        async with (
            SimServer(cheap_and_mid(hang_s=2.0)) as sim,
            attempt_loop(sim, provider_overrides=SHORT_TIMEOUTS) as loop,
        ):
            out = await finish(loop, make_job(f"{CHEAP_PROMPT} [sim:{fault}@cheap]"))
            ledger = await sim.ledger()
        assert [(a.provider, a.outcome) for a in out.cost.attempts] == [
            ("cheap", outcome),
            ("cheap", outcome),
            ("cheap", outcome),
            ("mid", "success"),
        ]
        assert out.result.status == "succeeded"
        assert all(a.error for a in out.cost.attempts[:3]), "each broken attempt says what went wrong"
        assert_reconciles([out.cost], ledger)
        assert ledger.billed("cheap") == []


def mixed_sim() -> SimConfig:
    """Three routes, each with its own faults; cheap has a small window and a short read timeout."""
    return sim_config(
        sim_provider(
            "cheap",
            "openai",
            models=[sim_model("small", input_per_m="0.10", cached_input_per_m="0.01", output_per_m="0.40")],
            failure_rates={
                "500": 0.02,
                "502": 0.02,
                "503": 0.04,
                "529": 0.01,
                "malformed": 0.02,
                "truncated": 0.02,
                "reset": 0.02,
                "no-usage": 0.02,
                "timeout": 0.005,
            },
            hang_s=1.0,
        ),
        sim_provider(
            "mid",
            "anthropic",
            models=[
                sim_model(
                    "large",
                    input_per_m="1.00",
                    cached_input_per_m="0.10",
                    output_per_m="4.00",
                    context_window=200_000,
                    cached_ratio=0.5,
                )
            ],
            failure_rates={"529": 0.05, "503": 0.03, "reset": 0.02},
        ),
        sim_provider(
            "premium",
            "openai",
            models=[
                sim_model(
                    "reasoner",
                    input_per_m="3.00",
                    cached_input_per_m="0.30",
                    output_per_m="15.00",
                    context_window=200_000,
                    reasoning_tokens=16,
                )
            ],
            failure_rates={"500": 0.03, "malformed": 0.02},
        ),
        seed=11,
    )


def mixed_job(i: int) -> Job:
    """Mostly plain summaries; some forced 400s, content filters, 429s and prompts too long for cheap."""
    prompt = (
        f"Summarise report {i}: the tide tables for harbour {i % 17} and the moon phases of week {i % 52}."
    )
    if i % 50 == 3:
        prompt += " [sim:400]"
    elif i % 97 == 1:
        prompt += " [sim:content-filter]"
    elif i % 250 == 11:
        prompt += " [sim:429*1@cheap]"
    elif i % 100 == 5:
        prompt = (
            "klmnopqrst" * 3500
        )  # planner's estimate fits cheap's 8k window; the provider's count does not
    deadline = 120.0 if i % 7 == 0 else None
    return make_job(prompt, job_id=f"mixed-{i}", deadline_in_s=deadline, max_tokens=48 + i % 64)


class TestLedgerReconciliation:
    """Over a large run with mixed failures, qroute's cost records are exactly the simulator's bill."""

    async def test_a_thousand_jobs_with_mixed_failures_cost_exactly_what_the_simulator_billed(self) -> None:
        """1,200 jobs at concurrency 50: one Finished each, and Σ cost records == ledger total (Decimal ==)."""
        n, concurrency = 1200, 50
        gate = asyncio.Semaphore(concurrency)
        deferrals = 0

        async def one(loop: Loop, job: Job) -> Finished:
            nonlocal deferrals
            async with gate:
                out = await loop.executor.run(job)
                while isinstance(out, Deferred):  # what the delay topic does, in process
                    deferrals += 1
                    await asyncio.sleep(max(0.0, out.not_before - time.time()))
                    out = await loop.executor.run(job, out.attempts)
                return out

        routing = RoutingSettings(backoff_base_s=0.01, backoff_cap_s=0.1, circuit_open_s=1.0)
        async with (
            SimServer(mixed_sim()) as sim,
            attempt_loop(sim, routing, provider_overrides=SHORT_TIMEOUTS) as loop,
        ):
            finished = await asyncio.gather(*(one(loop, mixed_job(i)) for i in range(n)))
            ledger = await sim.ledger()

        assert Counter(f.result.job_id for f in finished) == Counter(f"mixed-{i}" for i in range(n))
        assert all(f.cost.job_id == f.result.job_id for f in finished)
        assert_reconciles([f.cost for f in finished], ledger)
        total = sum((f.cost.total_cost_usd for f in finished), start=Decimal(0))
        assert total == ledger.total_cost > 0
        for provider in ("cheap", "mid", "premium"):
            paid = sum(
                (a.cost_usd for f in finished for a in f.cost.attempts if a.provider == provider),
                start=Decimal(0),
            )
            assert paid == ledger.total_for(provider)

        # The run really was mixed: faults of every kind, failovers, terminal failures, cache reads.
        outcomes = Counter(a.outcome for f in finished for a in f.cost.attempts)
        assert {"server_error", "overloaded", "malformed_response", "connection_error", "timeout"} <= set(
            outcomes
        )
        assert {"rate_limited", "context_length", "bad_request", "content_filter"} <= set(outcomes)
        statuses = Counter(f.result.status for f in finished)
        assert statuses["failed"] >= n // 50, "forced 400s fail their jobs"
        providers = Counter(f.result.provider for f in finished if f.result.status == "succeeded")
        assert providers["cheap"] > providers["mid"] > 0, "cheap serves most; failovers reach mid"
        assert any(
            a.usage is not None and a.usage.cached_input_tokens for f in finished for a in f.cost.attempts
        )
        assert deferrals == 0, "every wait here is short enough to sleep in process"


class TestProviderRequestIds:
    """Each attempt names the provider's own id for its call, as the simulator reported it."""

    @pytest.mark.parametrize(
        ("directive", "served_by"),
        [
            pytest.param("", "cheap", id="openai-x-request-id"),
            pytest.param(" [sim:fail=500@cheap]", "mid", id="anthropic-request-id-after-failover"),
        ],
    )
    async def test_attempts_carry_the_request_id_the_simulator_billed(
        self, directive: str, served_by: str
    ) -> None:
        """The served attempt's provider_request_id is its ledger entry's; every answered attempt has its own."""
        async with SimServer(cheap_and_mid()) as sim, attempt_loop(sim) as loop:
            out = await finish(loop, make_job(f"{CHEAP_PROMPT}{directive}"))
            ledger = await sim.ledger()
        *failed, served = out.cost.attempts
        assert (served.provider, served.outcome) == (served_by, "success")
        assert bool(failed) == (served_by == "mid"), "only the failover case has failed attempts"
        (entry,) = ledger.entries
        assert entry.provider == served_by
        assert served.provider_request_id == entry.request_id
        assert all((a.provider, a.status_code) == ("cheap", 500) for a in failed)
        ids = [a.provider_request_id for a in out.cost.attempts]
        assert all(ids), "every attempt that got an HTTP answer names it"
        assert len(set(ids)) == len(ids), "each call has its own id"
