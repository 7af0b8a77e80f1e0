"""The shipped catalog, building a catalog from settings, API keys and active routes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from qroute.catalog.load import (
    active_routes,
    build_catalog,
    default_catalog,
    load_catalog_file,
    provider_inactive_reason,
    resolve_api_key,
)
from qroute.catalog.types import ModelSpec, ProviderSpec
from qroute.config import ConfigError, Settings

PAST_DEPRECATIONS = {
    "openai/gpt-4.1-nano",
    "openai/o4-mini",
    "deepseek/deepseek-chat",
    "deepseek/deepseek-reasoner",
    "together/llama-3.3-70b-instruct-turbo",
    "together/llama-4-scout-17b-16e-instruct",
}
"""Routes whose LiteLLM deprecation_date is before 2026-11-22."""


def _model(provider: str = "openai", model: str = "extra", **changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "provider": provider,
        "model": model,
        "tier": 2,
        "input_per_m": "1",
        "output_per_m": "2",
        "context_window": 1000,
        "max_output_tokens": 100,
        "price_source": "test",
        "price_date": date(2026, 11, 22),
    }
    return ModelSpec.model_validate(fields | changes)


class TestDefaultCatalog:
    """The catalog shipped in the package."""

    def test_has_at_least_25_enabled_models(self) -> None:
        """At least 25 models are enabled (deprecated ones do not count)."""
        assert sum(spec.enabled for spec in default_catalog().models) >= 25

    def test_covers_the_six_vendors(self) -> None:
        """OpenAI, Anthropic, Google, Mistral, DeepSeek and an enabled Llama host are all present."""
        enabled = [spec for spec in default_catalog().models if spec.enabled]
        providers = {spec.provider for spec in enabled}
        assert {"openai", "anthropic", "gemini", "mistral", "deepseek"} <= providers
        assert any("llama" in spec.model for spec in enabled)

    def test_every_entry_cites_its_price(self) -> None:
        """Each model names the LiteLLM key its prices came from and the date they were checked."""
        for spec in default_catalog().models:
            assert spec.price_source.startswith(
                "LiteLLM 1.109.1 model_prices_and_context_window_backup.json key "
            )
            assert spec.price_date == date(2026, 10, 29)

    def test_every_model_has_a_declared_provider(self) -> None:
        """No model points at a provider the catalog does not declare."""
        catalog = default_catalog()
        assert all(spec.provider in catalog.providers for spec in catalog.models)

    def test_route_ids_are_unique(self) -> None:
        """One entry per provider/model."""
        ids = [spec.route_id for spec in default_catalog().models]
        assert len(ids) == len(set(ids))

    def test_past_deprecations_are_disabled(self) -> None:
        """Models past their deprecation date are kept but never routed to."""
        disabled = {spec.route_id for spec in default_catalog().models if not spec.enabled}
        assert disabled == PAST_DEPRECATIONS

    @pytest.mark.parametrize(
        ("route", "prices"),
        [
            ("openai/gpt-4o-mini", ("0.15", "0.075", "0.60")),
            ("anthropic/claude-sonnet-4-6", ("3.00", "0.30", "15.00")),
            ("gemini/gemini-2.5-flash", ("0.30", "0.03", "2.50")),
            ("groq/gpt-oss-20b", ("0.075", "0.0375", "0.30")),
        ],
    )
    def test_prices_match_the_source_table(self, route: str, prices: tuple[str, str, str]) -> None:
        """Input, cached input and output prices are the LiteLLM values, exactly."""
        spec = next(s for s in default_catalog().models if s.route_id == route)
        assert (spec.input_per_m, spec.cached_input_price, spec.output_per_m) == tuple(map(Decimal, prices))

    def test_anthropic_cache_write_is_the_five_minute_price(self) -> None:
        """Anthropic cache writes cost 1.25x input (the 5-minute write)."""
        spec = next(s for s in default_catalog().models if s.route_id == "anthropic/claude-opus-4-7")
        assert spec.cache_write_price == Decimal("6.25")

    def test_cached_price_never_exceeds_input(self) -> None:
        """A cache hit is never dearer than an uncached token."""
        assert all(spec.cached_input_price <= spec.input_per_m for spec in default_catalog().models)

    def test_all_tiers_are_used(self) -> None:
        """Tiers 1 to 4 each have at least one enabled model."""
        assert {spec.tier for spec in default_catalog().models if spec.enabled} == {1, 2, 3, 4}

    def test_host_prefixed_wire_names(self) -> None:
        """Hosted open models are sent under the host's own model name."""
        by_id = {spec.route_id: spec for spec in default_catalog().models}
        assert by_id["groq/gpt-oss-120b"].wire_model == "openai/gpt-oss-120b"
        assert by_id["deepinfra/llama-3.3-70b-instruct-turbo"].wire_model == (
            "meta-llama/Llama-3.3-70B-Instruct-Turbo"
        )

    def test_providers_are_on_only_with_their_key(self) -> None:
        """Shipped providers leave `enabled` unset and name a key variable."""
        for provider in default_catalog().providers.values():
            assert provider.enabled is None
            assert provider.api_key_env is not None

    def test_gemini_uses_the_v1beta_base(self) -> None:
        """Gemini speaks its own family at the v1beta base URL."""
        gemini = default_catalog().providers["gemini"]
        assert (gemini.family, gemini.base_url) == (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
        )


