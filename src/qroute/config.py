"""Settings: one typed object, from `qroute.toml` and `QROUTE_*` environment variables.

Precedence (highest first): environment variables, the TOML file, defaults.
Nested fields use `__` in variable names: `QROUTE_KAFKA__BOOTSTRAP_SERVERS`,
`QROUTE_WORKER__MAX_IN_FLIGHT`, `QROUTE_PROVIDERS__OPENAI__RPM`. `QROUTE_CONFIG`
names the TOML file.

Environment variables are mapped explicitly (not with pydantic-settings) so that
a typo in a variable name fails with the variable's name in the message, and so
the same pydantic validation and error messages serve the file and the
environment. Values are strings that pydantic converts; lists and tables are
written as JSON (`QROUTE_TOPICS__DELAY_TIERS_S=[5,60]`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qroute.catalog.load import active_routes, base_catalog, check_catalog, key_hint, resolve_api_key
from qroute.catalog.types import Catalog, ModelSpec, ProviderSpec
from qroute.config_errors import ConfigError, explain, read_toml

__all__ = [
    "ConfigError",
    "KafkaSettings",
    "RoutingSettings",
    "Settings",
    "TopicSettings",
    "WorkerSettings",
    "load_settings",
    "validate_runtime",
]

DEFAULT_CONFIG_PATH = Path("qroute.toml")
CONFIG_ENV = "QROUTE_CONFIG"
ENV_PREFIX = "QROUTE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    """How to reach the broker."""

    bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]. Unset: commands that can start the embedded broker do so.",
    )
    client_id: str = Field(default="qroute", description="Client id the broker sees in its logs and quotas.")
    session_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        description="Consumer group session timeout: a silent worker is dropped after this.",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000, ge=50, description="Heartbeat period; keep it under a third of the session timeout."
    )
    max_poll_interval_ms: int = Field(
        default=300_000, ge=1_000, description="Longest gap between polls before the group evicts the worker."
    )
    request_timeout_ms: int = Field(default=40_000, ge=1_000, description="Timeout of one broker request.")
    max_request_size: int = Field(default=4 * 1024 * 1024, ge=1024, description="Largest record produced.")
    linger_ms: int = Field(default=5, ge=0, description="Producer batching delay: higher batches more.")
    max_batch_size: int = Field(
        default=256 * 1024,
        ge=1024,
        description=(
            "Bytes per producer batch and partition. Under load a full batch makes every "
            "sender wait for its drain; keep it at or below the broker's message.max.bytes."
        ),
    )
    security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password_env: str | None = Field(default=None, description="Variable holding the SASL password.")


class TopicSettings(_Section):
    """Topic names and how `qroute topics create` makes them."""

    jobs: str = Field(default="qroute.jobs", description="Where producers publish jobs.")
    results: str = Field(default="qroute.results", description="Default reply topic for results.")
    costs: str = Field(default="qroute.costs", description="One cost record per job.")
    dlq: str = Field(default="qroute.dlq", description="Dead letters: records the worker could not accept.")
    delay_prefix: str = Field(default="qroute.jobs.delay", description="Delay topics are PREFIX.<seconds>s.")
    delay_tiers_s: list[int] = Field(
        default_factory=lambda: [5, 30, 300],
        min_length=1,
        description="Wait lengths in seconds that get a delay topic each (PREFIX.<n>s).",
    )
    reply_prefixes: list[str] = Field(
        default_factory=lambda: ["qroute.results"],
        description="A job's reply_to must start with one of these; otherwise the default results topic is used.",
    )
    partitions: int = Field(
        default=8,
        ge=1,
        description="Partitions of created topics: the most workers that can share the jobs topic.",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replicas of created topics; 3 in production."
    )
    create_missing: bool = Field(default=False, description="Worker creates missing topics at start-up.")

    def delay_topic(self, tier_s: int) -> str:
        return f"{self.delay_prefix}.{tier_s}s"


class WorkerSettings(_Section):
    """The consume loop's knobs. Defaults suit one worker process on 2 cores."""

    group_id: str = Field(default="qroute-workers", description="Consumer group shared by all workers.")
    max_in_flight: int = Field(default=512, ge=1, description="Jobs being processed at once, all partitions.")
    max_uncommitted_per_partition: int = Field(
        default=2_000,
        ge=1,
        description="Pause a partition when this many of its records are not yet committed.",
    )
    commit_interval_s: float = Field(
        default=1.0, gt=0, description="How often finished offsets are committed to the broker."
    )
    commit_every_records: int = Field(
        default=100,
        ge=1,
        description=(
            "Also commit as soon as the committable offsets moved this many records since the "
            "last commit: bounds what a crash repeats (and pays for again) by a count."
        ),
    )
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, wait this long for jobs in flight."
    )
    max_job_bytes: int = Field(
        default=1024 * 1024, ge=256, description="Larger job records go to the DLQ as oversize."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Interface of the metrics/health HTTP endpoint.")
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="0 turns the HTTP endpoint off.")


