"""qroute's own provider adapters against the simulator: usage and rate-limit signals agree with its bill."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest

from qroute.catalog.types import ApiFamily, ModelSpec, ProviderSpec, Route
from qroute.models import Job
from qroute.providers.registry import adapter_for
from qroute.sim import SimServer
from qroute.sim.testing import sim_config, sim_model, sim_provider

LONG = "The committee reviewed the annual budget and approved the new hiring plan. " * 80


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    model = sim_model("m-1", reasoning_tokens=9, cached_ratio=0.25, context_window=100_000)
    config = sim_config(
        sim_provider("oa", "openai", rpm=2, models=[model]),
        sim_provider("an", "anthropic", rpm=2, models=[model]),
    )
    async with SimServer(config) as server:
        yield server


def route_to(sim: SimServer, name: str, family: ApiFamily) -> Route:
    provider = ProviderSpec(name=name, family=family, base_url=sim.base_url(name))
    model = ModelSpec(
        provider=name,
        model="m-1",
        tier=2,
        input_per_m=Decimal("1.00"),
        output_per_m=Decimal("2.00"),
        context_window=100_000,
        max_output_tokens=4096,
        price_source="test",
        price_date=date(2026, 10, 29),
    )
    return Route(provider=provider, model=model)


def job(prompt: str) -> Job:
    return Job.model_validate(
        {"id": "job-1", "messages": [{"role": "user", "content": prompt}], "params": {"max_tokens": 300}}
    )


@pytest.mark.parametrize(("name", "family"), [("oa", "openai"), ("an", "anthropic")])
class TestAdaptersAgainstSimulator:
    """Each family's adapter reads the simulator's answers the way the simulator billed them."""

    async def test_success_usage_matches_the_ledger(
        self, sim: SimServer, name: str, family: ApiFamily
    ) -> None:
        """A served job is done, and its parsed usage equals the ledger entry (cached and reasoning too)."""
        route = route_to(sim, name, family)
        adapter = adapter_for(family)
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.send(adapter.build_request(job(LONG), route, "key"))
        outcome = adapter.parse_response(response, time.time())
        assert outcome.action == "done"
        assert outcome.text
        (entry,) = (await sim.ledger()).entries
        assert outcome.usage is not None
        assert outcome.usage.input_tokens == entry.input_tokens
        assert outcome.usage.cached_input_tokens == entry.cached_input_tokens > 0
        assert outcome.usage.output_tokens == entry.output_tokens
        assert outcome.usage.reasoning_tokens == entry.reasoning_tokens == 9

    async def test_rate_limit_signals_are_read(self, sim: SimServer, name: str, family: ApiFamily) -> None:
        """Beyond rpm the adapter sees a rate limit with a retry hint and an exhausted request budget."""
        route = route_to(sim, name, family)
        adapter = adapter_for(family)
        async with httpx.AsyncClient(timeout=10.0) as client:
            for _ in range(2):
                await client.send(adapter.build_request(job("hi"), route, "key"))
            response = await client.send(adapter.build_request(job("hi"), route, "key"))
        outcome = adapter.parse_response(response, time.time())
        assert response.status_code == 429
        assert outcome.action == "retry"
        assert outcome.retry_after_s is not None
        assert 25 <= outcome.retry_after_s <= 31
        assert outcome.rate_limit is not None
        assert outcome.rate_limit.remaining_requests == 0
        assert outcome.rate_limit.limit_requests == 2
        assert not outcome.billed