class TestBuildCatalog:
    """Settings change the catalog: providers by name, models by route id."""

    def test_no_overrides_is_the_default_catalog(self) -> None:
        """Untouched settings give the shipped catalog, version included."""
        assert build_catalog(Settings()) == default_catalog()

    def test_model_replaced_by_route_id(self) -> None:
        """A settings model with an existing route id replaces that entry in place."""
        replacement = _model(model="gpt-4o", input_per_m="9")
        catalog = build_catalog(Settings(models=[replacement]))
        matches = [spec for spec in catalog.models if spec.route_id == "openai/gpt-4o"]
        assert matches == [replacement]
        assert len(catalog.models) == len(default_catalog().models)

    def test_model_added(self) -> None:
        """A settings model with a new route id is appended."""
        catalog = build_catalog(Settings(models=[_model()]))
        assert catalog.models[-1].route_id == "openai/extra"

    def test_provider_replaced_by_name(self) -> None:
        """A settings provider replaces the shipped one of the same name."""
        local = ProviderSpec(name="openai", family="openai", base_url="http://127.0.0.1:9/v1")
        catalog = build_catalog(Settings(providers={"openai": local}))
        assert catalog.providers["openai"] == local

    def test_overrides_change_the_version(self) -> None:
        """The version gains a suffix that depends on the overrides, and only on them."""
        one = build_catalog(Settings(models=[_model()]))
        same = build_catalog(Settings(models=[_model()]))
        other = build_catalog(Settings(models=[_model(input_per_m="3")]))
        assert one.version.startswith(default_catalog().version + "+local.")
        assert one.version == same.version
        assert one.version != other.version

    def test_without_default_catalog_only_settings_count(self) -> None:
        """use_default_catalog = false starts from an empty catalog."""
        local = ProviderSpec(name="local", family="openai", base_url="http://127.0.0.1:9/v1")
        settings = Settings(use_default_catalog=False, providers={"local": local}, models=[_model("local")])
        catalog = build_catalog(settings)
        assert [spec.route_id for spec in catalog.models] == ["local/extra"]

    def test_catalog_file_replaces_the_default(self, tmp_path: Path) -> None:
        """A catalog_file is the base instead of the shipped catalog."""
        path = tmp_path / "catalog.toml"
        path.write_text(
            'version = "v7"\nsource = "ours"\n'
            '[[providers]]\nname = "local"\nfamily = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            '[[models]]\nprovider = "local"\nmodel = "m"\ntier = 1\ninput_per_m = "0.1"\n'
            'output_per_m = "0.2"\ncontext_window = 1000\nmax_output_tokens = 10\n'
            'price_source = "ours"\nprice_date = 2026-11-01\n'
        )
        catalog = build_catalog(Settings(catalog_file=path))
        assert (catalog.version, list(catalog.providers)) == ("v7", ["local"])

    def test_catalog_file_with_unknown_provider_fails(self, tmp_path: Path) -> None:
        """A catalog file whose model names an undeclared provider is refused with the field."""
        path = tmp_path / "catalog.toml"
        path.write_text(
            '[[models]]\nprovider = "nobody"\nmodel = "m"\ntier = 1\ninput_per_m = "0.1"\n'
            'output_per_m = "0.2"\ncontext_window = 1000\nmax_output_tokens = 10\n'
            'price_source = "x"\nprice_date = 2026-11-01\n'
        )
        with pytest.raises(ConfigError, match=r"catalog\.toml: models\[0\]\.provider: .*'nobody'"):
            load_catalog_file(path)


