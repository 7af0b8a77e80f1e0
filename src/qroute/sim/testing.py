"""Builders for tests that use the simulator: small configs and request bodies.

Public on purpose, so qroute's own tests and users' tests build simulated
providers the same way: zero latency, no limits and no faults unless asked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from qroute.sim.config import Family, SimConfig, SimModel, SimProvider

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_HEADERS = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}


def sim_model(name: str = "sim-small", **overrides: Any) -> SimModel:
    """A model priced 1.00 / 0.10 cached / 2.00 per 1M tokens with an 8k window, unless overridden."""
    fields: dict[str, Any] = {
        "name": name,
        "input_per_m": Decimal("1.00"),
        "cached_input_per_m": Decimal("0.10"),
        "output_per_m": Decimal("2.00"),
        "context_window": 8192,
    }
    fields.update(overrides)
    return SimModel.model_validate(fields)


def sim_provider(
    name: str, family: Family = "openai", *, models: list[SimModel] | None = None, **overrides: Any
) -> SimProvider:
    """A provider with zero latency and no limits or faults unless overridden."""
    fields: dict[str, Any] = {"name": name, "family": family, "models": models or [sim_model()]}
    fields.update(overrides)
    return SimProvider.model_validate(fields)


def sim_config(*providers: SimProvider, seed: int = 0) -> SimConfig:
    return SimConfig(seed=seed, providers=list(providers))


def chat_request(model: str, prompt: str, max_tokens: int | None = 64, **extra: Any) -> dict[str, Any]:
    """An OpenAI Chat Completions body with one user message."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if max_tokens is not None:
        body["max_completion_tokens"] = max_tokens
    body.update(extra)
    return body


def messages_request(model: str, prompt: str, max_tokens: int = 64, **extra: Any) -> dict[str, Any]:
    """An Anthropic Messages body with one user message (send it with `ANTHROPIC_HEADERS`)."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    body.update(extra)
    return body
