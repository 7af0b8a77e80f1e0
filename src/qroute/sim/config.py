"""Simulator configuration: providers, their models and prices, latency, limits and faults.

Loadable from TOML (`qroute sim --config FILE`) or JSON (what `run_in_subprocess`
hands its child). The simulator keeps its OWN price list here on purpose: its
ledger is the independent bill that qroute's recorded costs are checked against.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from qroute.config_errors import ConfigError, explain, read_toml

Family = Literal["openai", "anthropic"]
"""Wire format a simulated provider speaks (Gemini is not simulated)."""

FailureKind = Literal["500", "502", "503", "529", "timeout", "reset", "malformed", "truncated", "no-usage"]
"""An injectable fault: an HTTP error status, or a broken transport/body (see `qroute.sim`)."""

FAILURE_KINDS: tuple[FailureKind, ...] = (
    "500",
    "502",
    "503",
    "529",
    "timeout",
    "reset",
    "malformed",
    "truncated",
    "no-usage",
)

DEFAULT_CONFIG_RESOURCE = "default.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_float(value: Any) -> Any:
    """Prices are exact: a TOML/JSON float has already lost digits, so it is refused."""
    if isinstance(value, float):
        raise ValueError('a float money value loses digits: write the price as a string, e.g. "0.15"')
    return value


Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class SimModel(_Strict):
    """One model a simulated provider serves, with the simulator's own prices (USD per 1M tokens)."""

    name: str = Field(min_length=1)
    input_per_m: Price
    cached_input_per_m: Price
    output_per_m: Price
    context_window: PositiveInt = 128_000
    reasoning_tokens: NonNegativeInt = 0
    """Added to every answer's output and reported as reasoning (OpenAI) / thinking (Anthropic)."""
    cached_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of input tokens reported as cache reads, only for prompts over 1024 tokens."""

    _prices_are_exact = field_validator("input_per_m", "cached_input_per_m", "output_per_m", mode="before")(
        _no_float
    )


class FixedLatency(_Strict):
    """Every answer takes exactly `seconds`."""

    kind: Literal["fixed"] = "fixed"
    seconds: NonNegativeFloat = 0.0


class UniformLatency(_Strict):
    """Latency drawn uniformly from [lo, hi] seconds."""

    kind: Literal["uniform"]
    lo: NonNegativeFloat
    hi: NonNegativeFloat

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.hi < self.lo:
            raise ValueError("hi must be >= lo")
        return self


class LognormalLatency(_Strict):
    """Latency with the long right tail real providers show: median·exp(sigma·N(0,1)) seconds."""

    kind: Literal["lognormal"]
    median: PositiveFloat
    sigma: NonNegativeFloat


Latency = Annotated[FixedLatency | UniformLatency | LognormalLatency, Field(discriminator="kind")]


class ScheduledFailure(_Strict):
    """Requests number `first`..`last` (1-based, counted per provider on arrival) fail with `kind`."""

    first: PositiveInt
    last: PositiveInt
    kind: FailureKind

    @model_validator(mode="after")
    def _ordered(self) -> ScheduledFailure:
        if self.last < self.first:
            raise ValueError("last must be >= first")
        return self


class Outage(_Strict):
    """The provider answers 503 to everything from `start_s` to `end_s` seconds after server start."""

    start_s: NonNegativeFloat
    end_s: PositiveFloat

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be > start_s")
        return self


class SimProvider(_Strict):
    """One simulated provider, served under `/{name}/` on the simulator's port."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    family: Family
    models: list[SimModel] = Field(min_length=1)
    latency: Latency = FixedLatency()
    rpm: PositiveInt | None = None
    """Requests per minute (token bucket, refilled continuously); None = unlimited."""
    tpm: PositiveInt | None = None
    """Tokens per minute, charged as estimated input + max output on admission; None = unlimited."""
    failure_rates: dict[FailureKind, float] = Field(default_factory=dict)
    """Probability per fault kind for each admitted request (drawn from the seeded generator)."""
    failure_schedule: list[ScheduledFailure] = Field(default_factory=list)
    outages: list[Outage] = Field(default_factory=list)
    hang_s: PositiveFloat = 120.0
    """How long a `timeout` fault holds the request before dropping the connection."""

    @field_validator("failure_rates")
    @classmethod
    def _rates_are_probabilities(cls, rates: dict[FailureKind, float]) -> dict[FailureKind, float]:
        if any(not 0.0 <= rate <= 1.0 for rate in rates.values()):
            raise ValueError("each rate must be between 0 and 1")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("the rates add up to more than 1")
        return rates

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[SimModel]) -> list[SimModel]:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique within a provider")
        return models

    def model(self, name: str) -> SimModel | None:
        """The served model called `name`, if any."""
        return next((m for m in self.models if m.name == name), None)


class SimConfig(_Strict):
    """Everything one simulator process serves."""

    seed: int = 0
    """Seeds latency and fault draws (per provider), so a run can be repeated."""
    providers: list[SimProvider] = Field(min_length=1)

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, providers: list[SimProvider]) -> list[SimProvider]:
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ValueError("provider names must be unique")
        return providers

    def provider(self, name: str) -> SimProvider | None:
        """The provider called `name`, if any."""
        return next((p for p in self.providers if p.name == name), None)


def parse_sim_config(data: Any, source: str) -> SimConfig:
    """A validated config from decoded TOML/JSON; errors name the field and the fix."""
    try:
        return SimConfig.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, source) from None


def load_sim_config(path: Path) -> SimConfig:
    """Read a config file: JSON when it ends in `.json`, TOML otherwise."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found: check the path") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read JSON ({exc})") from None
    else:
        data = read_toml(path)
    return parse_sim_config(data, str(path))


def default_config_text() -> str:
    """The built-in config's TOML (cheap, mid, premium, flaky), also a documented example."""
    return resources.files("qroute.sim").joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")


def default_config() -> SimConfig:
    """The built-in config the demo uses when no file is given."""
    return parse_sim_config(tomllib.loads(default_config_text()), f"qroute.sim/{DEFAULT_CONFIG_RESOURCE}")