class TestResolveApiKey:
    """Where a provider's key comes from."""

    def _provider(self, tmp_path: Path, key_text: str | None = None) -> ProviderSpec:
        key_file = tmp_path / "key"
        if key_text is not None:
            key_file.write_text(key_text)
        return ProviderSpec(
            name="p", family="openai", base_url="http://x/v1", api_key_env="P_KEY", api_key_file=key_file
        )

    def test_environment_variable(self, tmp_path: Path) -> None:
        """The variable's value is the key."""
        assert resolve_api_key(self._provider(tmp_path), {"P_KEY": "sk-env"}) == "sk-env"

    def test_environment_wins_over_file(self, tmp_path: Path) -> None:
        """With both present, the variable is used."""
        assert resolve_api_key(self._provider(tmp_path, "sk-file"), {"P_KEY": "sk-env"}) == "sk-env"

    def test_file_is_stripped(self, tmp_path: Path) -> None:
        """A key file's trailing newline is not part of the key."""
        assert resolve_api_key(self._provider(tmp_path, "  sk-file\n"), {}) == "sk-file"

    def test_empty_variable_falls_back_to_file(self, tmp_path: Path) -> None:
        """An empty variable counts as unset."""
        assert resolve_api_key(self._provider(tmp_path, "sk-file"), {"P_KEY": " "}) == "sk-file"

    def test_missing_or_blank_sources_give_none(self, tmp_path: Path) -> None:
        """No variable and a missing or blank file: no key."""
        assert resolve_api_key(self._provider(tmp_path), {}) is None
        assert resolve_api_key(self._provider(tmp_path, "\n"), {}) is None


class TestActiveRoutes:
    """Which routes a worker may call in a given environment."""

    def test_no_keys_no_routes(self) -> None:
        """The shipped catalog with no keys has nothing to call."""
        assert active_routes(default_catalog(), env={}) == []

    def test_a_key_activates_that_providers_enabled_models(self) -> None:
        """OPENAI_API_KEY turns on exactly the enabled OpenAI models."""
        routes = active_routes(default_catalog(), env={"OPENAI_API_KEY": "sk"})
        expected = [s.route_id for s in default_catalog().models if s.provider == "openai" and s.enabled]
        assert [route.id for route in routes] == expected

    def test_disabled_provider_stays_off_with_a_key(self) -> None:
        """enabled = false wins over a present key."""
        off = default_catalog().providers["openai"].model_copy(update={"enabled": False})
        catalog = build_catalog(Settings(providers={"openai": off}))
        assert active_routes(catalog, env={"OPENAI_API_KEY": "sk"}) == []
        assert provider_inactive_reason(off, {"OPENAI_API_KEY": "sk"}) == "provider disabled"

    def test_keyless_provider_is_active(self) -> None:
        """A provider naming no key source (local server, simulator) needs none."""
        local = ProviderSpec(name="local", family="openai", base_url="http://127.0.0.1:9/v1")
        catalog = build_catalog(Settings(providers={"local": local}, models=[_model("local")]))
        assert [route.id for route in active_routes(catalog, env={})] == ["local/extra"]

    def test_reason_names_the_missing_variable(self) -> None:
        """An inactive keyed provider says which variable to set."""
        reason = provider_inactive_reason(default_catalog().providers["anthropic"], {})
        assert reason == "no ANTHROPIC_API_KEY"
