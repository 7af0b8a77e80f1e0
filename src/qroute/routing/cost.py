"""Exact cost arithmetic: token counts × catalog prices, in `Decimal` USD.

One formula serves every API family because adapters normalise usage first
(`qroute.models.Usage`): `input_tokens` includes the cached and cache-write
parts, `output_tokens` includes reasoning/thinking tokens. So

    cost = (input − cached − cache_write) × input_price
         + cached × cached_input_price
         + cache_write × cache_write_price
         + output × output_price            (all prices per 1,000,000 tokens)

which is LiteLLM's `generic_cost_per_token` and matches the providers' own
billing pages (Anthropic's `input_tokens` excludes cache tokens on the wire;
its adapter adds them back when building `Usage`). Long-context surcharges and
batch/flex tiers are not modelled: the catalog carries one price set per route.
"""

from __future__ import annotations

from decimal import Decimal

from qroute.catalog.types import ModelSpec
from qroute.models import Usage
from qroute.money import MILLION, per_million


def cost_of(usage: Usage, model: ModelSpec) -> Decimal:
    """What the provider bills for `usage` at `model`'s prices, exact to the last digit."""
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    return (
        per_million(uncached, model.input_per_m)
        + per_million(usage.cached_input_tokens, model.cached_input_price)
        + per_million(usage.cache_write_tokens, model.cache_write_price)
        + per_million(usage.output_tokens, model.output_per_m)
    )


def estimate_cost(input_tokens: int, output_tokens: int, model: ModelSpec) -> Decimal:
    """Cost before the call: every input token at the uncached price (no cache hit assumed)."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts must not be negative")
    # one division instead of two: the planner calls this for every route of every job
    return (input_tokens * model.input_per_m + output_tokens * model.output_per_m) / MILLION
