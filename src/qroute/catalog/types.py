"""Catalog types: providers (where to send) and models (what it costs, what it can do).

A *route* is one model at one provider, named `provider/model`. Prices are USD
per 1,000,000 tokens as exact decimals, the unit providers publish.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qroute.models import Capability, Tier
from qroute.money import Money

ApiFamily = Literal["openai", "anthropic", "gemini"]
"""The HTTP API a provider speaks. `openai` also covers Azure and OpenAI-compatible hosts."""


class _Strict(BaseModel):
    """Config objects reject unknown keys: a typo must fail at start-up, not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSpec(_Strict):
    """One provider account: its API family, endpoint, credentials and limits."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    family: ApiFamily
    base_url: str = Field(description="API base, e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    api_key_file: Path | None = Field(
        default=None, description="File holding the API key (e.g. a secret mount)."
    )
    enabled: bool | None = Field(
        default=None,
        description="true: must work (a missing key fails start-up); false: off; unset: on when its key is present.",
    )
    rpm: int | None = Field(default=None, gt=0, description="Requests per minute this account may send.")
    tpm: int | None = Field(default=None, gt=0, description="Tokens per minute this account may send.")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0)
    total_timeout_s: float = Field(default=300.0, gt=0)
    azure_api_version: str | None = Field(
        default=None,
        description="Azure OpenAI: the api-version query parameter; switches to deployment URLs.",
    )
    anthropic_version: str = "2023-06-01"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    billed_failures: bool = Field(
        default=False,
        description="Whether this provider bills attempts that failed after the request was accepted.",
    )


class ModelSpec(_Strict):
    """One model at one provider, with prices, limits and capabilities."""

    provider: str
    model: str = Field(min_length=1, description="Catalog name of the model (what jobs ask for).")
    api_model: str | None = Field(
        default=None, description="Name sent to the API when it differs (Azure deployment, host prefix)."
    )
    tier: Tier
    input_per_m: Money
    cached_input_per_m: Money | None = Field(default=None, description="Defaults to the input price.")
    cache_write_per_m: Money | None = Field(default=None, description="Defaults to the input price.")
    output_per_m: Money
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    capabilities: frozenset[Capability] = frozenset()
    price_source: str = Field(min_length=1, description="Where the price was read (URL or data file).")
    price_date: date
    enabled: bool = True

    @property
    def route_id(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def wire_model(self) -> str:
        return self.api_model or self.model

    @property
    def cached_input_price(self) -> Decimal:
        return self.input_per_m if self.cached_input_per_m is None else self.cached_input_per_m

    @property
    def cache_write_price(self) -> Decimal:
        return self.input_per_m if self.cache_write_per_m is None else self.cache_write_per_m

    @model_validator(mode="after")
    def _output_fits(self) -> ModelSpec:
        if self.max_output_tokens > self.context_window:
            object.__setattr__(self, "max_output_tokens", self.context_window)
        return self


class Route(_Strict):
    """A model at a provider, ready to plan and call."""

    provider: ProviderSpec
    model: ModelSpec

    @property
    def id(self) -> str:
        return self.model.route_id


class Catalog(_Strict):
    """All routes the worker may use, with the catalog's provenance."""

    version: str
    source: str
    providers: dict[str, ProviderSpec]
    models: tuple[ModelSpec, ...]

    def routes(self, *, enabled_providers: frozenset[str] | None = None) -> list[Route]:
        """Routes whose model is enabled and whose provider is in `enabled_providers` (all if None)."""
        out: list[Route] = []
        for spec in self.models:
            if not spec.enabled:
                continue
            if enabled_providers is not None and spec.provider not in enabled_providers:
                continue
            out.append(Route(provider=self.providers[spec.provider], model=spec))
        return out