class RoutingSettings(_Section):
    """How the attempt loop trades money against time."""

    max_attempts: int = Field(default=6, ge=1, description="Attempts per job unless the job says otherwise.")
    defer_threshold_s: float = Field(
        default=5.0,
        ge=0,
        description="Waits longer than this go to a delay topic instead of sleeping in process.",
    )
    deadline_margin_s: float = Field(
        default=2.0, ge=0, description="Safety margin added to expected latency."
    )
    default_expected_output_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Expected output tokens as a share of max_tokens, for estimates."
    )
    backoff_base_s: float = Field(
        default=0.5, gt=0, description="First retry backoff; doubles per retry, with full jitter."
    )
    backoff_cap_s: float = Field(
        default=30.0, gt=0, description="Longest backoff; a provider's retry-after wins over it."
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open a route's circuit breaker."
    )
    circuit_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Failure share within circuit_window_s that opens the breaker."
    )
    circuit_window_s: float = Field(
        default=30.0, gt=0, description="Window for circuit_failure_rate, in seconds."
    )
    circuit_min_calls: int = Field(
        default=20, ge=1, description="Calls in the window before the failure rate counts."
    )
    circuit_open_s: float = Field(
        default=10.0, gt=0, description="First open period before a probe; doubles while probes keep failing."
    )


class Settings(_Section):
    """Everything a qroute process reads at start-up."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    catalog_file: Path | None = Field(
        default=None, description="Replace the shipped catalog with this TOML file (same format)."
    )
    use_default_catalog: bool = Field(default=True, description="Start from the shipped catalog.")
    providers: dict[str, ProviderSpec] = Field(
        default_factory=dict, description="Providers to add, or to replace by name."
    )
    models: list[ModelSpec] = Field(
        default_factory=list, description="Models to add, or to replace by route id."
    )

    @model_validator(mode="after")
    def _provider_keys_are_names(self) -> Settings:
        for key, spec in self.providers.items():
            if spec.name != key:
                raise ValueError(f"providers[{key!r}] holds provider {spec.name!r}: the key must be its name")
        return self


SECTIONS: dict[str, type[BaseModel]] = {
    "kafka": KafkaSettings,
    "topics": TopicSettings,
    "worker": WorkerSettings,
    "routing": RoutingSettings,
}
"""Settings sections by TOML table name (also the `<SECTION>` of `QROUTE_<SECTION>__<FIELD>`)."""

_TOP_LEVEL_ENV = ("catalog_file", "use_default_catalog")


def config_path(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """Which file to read: the argument, else `QROUTE_CONFIG`, else `./qroute.toml` if present."""
    if path is not None:
        return path
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        return Path(named)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_settings(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the TOML file and `QROUTE_*` variables, validated; raises `ConfigError`.

    A `[providers.NAME]` table or a `[[models]]` entry that matches an entry of the
    base catalog only needs the fields it changes (e.g. `enabled = false`).
    Relative `catalog_file` and `api_key_file` paths are relative to the file.
    """
    environ = os.environ if env is None else env
    file = config_path(path, environ)
    source = str(file) if file is not None else "defaults"
    data: dict[str, Any] = read_toml(file) if file is not None else {}
    if file is not None:
        _resolve_paths(data, file.parent)  # before the environment: its paths are relative to the cwd
    env_sources = _apply_env(data, environ, source)

    def where(loc: tuple[int | str, ...]) -> str:
        for key, var in env_sources.items():
            if loc[: len(key)] == key:
                return f"environment variable {var}"
        return source

    try:
        shell = Settings.model_validate({k: v for k, v in data.items() if k not in ("providers", "models")})
        base = base_catalog(shell)
        providers = _providers(data.get("providers", {}), base, source)
        models = _models(data.get("models", []), base, source)
        settings = Settings.model_validate({**data, "providers": providers, "models": models})
    except ValidationError as exc:
        raise explain(exc, where) from None
    _check_references(settings, base, source)
    _check_required_keys({**base.providers, **settings.providers}, environ, source)
    return settings


