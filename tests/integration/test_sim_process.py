"""Config loading, the `qroute sim` command and the simulator in its own process."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from qroute.cli import app
from qroute.config_errors import ConfigError
from qroute.sim import SimConfig, default_config, load_sim_config, run_in_subprocess
from qroute.sim.config import parse_sim_config
from qroute.sim.testing import ANTHROPIC_HEADERS, chat_request, messages_request, sim_config, sim_provider

MINIMAL_TOML = """
seed = 3
[[providers]]
name = "p1"
family = "openai"
rpm = 10
latency = { kind = "uniform", lo = 0.0, hi = 0.01 }
failure_rates = { "503" = 0.1, timeout = 0.05 }
[[providers.models]]
name = "m1"
input_per_m = "0.15"
cached_input_per_m = "0.075"
output_per_m = "0.60"
"""


class TestConfig:
    """Configs load from TOML/JSON and bad ones are refused with a readable reason."""

    def test_toml_file_loads(self, tmp_path: Path) -> None:
        """A TOML file becomes a SimConfig with exact prices and the given latency and rates."""
        path = tmp_path / "sim.toml"
        path.write_text(MINIMAL_TOML)
        config = load_sim_config(path)
        provider = config.providers[0]
        assert str(provider.models[0].input_per_m) == "0.15"
        assert provider.latency.kind == "uniform"
        assert provider.failure_rates == {"503": 0.1, "timeout": 0.05}

    def test_json_round_trip(self, tmp_path: Path) -> None:
        """The JSON a parent hands its child loads back to an equal config."""
        path = tmp_path / "sim.json"
        path.write_text(default_config().model_dump_json())
        assert load_sim_config(path) == default_config()

    def test_float_price_refused(self) -> None:
        """A float price is refused: it has already lost digits."""
        data = tomllib.loads(MINIMAL_TOML.replace('"0.15"', "0.15"))
        with pytest.raises(ConfigError, match="input_per_m"):
            parse_sim_config(data, "test")

    def test_rates_over_one_refused(self) -> None:
        """Fault rates adding up to more than 1 are refused."""
        data = tomllib.loads(MINIMAL_TOML.replace("timeout = 0.05", "timeout = 0.95"))
        with pytest.raises(ConfigError, match="failure_rates"):
            parse_sim_config(data, "test")

    def test_default_config_has_the_four_demo_providers(self) -> None:
        """The built-in config serves cheap (rpm-limited OpenAI), mid, premium (Anthropic) and flaky."""
        config = default_config()
        names = {p.name: p for p in config.providers}
        assert set(names) == {"cheap", "mid", "premium", "flaky"}
        assert names["cheap"].family == "openai"
        assert names["cheap"].rpm is not None
        assert names["premium"].family == "anthropic"
        assert names["flaky"].failure_rates
        assert names["flaky"].outages


class TestCommand:
    """`qroute sim` options that return without serving."""

    def test_print_default_config(self) -> None:
        """--print-default-config prints TOML that parses to the built-in config."""
        result = CliRunner().invoke(app, ["sim", "--print-default-config"])
        assert result.exit_code == 0
        assert parse_sim_config(tomllib.loads(result.output), "stdout") == default_config()

    def test_bad_config_exits_with_reason(self, tmp_path: Path) -> None:
        """A broken config file exits 1 and names the field."""
        path = tmp_path / "bad.toml"
        path.write_text(MINIMAL_TOML.replace('family = "openai"', 'family = "gemini"'))
        result = CliRunner().invoke(app, ["sim", "--config", str(path)])
        assert result.exit_code == 1
        assert "family" in result.output


class TestSubprocess:
    """run_in_subprocess serves from another process and stops it afterwards."""

    async def test_serves_controls_and_stops(self) -> None:
        """The child answers both families, reports its ledger, obeys the outage switch and exits."""
        config: SimConfig = sim_config(sim_provider("oa", "openai"), sim_provider("an", "anthropic"))
        with run_in_subprocess(config) as sim:
            async with httpx.AsyncClient(timeout=10.0) as http:
                ok = await http.post(
                    f"{sim.base_url('oa')}/chat/completions", json=chat_request("sim-small", "hi")
                )
                an = await http.post(
                    f"{sim.base_url('an')}/v1/messages",
                    json=messages_request("sim-small", "hi"),
                    headers=ANTHROPIC_HEADERS,
                )
                sim.set_outage("oa", True)
                down = await http.post(
                    f"{sim.base_url('oa')}/chat/completions", json=chat_request("sim-small", "hi")
                )
            ledger = await sim.ledger()
            pid = sim.pid
        assert (ok.status_code, an.status_code, down.status_code) == (200, 200, 503)
        assert len(ledger.entries) == 2
        assert ledger.fault_counts == {"oa": {"outage": 1}}
        assert pid is not None
        assert not sim.healthy()
