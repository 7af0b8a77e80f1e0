"""Settings written as TOML for the worker subprocess read back unchanged."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from qroute.config import KafkaSettings, Settings, TopicSettings, WorkerSettings, load_settings
from qroute.sim.testing import sim_config, sim_model, sim_provider
from qroute.testing import sim_routes_settings
from qroute.tomlfile import dumps, settings_toml


class _FakeSim:
    """Enough of a simulator endpoint for `sim_routes_settings` (no server needed)."""

    def __init__(self) -> None:
        self.config = sim_config(
            sim_provider("cheap", models=[sim_model("small", input_per_m=Decimal("0.15"))]),
            sim_provider("dear", "anthropic"),
        )

    def base_url(self, provider: str) -> str:
        return f"http://127.0.0.1:9/{provider}/v1"


class TestSettingsRoundTrip:
    """`load_settings` reads back exactly the settings the bench built."""

    def test_round_trip(self, tmp_path: Path) -> None:
        """Kafka, topics, worker knobs, providers with limits and models with exact prices survive."""
        settings = sim_routes_settings(
            Settings(
                kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9092", session_timeout_ms=1500),
                topics=TopicSettings(
                    jobs="bench.x.jobs", reply_prefixes=["bench.x.results"], create_missing=True
                ),
                worker=WorkerSettings(max_in_flight=1000, metrics_host="127.0.0.1", metrics_port=9999),
            ),
            _FakeSim(),
            rpm={"cheap": 600},
        )
        path = tmp_path / "worker.toml"
        path.write_text(settings_toml(settings), encoding="utf-8")
        assert load_settings(path, env={}) == settings


class TestDumps:
    """The writer's TOML subset parses to the same data."""

    def test_scalars_tables_and_arrays(self) -> None:
        """Strings with quotes and control characters, numbers, booleans, lists and nested tables."""
        data = {
            "title": 'say "hi"\n\tand \x7f bye',
            "n": 3,
            "x": 0.5,
            "on": False,
            "tiers": [5, 30],
            "section": {"name": "a", "headers": {"x-key": "1"}, "deep": {"k": "v"}},
            "items": [{"a": 1, "tags": ["p", "q"]}, {"a": 2}],
            "odd key": "spaces",
        }
        assert tomllib.loads(dumps(data)) == data

    def test_none_is_left_out(self) -> None:
        """None has no TOML form: the key is dropped, so the loader's default applies."""
        assert tomllib.loads(dumps({"a": None, "b": 1})) == {"b": 1}

    def test_unsupported_value(self) -> None:
        """A value with no TOML form in this subset is a TypeError, not a silent str()."""
        with pytest.raises(TypeError):
            dumps({"a": object()})