def _apply_env(data: dict[str, Any], env: Mapping[str, str], source: str) -> dict[tuple[str, ...], str]:
    """Merge `QROUTE_<SECTION>__<FIELD>` variables into `data`; returns field path → variable name."""
    applied: dict[tuple[str, ...], str] = {}
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) == 1:
            if parts[0] not in _TOP_LEVEL_ENV:
                continue  # QROUTE_* variables of other tools (tests, scripts) are not settings
            target, key = data, parts[0]
        elif parts[0] in SECTIONS and len(parts) == 2:
            target, key = _table(data, parts[0], var), parts[1]
        elif parts[0] == "providers" and len(parts) == 3:
            target, key = _table(_table(data, "providers", var), parts[1], var), parts[2]
        else:
            raise ConfigError(
                f"{source}: environment variable {var}: not a setting: use QROUTE_<SECTION>__<FIELD> "
                f"with SECTION one of {', '.join(SECTIONS)}, or QROUTE_PROVIDERS__<NAME>__<FIELD>"
            )
        target[key] = _env_value(raw, var)
        applied[tuple(parts)] = var
    return applied


def _table(data: dict[str, Any], key: str, var: str) -> dict[str, Any]:
    table = data.setdefault(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"environment variable {var}: {key} is not a table in the config file")
    return table


def _env_value(raw: str, var: str) -> Any:
    """Strings go to pydantic as they are; JSON lists/tables are decoded first."""
    text = raw.strip()
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment variable {var}: invalid JSON ({exc}): fix the value") from None
    return raw


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    if isinstance(data.get("catalog_file"), str):
        data["catalog_file"] = str(base_dir / data["catalog_file"])
    providers = data.get("providers")
    if isinstance(providers, dict):
        for table in providers.values():
            if isinstance(table, dict) and isinstance(table.get("api_key_file"), str):
                table["api_key_file"] = str(base_dir / table["api_key_file"])


def _providers(raw: Any, base: Catalog, source: str) -> dict[str, Any]:
    """`[providers.NAME]` tables → full provider dicts (name filled in, base entry underneath)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: providers: must be tables such as [providers.openai]")
    out: dict[str, Any] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: providers.{name}: must be a table: write [providers.{name}]")
        if table.get("name", name) != name:
            raise ConfigError(
                f"{source}: providers.{name}.name: differs from the table name: remove `name` "
                "(the table name is the provider name)"
            )
        known = base.providers.get(name)
        underneath = known.model_dump(exclude_defaults=True) if known is not None else {}
        out[name] = {**underneath, **table, "name": name}
    return out


def _models(raw: Any, base: Catalog, source: str) -> list[Any]:
    """`[[models]]` entries; one matching a base route id only needs the fields it changes."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: models: must be an array of tables: write [[models]]")
    known = {spec.route_id: spec for spec in base.models}
    out: list[Any] = []
    for entry in raw:
        if isinstance(entry, dict):
            spec = known.get(f"{entry.get('provider')}/{entry.get('model')}")
            if spec is not None:
                entry = {**spec.model_dump(exclude_defaults=True), **entry}
            else:
                entry = {"price_source": source, **entry}
        out.append(entry)
    return out


def _check_references(settings: Settings, base: Catalog, source: str) -> None:
    declared = set(base.providers) | set(settings.providers)
    seen: set[str] = set()
    for i, spec in enumerate(settings.models):
        if spec.provider not in declared:
            raise ConfigError(
                f"{source}: models[{i}].provider: model {spec.route_id} references provider "
                f"'{spec.provider}', which is not declared: add [providers.{spec.provider}] or fix the name"
            )
        if spec.route_id in seen:
            raise ConfigError(
                f"{source}: models[{i}]: route {spec.route_id} is listed twice: remove one entry"
            )
        seen.add(spec.route_id)


def _check_required_keys(providers: Mapping[str, ProviderSpec], env: Mapping[str, str], source: str) -> None:
    """A provider with `enabled = true` must have its key now, not at the first job."""
    for name, spec in providers.items():
        if spec.enabled is not True or not (spec.api_key_env or spec.api_key_file):
            continue
        if resolve_api_key(spec, env) is None:
            raise ConfigError(
                f"{source}: providers.{name}.enabled: provider '{name}' is enabled but has no API key: "
                f"{key_hint(spec)} or set enabled = false"
            )


def validate_runtime(settings: Settings, catalog: Catalog, env: Mapping[str, str] | None = None) -> None:
    """Checks a worker needs before it consumes: consistent catalog, keys, at least one active route."""
    environ = os.environ if env is None else env
    source = str(settings.catalog_file) if settings.catalog_file is not None else "catalog"
    check_catalog(catalog, source)
    _check_required_keys(catalog.providers, environ, source)
    if not active_routes(catalog, env=environ):
        hints = sorted({key_hint(p) for p in catalog.providers.values() if key_hint(p)})
        choices = "; ".join(hints) if hints else "no provider is declared"
        raise ConfigError(
            "no active routes: no provider is usable in this environment. "
            f"Give one a key ({choices}), or configure a keyless provider such as a local server "
            '([providers.local] family = "openai", base_url = "http://127.0.0.1:8000/v1") with a [[models]] entry'
        )
