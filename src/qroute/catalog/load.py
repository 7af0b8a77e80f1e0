"""Build the catalog a process uses: the shipped data file, a replacement file, user overrides.

Also decides which routes are *active* (callable now): a provider is on when
`enabled = true`, or when `enabled` is unset and either its key is present or it
needs no key at all (local vLLM/Ollama servers, the simulator).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from qroute.catalog.types import Catalog, ModelSpec, ProviderSpec, Route
from qroute.config_errors import ConfigError, explain, read_toml

if TYPE_CHECKING:
    from qroute.config import Settings

DEFAULT_CATALOG_RESOURCE = "default.toml"


def parse_catalog(data: Mapping[str, Any], source: str) -> Catalog:
    """A catalog from its TOML form (`version`, `source`, `[[providers]]`, `[[models]]`)."""
    unknown = sorted(set(data) - {"version", "source", "providers", "models"})
    if unknown:
        raise ConfigError(
            f"{source}: {unknown[0]}: unknown key (a typo?): a catalog has version, source, "
            "[[providers]] and [[models]]"
        )
    providers: dict[str, ProviderSpec] = {}
    for i, raw in enumerate(_tables(data, "providers", source)):
        try:
            spec = ProviderSpec.model_validate(raw)
        except ValidationError as exc:
            raise explain(exc, source, prefix=("providers", i)) from None
        if spec.name in providers:
            raise ConfigError(f"{source}: providers[{i}].name: provider '{spec.name}' is declared twice")
        providers[spec.name] = spec
    models: list[ModelSpec] = []
    for i, raw in enumerate(_tables(data, "models", source)):
        try:
            models.append(ModelSpec.model_validate(raw))
        except ValidationError as exc:
            raise explain(exc, source, prefix=("models", i)) from None
    catalog = Catalog(
        version=str(data.get("version", "unversioned")),
        source=str(data.get("source", source)),
        providers=providers,
        models=tuple(models),
    )
    check_catalog(catalog, source)
    return catalog


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key}: must be an array of tables ([[{key}]])")
    return value


def check_catalog(catalog: Catalog, source: str) -> None:
    """Cross-entry checks: every model's provider exists; route ids are unique."""
    seen: set[str] = set()
    for i, spec in enumerate(catalog.models):
        if spec.provider not in catalog.providers:
            raise ConfigError(
                f"{source}: models[{i}].provider: model {spec.route_id} references provider "
                f"'{spec.provider}', which is not declared: add [providers.{spec.provider}] or fix the name"
            )
        if spec.route_id in seen:
            raise ConfigError(
                f"{source}: models[{i}]: route {spec.route_id} is listed twice: remove one entry"
            )
        seen.add(spec.route_id)


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with qroute (`qroute/catalog/default.toml`), parsed once per process."""
    resource = resources.files("qroute.catalog").joinpath(DEFAULT_CATALOG_RESOURCE)
    return parse_catalog(tomllib.loads(resource.read_text(encoding="utf-8")), "qroute default catalog")


def load_catalog_file(path: Path) -> Catalog:
    """A full catalog from a TOML file in the default catalog's format."""
    return parse_catalog(read_toml(path), str(path))


def base_catalog(settings: Settings) -> Catalog:
    """What the settings start from: a catalog file, the shipped catalog, or nothing."""
    if settings.catalog_file is not None:
        return load_catalog_file(settings.catalog_file)
    if settings.use_default_catalog:
        return default_catalog()
    return Catalog(version="empty", source="qroute.toml only", providers={}, models=())


def build_catalog(settings: Settings, *, env: Mapping[str, str] | None = None) -> Catalog:
    """The catalog for these settings: the base catalog, then `providers` by name and `models` by route id.

    When settings change anything, the version gets a `+local.<hash>` suffix so cost
    records say which prices they used. `env` is accepted for symmetry with
    `active_routes`; building does not depend on it.
    """
    del env
    base = base_catalog(settings)
    if not settings.providers and not settings.models:
        return base
    providers = {**base.providers, **settings.providers}
    overrides = {spec.route_id: spec for spec in settings.models}
    models = [overrides.pop(spec.route_id, spec) for spec in base.models]
    models.extend(overrides.values())
    catalog = Catalog(
        version=f"{base.version}+local.{_digest(settings.providers.values(), settings.models)}",
        source=f"{base.source}, with local overrides",
        providers=providers,
        models=tuple(models),
    )
    check_catalog(catalog, "qroute.toml")
    return catalog


def _digest(providers: Iterable[ProviderSpec], models: Iterable[ModelSpec]) -> str:
    payload = json.dumps(
        [[p.model_dump(mode="json") for p in providers], [m.model_dump(mode="json") for m in models]],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def resolve_api_key(provider: ProviderSpec, env: Mapping[str, str]) -> str | None:
    """The provider's key: its environment variable, else the file `api_key_file` (stripped).

    None when neither yields a non-empty value. Never log the result.
    """
    if provider.api_key_env:
        value = env.get(provider.api_key_env, "").strip()
        if value:
            return value
    if provider.api_key_file is not None:
        try:
            value = provider.api_key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value or None
    return None


def needs_key(provider: ProviderSpec) -> bool:
    """Whether the provider names a key source at all (keyless local servers do not)."""
    return provider.api_key_env is not None or provider.api_key_file is not None


def key_hint(provider: ProviderSpec) -> str:
    """How to supply this provider's key, for messages: `set OPENAI_API_KEY`, `create /run/key`."""
    hints = []
    if provider.api_key_env:
        hints.append(f"set {provider.api_key_env}")
    if provider.api_key_file is not None:
        hints.append(f"put the key in {provider.api_key_file}")
    return " or ".join(hints)


def provider_inactive_reason(provider: ProviderSpec, env: Mapping[str, str]) -> str | None:
    """None when the provider is active; otherwise why not (for `qroute config check`)."""
    if provider.enabled is False:
        return "provider disabled"
    if provider.enabled is None and needs_key(provider) and resolve_api_key(provider, env) is None:
        sources = [provider.api_key_env] if provider.api_key_env else []
        if provider.api_key_file is not None:
            sources.append(str(provider.api_key_file))
        return f"no {' / '.join(s for s in sources if s)}"
    return None


def active_providers(catalog: Catalog, env: Mapping[str, str] | None = None) -> frozenset[str]:
    """Names of providers that are on for this environment."""
    environ = os.environ if env is None else env
    return frozenset(
        name for name, spec in catalog.providers.items() if provider_inactive_reason(spec, environ) is None
    )


def active_routes(catalog: Catalog, *, env: Mapping[str, str] | None = None) -> list[Route]:
    """Routes the worker may call: enabled models at active providers, in catalog order."""
    return catalog.routes(enabled_providers=active_providers(catalog, env))
