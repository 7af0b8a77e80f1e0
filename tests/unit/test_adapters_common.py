"""Shared builders for the adapter tests, and tests of the helpers all adapters share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from qroute.catalog.types import ApiFamily, ModelSpec, ProviderSpec, Route
from qroute.models import Job, Usage
from qroute.providers.anthropic import AnthropicAdapter
from qroute.providers.gemini import GeminiAdapter
from qroute.providers.openai import OpenAIAdapter
from qroute.providers.registry import adapter_for
from qroute.providers.wire import max_output, split_system, usage

NOW = 1_763_800_000.0
"""A fixed arrival time (2025-11-22T08:26:40Z) for relative reset headers."""

BASES: dict[ApiFamily, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}


def make_route(
    family: ApiFamily = "openai",
    *,
    model: str = "m-1",
    api_model: str | None = None,
    max_output_tokens: int = 16_384,
    **provider: Any,
) -> Route:
    """A route with plausible prices; provider fields override the defaults."""
    spec: dict[str, Any] = {"name": f"{family}-test", "family": family, "base_url": BASES[family]}
    spec.update(provider)
    return Route(
        provider=ProviderSpec(**spec),
        model=ModelSpec(
            provider=spec["name"],
            model=model,
            api_model=api_model,
            tier=2,
            input_per_m=Decimal("1.00"),
            output_per_m=Decimal("4.00"),
            context_window=200_000,
            max_output_tokens=max_output_tokens,
            price_source="test",
            price_date=date(2026, 10, 29),
        ),
    )


def make_job(**fields: Any) -> Job:
    """A one-message job; fields override."""
    data: dict[str, Any] = {"id": "job-1", "messages": [{"role": "user", "content": "Summarise this."}]}
    data.update(fields)
    return Job.model_validate(data)


class TestRegistry:
    """adapter_for hands out one shared adapter per API family."""

    @pytest.mark.parametrize(
        ("family", "kind"),
        [("openai", OpenAIAdapter), ("anthropic", AnthropicAdapter), ("gemini", GeminiAdapter)],
    )
    def test_family_maps_to_its_adapter(self, family: ApiFamily, kind: type) -> None:
        """Each family gets its own adapter type, and the same instance every time."""
        assert isinstance(adapter_for(family), kind)
        assert adapter_for(family) is adapter_for(family)


class TestSplitSystem:
    """System text is collected out of band for families that want it there."""

    def test_job_system_and_system_messages_join_in_order(self) -> None:
        """job.system comes first, then system-role messages; other turns keep their order."""
        job = make_job(
            system="Be terse.",
            messages=[
                {"role": "system", "content": "Answer in English."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ],
        )
        system, turns = split_system(job)
        assert system == "Be terse.\n\nAnswer in English."
        assert [m.role for m in turns] == ["user", "assistant"]

    def test_no_system_text_gives_none(self) -> None:
        """Without any system text, None (the field is then left out of the request)."""
        assert split_system(make_job())[0] is None


class TestMaxOutput:
    """The output cap never exceeds what the model can produce."""

    def test_job_cap_below_model_limit_is_kept(self) -> None:
        """A small job cap passes through."""
        assert max_output(make_job(params={"max_tokens": 300}), make_route()) == 300

    def test_job_cap_above_model_limit_is_clamped(self) -> None:
        """A cap above the model's max output is lowered to it."""
        assert (
            max_output(make_job(params={"max_tokens": 50_000}), make_route(max_output_tokens=8_192)) == 8_192
        )


class TestUsageClamp:
    """Inconsistent provider detail counts still yield a valid Usage."""

    def test_consistent_counts_pass_through(self) -> None:
        """Counts that fit are unchanged."""
        assert usage(input_tokens=10, cached=4, cache_write=3, output_tokens=5, reasoning=2) == Usage(
            input_tokens=10, cached_input_tokens=4, cache_write_tokens=3, output_tokens=5, reasoning_tokens=2
        )

    def test_details_larger_than_totals_are_clamped(self) -> None:
        """Cached + written beyond the prompt, or reasoning beyond output, are cut to fit."""
        result = usage(input_tokens=10, cached=8, cache_write=8, output_tokens=5, reasoning=9)
        assert (result.cached_input_tokens, result.cache_write_tokens, result.reasoning_tokens) == (8, 2, 5)
