"""Cost arithmetic: exact Decimal USD from normalised usage and catalog prices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.catalog.types import ModelSpec
from qroute.models import Usage
from qroute.routing.cost import cost_of, estimate_cost


def spec(
    input_per_m: str,
    output_per_m: str,
    cached: str | None = None,
    cache_write: str | None = None,
) -> ModelSpec:
    return ModelSpec(
        provider="p",
        model="m",
        tier=2,
        input_per_m=Decimal(input_per_m),
        output_per_m=Decimal(output_per_m),
        cached_input_per_m=None if cached is None else Decimal(cached),
        cache_write_per_m=None if cache_write is None else Decimal(cache_write),
        context_window=200_000,
        max_output_tokens=64_000,
        price_source="test",
        price_date=date(2026, 11, 1),
    )


GPT_4O_MINI = spec("0.15", "0.60", cached="0.075")
CLAUDE_SONNET_4_5 = spec("3.00", "15.00", cached="0.30", cache_write="3.75")
O3 = spec("2.00", "8.00", cached="0.50")
GEMINI_2_5_FLASH = spec("0.30", "2.50", cached="0.03")


class TestCostOf:
    def test_plain_openai_usage(self) -> None:
        """Plain usage: input and output at list price (1200×0.15 + 350×0.60 per 1M)."""
        usage = Usage(input_tokens=1200, output_tokens=350)
        # 1200 × 0.15 = 180; 350 × 0.60 = 210; (180 + 210) / 1e6
        assert cost_of(usage, GPT_4O_MINI) == Decimal("0.00039")

    def test_openai_cached_prompt(self) -> None:
        """OpenAI cached tokens are part of the prompt and billed at the cached price."""
        usage = Usage(input_tokens=2000, cached_input_tokens=1024, output_tokens=100)
        # uncached 976 × 0.15 = 146.4; cached 1024 × 0.075 = 76.8; 100 × 0.60 = 60 → 283.2 / 1e6
        assert cost_of(usage, GPT_4O_MINI) == Decimal("0.0002832")

    def test_anthropic_cache_reads_and_writes(self) -> None:
        """Anthropic-like usage splits input into uncached, cache-read and cache-write parts."""
        usage = Usage(
            input_tokens=10_000, cached_input_tokens=6000, cache_write_tokens=2500, output_tokens=800
        )
        # uncached 1500 × 3.00 = 4500; read 6000 × 0.30 = 1800; write 2500 × 3.75 = 9375;
        # output 800 × 15.00 = 12000 → 27675 / 1e6
        assert cost_of(usage, CLAUDE_SONNET_4_5) == Decimal("0.027675")

    def test_reasoning_tokens_are_billed_as_output_once(self) -> None:
        """o-series reasoning tokens are inside output_tokens and are not billed twice."""
        usage = Usage(input_tokens=500, output_tokens=3000, reasoning_tokens=2600)
        # 500 × 2.00 = 1000; 3000 × 8.00 = 24000 → 25000 / 1e6
        assert cost_of(usage, O3) == Decimal("0.025")

    def test_gemini_thoughts_with_cached_content(self) -> None:
        """Gemini thoughts count as output; cached content is billed at the cache price."""
        usage = Usage(input_tokens=12_345, cached_input_tokens=4096, output_tokens=777, reasoning_tokens=500)
        # uncached 8249 × 0.30 = 2474.7; cached 4096 × 0.03 = 122.88; output 777 × 2.50 = 1942.5
        # → 4540.08 / 1e6
        assert cost_of(usage, GEMINI_2_5_FLASH) == Decimal("0.00454008")

    def test_missing_cache_prices_default_to_input_price(self) -> None:
        """A model without cache prices bills cached and cache-write tokens at the input price."""
        usage = Usage(input_tokens=1000, cached_input_tokens=300, cache_write_tokens=200, output_tokens=10)
        # 1000 × 1.10 = 1100; 10 × 4.40 = 44 → 1144 / 1e6
        assert cost_of(usage, spec("1.10", "4.40")) == Decimal("0.001144")

    def test_zero_usage_costs_nothing(self) -> None:
        """No tokens, no cost."""
        assert cost_of(Usage(input_tokens=0, output_tokens=0), CLAUDE_SONNET_4_5) == 0


class TestEstimateCost:
    def test_estimate_uses_uncached_input_price(self) -> None:
        """The pre-call estimate assumes no cache hit: 9100×3.00 + 512×15.00 per 1M."""
        # 27300 + 7680 = 34980 / 1e6
        assert estimate_cost(9100, 512, CLAUDE_SONNET_4_5) == Decimal("0.03498")

    def test_negative_counts_are_refused(self) -> None:
        """A negative token count is a bug upstream, not a discount."""
        with pytest.raises(ValueError):
            estimate_cost(-1, 0, O3)


prices = st.decimals(min_value=0, max_value=100, places=4)
counts = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    cached = draw(counts)
    write = draw(counts)
    uncached = draw(counts)
    reasoning = draw(counts)
    output = reasoning + draw(counts)
    return Usage(
        input_tokens=uncached + cached + write,
        cached_input_tokens=cached,
        cache_write_tokens=write,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


@st.composite
def specs(draw: st.DrawFn) -> ModelSpec:
    return spec(*(str(draw(prices)) for _ in range(4)))


def add(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
    )


class TestCostProperties:
    @given(usages(), specs())
    def test_exact_and_never_negative(self, usage: Usage, model: ModelSpec) -> None:
        """The Decimal cost equals the rational-number cost exactly and is never negative."""
        uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
        expected = (
            uncached * Fraction(model.input_per_m)
            + usage.cached_input_tokens * Fraction(model.cached_input_price)
            + usage.cache_write_tokens * Fraction(model.cache_write_price)
            + usage.output_tokens * Fraction(model.output_per_m)
        ) / 1_000_000
        cost = cost_of(usage, model)
        assert Fraction(cost) == expected
        assert cost >= 0

    @given(usages(), usages(), specs())
    def test_additive(self, a: Usage, b: Usage, model: ModelSpec) -> None:
        """Two calls cost exactly what one call with their summed usage costs."""
        assert cost_of(add(a, b), model) == cost_of(a, model) + cost_of(b, model)

    @given(usages(), specs(), counts, counts)
    def test_monotonic(self, usage: Usage, model: ModelSpec, more_in: int, more_out: int) -> None:
        """More uncached input or more output never makes a call cheaper."""
        bigger = usage.model_copy(
            update={
                "input_tokens": usage.input_tokens + more_in,
                "output_tokens": usage.output_tokens + more_out,
            }
        )
        assert cost_of(bigger, model) >= cost_of(usage, model)

    @given(counts, counts, specs())
    def test_estimate_matches_uncached_usage(self, tokens_in: int, tokens_out: int, model: ModelSpec) -> None:
        """An estimate is the cost of the same counts with no cache hits."""
        usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out)
        assert estimate_cost(tokens_in, tokens_out, model) == cost_of(usage, model)
