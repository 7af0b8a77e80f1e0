"""The billing ledger: exact costs from the simulator's own prices, totals, counts, reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from qroute.sim import SimServer
from qroute.sim.ledger import price
from qroute.sim.testing import (
    ANTHROPIC_HEADERS,
    chat_request,
    messages_request,
    sim_config,
    sim_model,
    sim_provider,
)

# One "word" with no spaces: the answer is that word cut to exactly the token budget, so every
# token count below is known by hand (ceil(chars/4) + 3 per message).
OPENAI_PROMPT = "a" * 8000  # 2000 + 3 = 2003 input tokens, over 1024 so half (1001) is cached
ANTHROPIC_PROMPT = "b" * 400  # 100 + 3 = 103 input tokens, too short to be cached


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = sim_config(
        sim_provider(
            "oa",
            "openai",
            models=[
                sim_model(
                    "o-mini",
                    input_per_m=Decimal("1.10"),
                    cached_input_per_m=Decimal("0.275"),
                    output_per_m=Decimal("4.40"),
                    reasoning_tokens=10,
                    cached_ratio=0.5,
                )
            ],
        ),
        sim_provider(
            "an",
            "anthropic",
            models=[
                sim_model(
                    "sonnet",
                    input_per_m=Decimal("3.00"),
                    cached_input_per_m=Decimal("0.30"),
                    output_per_m=Decimal("15.00"),
                    reasoning_tokens=5,
                )
            ],
        ),
    )
    async with SimServer(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


class TestHandComputedCosts:
    """One request per family, priced by hand."""

    async def test_openai_request_with_cache_and_reasoning(
        self, sim: SimServer, http: httpx.AsyncClient
    ) -> None:
        """2003 in (1001 cached), 50 out: (1002·1.10 + 1001·0.275 + 50·4.40) / 1e6 = 0.001597475."""
        response = await http.post(
            f"{sim.base_url('oa')}/chat/completions",
            json=chat_request("o-mini", OPENAI_PROMPT, max_tokens=50),
        )
        usage = response.json()["usage"]
        assert usage["prompt_tokens"] == 2003
        assert usage["prompt_tokens_details"]["cached_tokens"] == 1001
        assert usage["completion_tokens"] == 50
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 10
        (entry,) = (await sim.ledger()).entries
        assert entry.cost == Decimal("0.001597475")
        assert entry.request_id == response.headers["x-request-id"]
        assert (
            entry.input_tokens,
            entry.cached_input_tokens,
            entry.output_tokens,
            entry.reasoning_tokens,
        ) == (
            2003,
            1001,
            50,
            10,
        )

    async def test_anthropic_request_with_thinking(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """103 in, 20 out (5 thinking): (103·3.00 + 20·15.00) / 1e6 = 0.000609."""
        response = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("sonnet", ANTHROPIC_PROMPT, max_tokens=20),
            headers=ANTHROPIC_HEADERS,
        )
        usage = response.json()["usage"]
        assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (
            103,
            0,
            20,
        )
        (entry,) = (await sim.ledger()).entries
        assert entry.cost == Decimal("0.000609")
        assert entry.request_id == response.headers["request-id"]
        assert entry.reasoning_tokens == 5


class TestLedgerTotals:
    """Totals, counts, the HTTP view and reset."""

    async def test_total_is_the_sum_of_entries(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """After mixed traffic the exact total equals the sum of billed entries, per provider too."""
        for i in range(5):
            await http.post(
                f"{sim.base_url('oa')}/chat/completions", json=chat_request("o-mini", f"prompt {i}")
            )
            await http.post(
                f"{sim.base_url('an')}/v1/messages",
                json=messages_request("sonnet", f"prompt {i}"),
                headers=ANTHROPIC_HEADERS,
            )
        await http.post(
            f"{sim.base_url('oa')}/chat/completions", json=chat_request("o-mini", "x [sim:fail=503]")
        )
        ledger = await sim.ledger()
        assert len(ledger.entries) == 10
        assert ledger.total_cost == sum((e.cost for e in ledger.entries), Decimal(0))
        assert ledger.total_cost == ledger.total_for("oa") + ledger.total_for("an")
        assert ledger.status_counts == {"oa": {"200": 5, "503": 1}, "an": {"200": 5}}
        assert ledger.fault_counts == {"oa": {"503": 1}}

    async def test_http_view_matches_and_uses_fixed_point_strings(
        self, sim: SimServer, http: httpx.AsyncClient
    ) -> None:
        """GET /_sim/ledger returns the same bill with costs as fixed-point strings."""
        await http.post(f"{sim.base_url('oa')}/chat/completions", json=chat_request("o-mini", "hello"))
        data = (await http.get(f"{sim.url}/_sim/ledger")).json()
        ledger = await sim.ledger()
        assert data["total_cost"] == format(ledger.total_cost, "f")
        assert "E" not in data["entries"][0]["cost"]
        assert Decimal(data["entries"][0]["cost"]) == ledger.entries[0].cost

    async def test_summary_view_keeps_totals(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """?entries=false drops the entry list but keeps exact totals per provider and the billed count."""
        for prompt in ("one", "two"):
            await http.post(f"{sim.base_url('oa')}/chat/completions", json=chat_request("o-mini", prompt))
        full = await sim.ledger()
        data = (await http.get(f"{sim.url}/_sim/ledger", params={"entries": "false"})).json()
        assert data["entries"] == []
        assert data["billed_count"] == 2
        assert Decimal(data["provider_totals"]["oa"]) == full.total_for("oa") == full.total_cost
        assert full.total_for("an") == 0

    async def test_reset_clears_the_bill(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """POST /_sim/reset empties entries, totals and counts."""
        await http.post(f"{sim.base_url('oa')}/chat/completions", json=chat_request("o-mini", "hello"))
        assert (await http.post(f"{sim.url}/_sim/reset")).status_code == 200
        ledger = await sim.ledger()
        assert ledger.entries == []
        assert ledger.total_cost == 0
        assert ledger.status_counts == {}


class TestPrice:
    """The price function is exact at any size."""

    def test_tiny_and_huge_amounts_are_exact(self) -> None:
        """One token at 0.005/1M is 5E-9 exactly; a billion tokens do not round."""
        model = sim_model(
            input_per_m=Decimal("0.005"), cached_input_per_m=Decimal("0.0005"), output_per_m=Decimal("0.4")
        )
        assert price(model, 1, 0, 0) == Decimal("0.000000005")
        assert price(model, 10**9, 10**8, 10**9) == Decimal("4.5") + Decimal("0.05") + Decimal("400")
