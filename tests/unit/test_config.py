"""Loading settings from qroute.toml and QROUTE_* variables, the errors, and `qroute config`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from qroute.catalog.load import build_catalog, default_catalog
from qroute.catalog.types import Catalog, ModelSpec, ProviderSpec
from qroute.commands.config import register
from qroute.config import SECTIONS, ConfigError, Settings, load_settings, validate_runtime
from qroute.config_reference import BEGIN_MARKER, END_MARKER, field_doc, render_reference

REPO = Path(__file__).resolve().parents[2]

NEW_MODEL = """
[[models]]
provider = "{provider}"
model = "m"
tier = 2
input_per_m = {input}
output_per_m = "{output}"
context_window = 1000
max_output_tokens = 100
price_date = 2026-11-01
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qroute.toml"
    path.write_text(text)
    return path


def _model(provider: str = "local", **changes: object) -> str:
    fields: dict[str, object] = {"provider": provider, "input": '"0.1"', "output": "0.2"} | changes
    return NEW_MODEL.format(**fields)


LOCAL = '[providers.local]\nfamily = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'


def _error(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    return str(info.value)


class TestLoadSettings:
    """Where settings come from and how TOML tables become settings."""

    def test_defaults_without_a_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """No --config, no QROUTE_CONFIG and no ./qroute.toml: the defaults."""
        monkeypatch.chdir(tmp_path)
        assert load_settings(env={}) == Settings()

    def test_reads_qroute_toml_in_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """./qroute.toml is used when nothing else is named."""
        _write(tmp_path, "[worker]\nmax_in_flight = 3\n")
        monkeypatch.chdir(tmp_path)
        assert load_settings(env={}).worker.max_in_flight == 3

    def test_qroute_config_names_the_file(self, tmp_path: Path) -> None:
        """QROUTE_CONFIG points at the file."""
        path = _write(tmp_path, '[topics]\njobs = "j"\n')
        assert load_settings(env={"QROUTE_CONFIG": str(path)}).topics.jobs == "j"

    def test_provider_name_comes_from_the_table(self, tmp_path: Path) -> None:
        """[providers.local] needs no `name` key."""
        settings = load_settings(_write(tmp_path, LOCAL), env={})
        assert settings.providers["local"].name == "local"

    def test_shipped_provider_table_only_changes_given_fields(self, tmp_path: Path) -> None:
        """[providers.openai] rpm = 500 keeps the shipped family, URL and key variable."""
        settings = load_settings(_write(tmp_path, "[providers.openai]\nrpm = 500\n"), env={})
        expected = default_catalog().providers["openai"].model_copy(update={"rpm": 500})
        assert settings.providers["openai"] == expected

    def test_shipped_model_entry_only_changes_given_fields(self, tmp_path: Path) -> None:
        """A [[models]] entry for a shipped route can just say enabled = false."""
        path = _write(tmp_path, '[[models]]\nprovider = "openai"\nmodel = "gpt-4o"\nenabled = false\n')
        (spec,) = load_settings(path, env={}).models
        shipped = next(s for s in default_catalog().models if s.route_id == "openai/gpt-4o")
        assert spec == shipped.model_copy(update={"enabled": False})

    def test_new_model_price_source_defaults_to_the_file(self, tmp_path: Path) -> None:
        """A model defined in the file cites the file as its price source unless it says otherwise."""
        path = _write(tmp_path, LOCAL + _model())
        (spec,) = load_settings(path, env={}).models
        assert spec.price_source == str(path)

    def test_relative_catalog_file_is_relative_to_the_config(self, tmp_path: Path) -> None:
        """catalog_file = "c.toml" means next to qroute.toml, not the working directory."""
        path = _write(tmp_path, 'catalog_file = "c.toml"\n')
        (tmp_path / "c.toml").write_text('version = "1"\nsource = "c"\n')
        assert load_settings(path, env={}).catalog_file == tmp_path / "c.toml"

    def test_example_config_is_valid(self) -> None:
        """examples/qroute.toml loads, builds a catalog and passes the runtime checks."""
        settings = load_settings(REPO / "examples" / "qroute.toml", env={})
        validate_runtime(settings, build_catalog(settings), {})


class TestConfigErrors:
    """Bad configurations fail with the file, the dotted field and what to do."""

    def test_unknown_provider_on_a_model(self, tmp_path: Path) -> None:
        """A model naming an undeclared provider says how to declare it."""
        path = _write(tmp_path, LOCAL + _model("local") + _model("openai-x").replace('"m"', '"gpt"'))
        assert _error(path) == (
            f"{path}: models[1].provider: model openai-x/gpt references provider 'openai-x', "
            "which is not declared: add [providers.openai-x] or fix the name"
        )

    def test_negative_price(self, tmp_path: Path) -> None:
        """A negative price names the field."""
        path = _write(tmp_path, LOCAL + _model(output="-2"))
        assert _error(path) == f"{path}: models[0].output_per_m: money must not be negative: fix the value"

    def test_float_price(self, tmp_path: Path) -> None:
        """An unquoted price is refused with the quoted form to write instead."""
        path = _write(tmp_path, LOCAL + LOCAL.replace("local", "l2") + _model() + _model(input="0.15"))
        message = _error(path)
        assert message.startswith(f"{path}: models[1].input_per_m: prices must be decimal strings")
        assert 'e.g. "0.15"' in message

    def test_model_without_provider(self, tmp_path: Path) -> None:
        """A model with no provider key is reported as missing."""
        path = _write(tmp_path, _model().replace('provider = "local"\n', ""))
        assert _error(path) == f"{path}: models[0].provider: required but missing: add it"

    def test_unknown_key(self, tmp_path: Path) -> None:
        """A typo in a key fails instead of being ignored."""
        path = _write(tmp_path, "[worker]\nmax_in_flght = 3\n")
        assert _error(path).startswith(f"{path}: worker.max_in_flght: unknown key (a typo?)")

    def test_unknown_top_level_table(self, tmp_path: Path) -> None:
        """A misspelt section is an unknown key too."""
        path = _write(tmp_path, "[wroker]\nmax_in_flight = 3\n")
        assert _error(path).startswith(f"{path}: wroker: unknown key")

    def test_enabled_provider_without_key(self, tmp_path: Path) -> None:
        """enabled = true with no key variable tells the user to set it or disable the provider."""
        path = _write(tmp_path, "[providers.openai]\nenabled = true\n")
        assert _error(path) == (
            f"{path}: providers.openai.enabled: provider 'openai' is enabled but has no API key: "
            "set OPENAI_API_KEY or set enabled = false"
        )
        load_settings(path, env={"OPENAI_API_KEY": "sk"})  # with the key it loads

    def test_invalid_toml_gives_line_and_column(self, tmp_path: Path) -> None:
        """A syntax error names the file, line and column."""
        path = _write(tmp_path, "[worker]\nmax_in_flight 3\n")
        assert re.match(rf"{re.escape(str(path))}: invalid TOML: .*line 2, column \d+", _error(path))

    def test_missing_file(self, tmp_path: Path) -> None:
        """A named file that does not exist is an error, not silent defaults."""
        assert "file not found" in _error(tmp_path / "nope.toml")

    def test_provider_name_must_match_table(self, tmp_path: Path) -> None:
        """`name` inside [providers.X] may not contradict X."""
        path = _write(tmp_path, LOCAL + 'name = "other"\n')
        assert _error(path).startswith(f"{path}: providers.local.name: differs from the table name")

    def test_programmatic_provider_key_must_be_its_name(self) -> None:
        """Settings built in code cannot file a provider under another name."""
        spec = ProviderSpec(name="a", family="openai", base_url="http://127.0.0.1:9/v1")
        with pytest.raises(ValueError, match="the key must be its name"):
            Settings(providers={"b": spec})

    def test_every_problem_of_a_section_is_listed(self, tmp_path: Path) -> None:
        """Two bad values in one validation give two lines."""
        path = _write(tmp_path, "[worker]\nmax_in_flight = 0\ncommit_interval_s = -1\n")
        assert len(_error(path).splitlines()) == 2


class TestEnvironmentOverrides:
    """QROUTE_<SECTION>__<FIELD> variables beat the file."""

    def test_section_field(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """QROUTE_WORKER__MAX_IN_FLIGHT=7 sets worker.max_in_flight."""
        monkeypatch.chdir(tmp_path)
        assert load_settings(env={"QROUTE_WORKER__MAX_IN_FLIGHT": "7"}).worker.max_in_flight == 7

    def test_environment_beats_file(self, tmp_path: Path) -> None:
        """A variable overrides the same field in the file."""
        path = _write(tmp_path, "[worker]\nmax_in_flight = 3\n")
        assert load_settings(path, env={"QROUTE_WORKER__MAX_IN_FLIGHT": "7"}).worker.max_in_flight == 7

    def test_json_list(self, tmp_path: Path) -> None:
        """Lists are written as JSON."""
        env = {"QROUTE_TOPICS__DELAY_TIERS_S": "[5, 60]"}
        assert load_settings(_write(tmp_path, ""), env=env).topics.delay_tiers_s == [5, 60]

    def test_provider_field(self, tmp_path: Path) -> None:
        """QROUTE_PROVIDERS__OPENAI__RPM changes one field of a shipped provider."""
        settings = load_settings(_write(tmp_path, ""), env={"QROUTE_PROVIDERS__OPENAI__RPM": "500"})
        assert settings.providers["openai"].rpm == 500
        assert settings.providers["openai"].base_url == "https://api.openai.com/v1"

    def test_top_level_field(self, tmp_path: Path) -> None:
        """QROUTE_USE_DEFAULT_CATALOG is a top-level setting."""
        env = {"QROUTE_USE_DEFAULT_CATALOG": "false"}
        assert load_settings(_write(tmp_path, ""), env=env).use_default_catalog is False

    def test_bad_value_names_the_variable(self, tmp_path: Path) -> None:
        """An invalid value is reported against the variable, not the file."""
        message = _error(_write(tmp_path, ""), {"QROUTE_WORKER__MAX_IN_FLIGHT": "0"})
        assert message.startswith("environment variable QROUTE_WORKER__MAX_IN_FLIGHT: worker.max_in_flight:")

    def test_misspelt_field_names_the_variable(self, tmp_path: Path) -> None:
        """A variable for a field that does not exist is an error."""
        message = _error(_write(tmp_path, ""), {"QROUTE_WORKER__MAX_INFLIGHT": "7"})
        assert message.startswith("environment variable QROUTE_WORKER__MAX_INFLIGHT: worker.max_inflight:")

    def test_unknown_section_is_an_error(self, tmp_path: Path) -> None:
        """QROUTE_WROKER__X is refused with the valid sections listed."""
        assert "not a setting" in _error(_write(tmp_path, ""), {"QROUTE_WROKER__X": "1"})

    def test_other_tools_variables_are_ignored(self, tmp_path: Path) -> None:
        """QROUTE_* variables without a section (e.g. test fixtures) are not settings."""
        env = {"QROUTE_TEST_BOOTSTRAP": "127.0.0.1:9092"}
        assert load_settings(_write(tmp_path, ""), env=env) == Settings()


class TestValidateRuntime:
    """Cross-object checks a worker runs before consuming."""

    def test_no_active_routes(self) -> None:
        """No key and no keyless provider: the error says how to get a route."""
        settings = Settings()
        with pytest.raises(ConfigError, match=r"no active routes.*set OPENAI_API_KEY.*keyless provider"):
            validate_runtime(settings, build_catalog(settings), {})

    def test_one_key_is_enough(self) -> None:
        """One provider with a key makes the configuration usable."""
        settings = Settings()
        validate_runtime(settings, build_catalog(settings), {"GROQ_API_KEY": "gsk"})

    def test_duplicate_route_ids(self) -> None:
        """Two catalog entries with one route id are refused."""
        spec = default_catalog().models[0]
        catalog = Catalog(version="1", source="t", providers=default_catalog().providers, models=(spec, spec))
        with pytest.raises(ConfigError, match=f"route {spec.route_id} is listed twice"):
            validate_runtime(Settings(), catalog, {"OPENAI_API_KEY": "sk"})

    def test_enabled_provider_without_key_in_catalog(self) -> None:
        """A catalog provider with enabled = true and no key fails here too."""
        openai = default_catalog().providers["openai"].model_copy(update={"enabled": True})
        settings = Settings(providers={"openai": openai})
        with pytest.raises(ConfigError, match="set OPENAI_API_KEY or set enabled = false"):
            validate_runtime(settings, build_catalog(settings), {"GROQ_API_KEY": "gsk"})


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


KEY_VARS = [p.api_key_env for p in default_catalog().providers.values() if p.api_key_env]


class TestConfigCheckCommand:
    """`qroute config check` exits 0 with a table, or 2 with the error and no traceback."""

    def _run(self, tmp_path: Path, args: list[str], **keys: str) -> tuple[int, str]:
        env: dict[str, str | None] = {"QROUTE_CONFIG": None}
        env.update(dict.fromkeys(KEY_VARS))
        env.update(keys)
        result = CliRunner().invoke(_cli(), ["config", *args], env=env)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result.exit_code, result.output

    def test_valid_config_prints_the_route_table(self, tmp_path: Path) -> None:
        """Exit 0; active and inactive routes with the reason."""
        path = _write(tmp_path, "[providers.openai]\nrpm = 500\n")
        code, output = self._run(tmp_path, ["check", "--config", str(path)], OPENAI_API_KEY="sk-SECRET-41")
        assert code == 0
        assert re.search(r"gpt-4o-mini .*active", output)
        assert "no ANTHROPIC_API_KEY" in output
        assert "SECRET" not in output

    def test_bad_config_exits_2_with_the_message(self, tmp_path: Path) -> None:
        """Exit 2 and the ConfigError text, without a traceback."""
        path = _write(tmp_path, "[worker]\nmax_in_flght = 3\n")
        code, output = self._run(tmp_path, ["check", "--config", str(path)], OPENAI_API_KEY="sk")
        assert code == 2
        assert "worker.max_in_flght: unknown key" in output
        assert "Traceback" not in output

    def test_no_active_route_exits_2(self, tmp_path: Path) -> None:
        """Valid syntax but nothing callable still fails the check."""
        code, output = self._run(tmp_path, ["check", "--config", str(_write(tmp_path, ""))])
        assert code == 2
        assert "no active routes" in output

    def test_show_prints_effective_settings(self, tmp_path: Path) -> None:
        """`config show` prints the merged settings as JSON."""
        path = _write(tmp_path, "[worker]\nmax_in_flight = 3\n")
        code, output = self._run(tmp_path, ["show", "--config", str(path)])
        assert code == 0
        assert Settings.model_validate_json(output).worker.max_in_flight == 3


def _all_fields() -> list[tuple[type[BaseModel], str]]:
    models: list[type[BaseModel]] = [Settings, *SECTIONS.values(), ProviderSpec, ModelSpec]
    return [(model, name) for model in models for name in model.model_fields]


class TestReferenceDocs:
    """docs/configuration.md documents every setting and cannot drift from the code."""

    def test_generated_block_is_current(self) -> None:
        """The reference in the docs equals what `qroute config reference` renders now."""
        text = (REPO / "docs" / "configuration.md").read_text()
        block = text[text.index(BEGIN_MARKER) + len(BEGIN_MARKER) : text.index(END_MARKER)]
        assert block.strip() == render_reference().strip(), (
            "run: qroute config reference --update docs/configuration.md"
        )

    @pytest.mark.parametrize(("model", "name"), _all_fields(), ids=lambda v: getattr(v, "__name__", v))
    def test_every_field_is_documented(self, model: type[BaseModel], name: str) -> None:
        """Each field appears in the docs with a meaning."""
        text = (REPO / "docs" / "configuration.md").read_text()
        if model is Settings and name in SECTIONS:
            assert f"### [{name}]" in text
        else:
            assert f"| `{name}` |" in text
            assert field_doc(model, name)

    def test_every_section_variable_is_listed(self) -> None:
        """Each QROUTE_<SECTION>__<FIELD> variable is in the docs."""
        text = (REPO / "docs" / "configuration.md").read_text()
        for section, model in SECTIONS.items():
            for name in model.model_fields:
                assert f"QROUTE_{section.upper()}__{name.upper()}" in text
