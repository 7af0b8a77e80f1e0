"""Injected failures happen as configured or directed, and none of them is billed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from qroute.sim import ScheduledFailure, SimServer
from qroute.sim.engine import Drop, Reply, SimEngine
from qroute.sim.testing import (
    ANTHROPIC_HEADERS,
    chat_request,
    messages_request,
    sim_config,
    sim_model,
    sim_provider,
)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = sim_config(
        sim_provider("oa", "openai", hang_s=30.0),
        sim_provider("an", "anthropic"),
        sim_provider("always503", "openai", failure_rates={"503": 1.0}),
        sim_provider("scheduled", "openai", failure_schedule=[ScheduledFailure(first=2, last=3, kind="500")]),
    )
    async with SimServer(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


async def chat(sim: SimServer, http: httpx.AsyncClient, prompt: str, provider: str = "oa") -> httpx.Response:
    return await http.post(
        f"{sim.base_url(provider)}/chat/completions", json=chat_request("sim-small", prompt)
    )


class TestDirectives:
    """Directives in the prompt force one outcome per request."""

    @pytest.mark.parametrize(
        ("directive", "status", "error_type"),
        [
            ("[sim:400]", 400, "invalid_request_error"),
            ("[sim:fail=500]", 500, "server_error"),
            ("[sim:fail=503]", 503, "service_unavailable_error"),
            ("[sim:fail=529]", 529, "server_error"),
        ],
    )
    async def test_openai_error_statuses(
        self, sim: SimServer, http: httpx.AsyncClient, directive: str, status: int, error_type: str
    ) -> None:
        """Each error directive gives its status with an OpenAI error body."""
        response = await chat(sim, http, f"please {directive}")
        assert response.status_code == status
        assert response.json()["error"]["type"] == error_type

    @pytest.mark.parametrize(
        ("directive", "status", "error_type"),
        [("[sim:fail=529]", 529, "overloaded_error"), ("[sim:fail=500]", 500, "api_error")],
    )
    async def test_anthropic_error_statuses(
        self, sim: SimServer, http: httpx.AsyncClient, directive: str, status: int, error_type: str
    ) -> None:
        """Anthropic-family errors use its envelope and error types (529 overloaded_error)."""
        response = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("sim-small", f"x {directive}"),
            headers=ANTHROPIC_HEADERS,
        )
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == error_type

    async def test_bad_gateway_is_html(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A 502 comes as an HTML page, like an edge proxy's, not provider JSON."""
        response = await chat(sim, http, "x [sim:fail=502]")
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("text/html")

    async def test_malformed_body(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:malformed] is a complete 200 whose body is not JSON."""
        response = await chat(sim, http, "x [sim:malformed]")
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)

    async def test_truncated_body(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:truncated] cuts the body short of its Content-Length and closes the connection."""
        with pytest.raises(httpx.RemoteProtocolError):
            await chat(sim, http, "x [sim:truncated]")

    async def test_connection_reset(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:reset] closes the connection without any response."""
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await chat(sim, http, "x [sim:reset]")

    async def test_timeout_hangs_past_the_client_timeout(self, sim: SimServer) -> None:
        """[sim:timeout] holds the request longer than the client waits."""
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await chat(sim, client, "x [sim:timeout]")

    async def test_no_usage(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:no-usage] is a valid completion without usage."""
        response = await chat(sim, http, "x [sim:no-usage]")
        assert response.status_code == 200
        body = response.json()
        assert "usage" not in body
        assert body["choices"][0]["message"]["content"]

    async def test_content_filter(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:content-filter] finishes with content_filter (OpenAI) and refusal (Anthropic)."""
        openai_body = (await chat(sim, http, "x [sim:content-filter]")).json()
        assert openai_body["choices"][0]["finish_reason"] == "content_filter"
        anthropic_body = (
            await http.post(
                f"{sim.base_url('an')}/v1/messages",
                json=messages_request("sim-small", "x [sim:content-filter]"),
                headers=ANTHROPIC_HEADERS,
            )
        ).json()
        assert anthropic_body["stop_reason"] == "refusal"

    async def test_times_suffix_fails_first_n_only(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:fail=503*2] fails the first two identical requests, then the prompt is served."""
        statuses = [(await chat(sim, http, "retry me [sim:fail=503*2]")).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]

    async def test_provider_scope(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """[sim:fail=503@NAME] only fails on provider NAME."""
        prompt = "x [sim:fail=503@scheduled]"
        assert (await chat(sim, http, prompt, provider="oa")).status_code == 200
        assert (await chat(sim, http, prompt, provider="scheduled")).status_code == 503


class TestConfiguredFaults:
    """Rates, schedules and outages from the config."""

    async def test_rate_one_always_fails(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A 503 rate of 1.0 fails every request."""
        statuses = {(await chat(sim, http, f"q{i}", provider="always503")).status_code for i in range(5)}
        assert statuses == {503}

    async def test_schedule_fails_numbered_requests(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A schedule 2..3 fails exactly the second and third requests."""
        statuses = [(await chat(sim, http, f"q{i}", provider="scheduled")).status_code for i in range(5)]
        assert statuses == [200, 500, 500, 200, 200]

    def test_seed_makes_fault_draws_repeatable(self) -> None:
        """Two engines with the same seed draw the same faults; another seed draws differently."""

        def outcomes(seed: int) -> list[str]:
            provider = sim_provider("oa", failure_rates={"500": 0.3, "reset": 0.2}, models=[sim_model()])
            engine = SimEngine(sim_config(provider, seed=seed))
            body = json.dumps(chat_request("sim-small", "hi")).encode()
            plans = [engine.handle("oa", "chat/completions", "POST", body, {}) for _ in range(40)]
            return [str(p.status) if isinstance(p, Reply) else "drop" for p in plans]

        assert outcomes(1) == outcomes(1)
        assert outcomes(1) != outcomes(2)
        assert {"200", "500", "drop"} <= set(outcomes(1))

    async def test_outage_switch(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """set_outage(True) answers 503 in the family's format; set_outage(False) restores service."""
        sim.set_outage("an", True)
        down = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("sim-small", "x"),
            headers=ANTHROPIC_HEADERS,
        )
        assert down.status_code == 503
        assert down.json()["type"] == "error"
        sim.set_outage("an", False)
        up = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("sim-small", "x"),
            headers=ANTHROPIC_HEADERS,
        )
        assert up.status_code == 200

    async def test_outage_control_endpoint(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """POST /_sim/providers/NAME/outage toggles the outage; health reports it."""
        switched = await http.post(f"{sim.url}/_sim/providers/oa/outage", json={"down": True})
        assert switched.json() == {"provider": "oa", "down": True}
        assert (await chat(sim, http, "x")).status_code == 503
        health = (await http.get(f"{sim.url}/_sim/health")).json()
        assert health["providers"]["oa"]["down"] is True
        await http.post(f"{sim.url}/_sim/providers/oa/outage", json={"down": False})
        assert (await chat(sim, http, "x")).status_code == 200
        unknown = await http.post(f"{sim.url}/_sim/providers/nope/outage", json={"down": True})
        assert unknown.status_code == 404

    def test_outage_window_follows_the_clock(self) -> None:
        """A configured window answers 503 only between start_s and end_s after start."""
        now = [0.0]
        provider = sim_provider("oa", outages=[{"start_s": 10.0, "end_s": 20.0}], models=[sim_model()])
        engine = SimEngine(sim_config(provider), clock=lambda: now[0])
        body = json.dumps(chat_request("sim-small", "hi")).encode()

        def status_at(t: float) -> int:
            now[0] = t
            plan = engine.handle("oa", "chat/completions", "POST", body, {})
            assert isinstance(plan, Reply)
            return plan.status

        assert [status_at(5.0), status_at(10.0), status_at(19.9), status_at(20.0)] == [200, 503, 503, 200]


class TestNothingFailedIsBilled:
    """Only intact 200s with usage reach the ledger."""

    async def test_failures_leave_no_entries(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """After one success and one of each fault, the ledger holds exactly one entry."""
        assert (await chat(sim, http, "fine")).status_code == 200
        for directive in ("400", "429", "fail=500", "fail=502", "fail=503", "malformed", "no-usage"):
            await chat(sim, http, f"x [sim:{directive}]")
        for directive in ("truncated", "reset"):
            with pytest.raises(httpx.TransportError):
                await chat(sim, http, f"x [sim:{directive}]")
        ledger = await sim.ledger()
        assert len(ledger.entries) == 1
        assert ledger.status_counts["oa"]["200"] == 4  # fine, malformed, no-usage, truncated
        assert ledger.fault_counts["oa"]["reset"] == 1
        assert ledger.status_counts["oa"]["reset"] == 1

    def test_timeout_plan_holds_for_hang_s(self) -> None:
        """The timeout fault is a hang of the provider's hang_s, then a dropped connection."""
        engine = SimEngine(sim_config(sim_provider("oa", hang_s=7.5, models=[sim_model()])))
        body = json.dumps(chat_request("sim-small", "x [sim:timeout]")).encode()
        plan = engine.handle("oa", "chat/completions", "POST", body, {})
        assert plan == Drop(7.5, hang=True)
        assert engine.ledger().entries == []
