"""The attempt loop with a scripted provider (httpx.MockTransport) and a fake clock."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from qroute.catalog.types import ModelSpec, ProviderSpec, Route
from qroute.config import RoutingSettings
from qroute.execute import CatalogInfo, Executor
from qroute.models import Job
from qroute.providers.base import ProviderOutcome, RateLimitSnapshot
from qroute.resilience.state import RouteStateBook
from qroute.worker.processing import Deferred, Finished

Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Wall clock that only moves when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def provider(name: str) -> ProviderSpec:
    return ProviderSpec(name=name, family="openai", base_url=f"http://{name}.test/v1")


def route(name: str, price_in: str, price_out: str, *, window: int = 100_000) -> Route:
    return Route(
        provider=provider(name),
        model=ModelSpec(
            provider=name,
            model=f"{name}-model",
            tier=2,
            input_per_m=Decimal(price_in),
            output_per_m=Decimal(price_out),
            context_window=window,
            max_output_tokens=4096,
            price_source="test",
            price_date=date(2026, 11, 1),
        ),
    )


CHEAP = route("cheap", "0.10", "0.40")
MID = route("mid", "1.00", "4.00")


def ok(prompt_tokens: int = 100, completion_tokens: int = 50) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "done"}}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
    )


def job(**constraints: Any) -> Job:
    return Job.model_validate(
        {
            "id": "job-1",
            "messages": [{"role": "user", "content": "Summarise the attached report in two lines."}],
            "params": {"max_tokens": 200},
            "constraints": constraints,
        }
    )


class Script:
    """Per-provider queues of responses; records which provider each call went to."""

    def __init__(self, **responses: list[httpx.Response]) -> None:
        self.responses = {name: list(items) for name, items in responses.items()}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".")[0]
        self.calls.append(name)
        queue = self.responses[name]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def executor(
    script: Script,
    clock: FakeClock,
    routes: list[Route] | None = None,
    *,
    state: RouteStateBook | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    allow_defer: bool = True,
    **settings: Any,
) -> Executor:
    routes = routes or [CHEAP, MID]
    routing = RoutingSettings(**settings)
    state = state or RouteStateBook(
        routing, {r.provider.name: r.provider for r in routes}, clock=clock, rng=lambda: 0.5
    )
    return Executor(
        routes=routes,
        state=state,
        client=httpx.AsyncClient(transport=httpx.MockTransport(script)),
        api_keys={},
        settings=routing,
        catalog=CatalogInfo(source="test", version="t1"),
        clock=clock,
        sleep=sleep or clock.sleep,
        rng=lambda: 0.5,
        allow_defer=allow_defer,
    )


async def finish(ex: Executor, the_job: Job) -> Finished:
    out = await ex.run(the_job)
    assert isinstance(out, Finished)
    return out


class TestAttemptLoop:
    async def test_success_on_cheapest_route_costs_exactly_its_usage(self) -> None:
        """One call to the cheapest route; cost = 100 x 0.10/1M + 50 x 0.40/1M."""
        script, clock = Script(cheap=[ok()]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert script.calls == ["cheap"]
        assert out.result.status == "succeeded"
        assert out.result.provider == "cheap"
        assert out.cost.total_cost_usd == Decimal("0.00003")
        assert [a.billed for a in out.cost.attempts] == [True]

    async def test_transient_failure_is_retried_on_the_same_route_and_costs_nothing(self) -> None:
        """A 503 is retried after a backoff; the failed attempt is unbilled and costs zero."""
        script, clock = Script(cheap=[error(503, "server_is_overloaded", "busy"), ok()]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert script.calls == ["cheap", "cheap"]
        first, second = out.cost.attempts
        assert (first.billed, first.cost_usd, first.action) == (False, Decimal(0), "retry")
        assert second.outcome == "success"
        assert clock.slept, "the retry waited for a backoff"
        assert out.cost.total_cost_usd == second.cost_usd

    async def test_bad_request_is_terminal_without_failover(self) -> None:
        """A 400 ends the job with the provider's message; the next route is never called."""
        script, clock = (
            Script(cheap=[error(400, "invalid_value", "temperature is not supported")]),
            FakeClock(),
        )
        out = await finish(executor(script, clock), job())
        assert script.calls == ["cheap"]
        assert out.result.status == "failed"
        assert out.result.error is not None
        assert out.result.error.type == "provider_rejected"
        assert "temperature is not supported" in out.result.error.message

    async def test_context_length_fails_over_to_the_next_route(self) -> None:
        """A context-length 400 moves the job to the next cheapest route."""
        script = Script(cheap=[error(400, "context_length_exceeded", "maximum context length")], mid=[ok()])
        clock = FakeClock()
        out = await finish(executor(script, clock), job())
        assert script.calls == ["cheap", "mid"]
        assert out.result.provider == "mid"
        assert [a.outcome for a in out.cost.attempts] == ["context_length", "success"]

    async def test_rate_limit_with_far_deadline_defers_then_serves_on_the_cheap_route(self) -> None:
        """A long retry-after and a far deadline park the job instead of paying for the next route."""
        limited = error(429, "rate_limit_exceeded", "slow down", {"retry-after": "60"})
        script, clock = Script(cheap=[limited, ok()], mid=[ok()]), FakeClock()
        ex = executor(script, clock)
        the_job = job(deadline=(datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=2)).isoformat())
        first = await ex.run(the_job)
        assert isinstance(first, Deferred)
        assert first.not_before >= clock.now + 60
        clock.now = first.not_before
        out = await ex.run(the_job, first.attempts)
        assert isinstance(out, Finished)
        assert script.calls == ["cheap", "cheap"]
        assert [a.outcome for a in out.cost.attempts] == ["rate_limited", "success"]

    async def test_rate_limit_with_near_deadline_fails_over(self) -> None:
        """When waiting for the cheap route would miss the deadline, the next route serves the job."""
        limited = error(429, "rate_limit_exceeded", "slow down", {"retry-after": "60"})
        script, clock = Script(cheap=[limited], mid=[ok()]), FakeClock()
        the_job = job(deadline=(datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=30)).isoformat())
        out = await finish(executor(script, clock), the_job)
        assert script.calls == ["cheap", "mid"]
        assert out.result.provider == "mid"

    async def test_expired_job_makes_no_call(self) -> None:
        """A job whose deadline passed fails as expired without touching a provider."""
        script, clock = Script(cheap=[ok()]), FakeClock()
        the_job = job(deadline=(datetime.fromtimestamp(clock.now, UTC) - timedelta(seconds=1)).isoformat())
        out = await finish(executor(script, clock), the_job)
        assert script.calls == []
        assert out.result.error is not None
        assert out.result.error.type == "expired"
        assert out.cost.attempts == []

    async def test_price_cap_skips_routes_that_could_exceed_it(self) -> None:
        """max_cost_usd rules out a route whose worst case breaks it; no route left → budget_exceeded."""
        script, clock = Script(cheap=[ok()], mid=[ok()]), FakeClock()
        out = await finish(executor(script, clock, routes=[MID]), job(max_cost_usd="0.0000001"))
        assert script.calls == []
        assert out.result.error is not None
        assert out.result.error.type in {"budget_exceeded", "no_eligible_route"}

    async def test_garbage_body_is_classified_not_raised(self) -> None:
        """A 200 with a non-JSON body is a malformed response: retried, then failed over."""
        garbage = httpx.Response(200, content=b"<html>oops")
        script, clock = Script(cheap=[garbage], mid=[ok()]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert script.calls[:3] == ["cheap", "cheap", "cheap"]
        assert script.calls[-1] == "mid"
        assert out.result.status == "succeeded"
        assert all(not a.billed for a in out.cost.attempts[:-1])

    @pytest.mark.parametrize("attempts", [1, 2])
    async def test_attempt_budget_is_respected(self, attempts: int) -> None:
        """The job's max_attempts bounds the calls made, then the job fails saying why."""
        script = Script(cheap=[error(503, "x", "busy")], mid=[error(503, "x", "busy")])
        out = await finish(executor(script, FakeClock()), job(max_attempts=attempts))
        assert len(script.calls) == attempts
        assert out.result.error is not None
        assert out.result.error.type == "attempts_exhausted"
        assert json.loads(out.cost.model_dump_json())["total_cost_usd"] == "0"


class TestRateLimitBudget:
    async def test_repeated_429s_move_the_job_on_before_the_budget_runs_out(self) -> None:
        """Two 429s on one route (our quota view was wrong) fail the job over instead of exhausting it."""
        limited = error(429, "rate_limit_exceeded", "slow down", {"retry-after": "1"})
        script, clock = Script(cheap=[limited], mid=[ok()]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert script.calls == ["cheap", "cheap", "mid"]
        assert out.result.provider == "mid"

    async def test_a_lone_route_keeps_waiting_out_429s(self) -> None:
        """With no other route, 429s are waited out until the attempt budget ends."""
        limited = error(429, "rate_limit_exceeded", "slow down", {"retry-after": "1"})
        script, clock = Script(cheap=[limited, limited, limited, limited, ok()]), FakeClock()
        out = await finish(executor(script, clock, routes=[CHEAP]), job())
        assert script.calls == ["cheap"] * 5
        assert out.result.status == "succeeded"


class TestLastAttempt:
    async def test_the_last_attempt_goes_to_a_route_that_has_not_failed(self) -> None:
        """With one attempt left, a route that already failed this job is passed over for a fresh one."""
        script = Script(cheap=[error(503, "x", "busy")], mid=[ok()])
        out = await finish(executor(script, FakeClock()), job(max_attempts=2))
        assert script.calls == ["cheap", "mid"]
        assert out.result.status == "succeeded"


class TestHistoryAfterDeferral:
    async def test_a_route_that_rate_limited_the_job_twice_is_skipped_after_deferral(self) -> None:
        """A job returning from the delay topic with two 429s from the cheap route starts on the next route."""
        limited = error(429, "rate_limit_exceeded", "slow down", {"retry-after": "60"})
        script, clock = Script(cheap=[limited], mid=[ok()]), FakeClock()
        ex = executor(script, clock, defer_threshold_s=1.0)
        the_job = job(deadline=(datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=2)).isoformat())
        first = await ex.run(the_job)
        assert isinstance(first, Deferred)
        (attempt,) = first.attempts
        history = (attempt, attempt.model_copy(update={"n": 2}))
        out = await executor(script, clock, defer_threshold_s=1.0).run(the_job, history)
        assert isinstance(out, Finished)
        assert script.calls == ["cheap", "mid"]
        assert [a.n for a in out.cost.attempts] == [1, 2, 3]


class TestSlotsLearnedWhileWaiting:
    """A wait that had no slot (no rate known yet) is not held: the job books one when it wakes."""

    async def test_job_books_a_slot_on_a_rate_learned_during_its_wait(self) -> None:
        """Waiting out a quota reset with no rate known, the job must not send at the reset as if it
        had a slot: the rate learned meanwhile (from other jobs' answers) gives it the next free one.
        Holding the unslotted wait let every such job fire at each reset: bursts of 429s."""
        no_quota = error(
            429,
            "rate_limit_exceeded",
            "slow down",
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"},
        )
        script, clock = Script(cheap=[no_quota, ok()]), FakeClock()
        routing = RoutingSettings()
        state = RouteStateBook(routing, {"cheap": CHEAP.provider}, clock=clock, rng=lambda: 0.0)
        learned = False

        async def sleep_while_others_answer(seconds: float) -> None:
            nonlocal learned
            await clock.sleep(seconds)
            if not learned:  # another job's answer arrives: 60/min, none left, full in 60 s
                learned = True
                snapshot = RateLimitSnapshot(
                    limit_requests=60, remaining_requests=0, requests_reset_at=clock.now + 60
                )
                state.observe(CHEAP, ProviderOutcome("success", "done", rate_limit=snapshot), 0.0)

        ex = executor(script, clock, [CHEAP], state=state, sleep=sleep_while_others_answer, allow_defer=False)
        out = await finish(ex, job())
        assert script.calls == ["cheap", "cheap"]
        assert out.result.status == "succeeded"
        assert state.route_state(CHEAP).pacer.learned_rate == pytest.approx(1.0)
        # first the reset (no slot to hold), then the slot the learned rate gives: 1 s later
        assert len(clock.slept) == 2
        assert clock.slept[1] == pytest.approx(1.0)
