"""`qroute route`: offline planning of a job file, with every route's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qroute.cli import app

CONFIG = """
use_default_catalog = false

[providers.local]
family = "openai"
base_url = "http://127.0.0.1:9/v1"

[providers.remote]
family = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "QROUTE_TEST_ROUTE_NO_SUCH_KEY"

[[models]]
provider = "local"
model = "small"
tier = 1
input_per_m = "0.10"
output_per_m = "0.40"
context_window = 8192
max_output_tokens = 4096
price_source = "test"
price_date = 2026-11-22

[[models]]
provider = "local"
model = "json"
tier = 2
input_per_m = "1.00"
output_per_m = "4.00"
context_window = 128000
max_output_tokens = 16384
capabilities = ["json_mode"]
price_source = "test"
price_date = 2026-11-22

[[models]]
provider = "remote"
model = "cheapest"
tier = 3
input_per_m = "0.01"
output_per_m = "0.02"
context_window = 200000
max_output_tokens = 64000
price_source = "test"
price_date = 2026-11-22
"""

KEYED_ONLY = """
use_default_catalog = false

[providers.remote]
family = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "QROUTE_TEST_ROUTE_NO_SUCH_KEY"

[[models]]
provider = "remote"
model = "cheapest"
tier = 3
input_per_m = "0.01"
output_per_m = "0.02"
context_window = 200000
max_output_tokens = 64000
price_source = "test"
price_date = 2026-11-22
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "qroute.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def write_job(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "job.json"
    job = {"id": "job-1", "messages": [{"role": "user", "content": "Summarise this."}], **fields}
    path.write_text(json.dumps(job), encoding="utf-8")
    return path


def run(*args: str | Path) -> Any:
    env = {"COLUMNS": "250", "QROUTE_CONFIG": "", "QROUTE_TEST_ROUTE_NO_SUCH_KEY": ""}
    return CliRunner().invoke(app, [str(a) for a in ("route", *args)], env=env)


class TestExplain:
    def test_every_active_route_with_verdict(self, tmp_path: Path, config: Path) -> None:
        """--explain lists active routes cheapest first, with estimates and the reason a route is out."""
        job = write_job(tmp_path, params={"max_tokens": 8190})
        result = run("--explain", job, "--config", config)
        assert result.exit_code == 0, result.output
        assert "2 active routes" in result.stdout
        small, json_route = result.stdout.index("local/small"), result.stdout.index("local/json")
        assert small < json_route
        assert "max output 4096 < max_tokens 8190" in result.stdout
        assert "context window 8192 < estimated" in result.stdout
        assert "remote/cheapest" not in result.stdout
        assert "first choice local/json" in result.stdout

    def test_no_eligible_route_exits_1(self, tmp_path: Path, config: Path) -> None:
        """When no route fits, every reason is still shown and the exit code is 1."""
        job = write_job(tmp_path, constraints={"required_capabilities": ["vision"]})
        result = run("--explain", job, "--config", config)
        assert result.exit_code == 1
        assert result.stdout.count("missing capabilities: vision") == 2
        assert "no eligible route for job job-1" in result.stderr

    def test_invalid_job_prints_decode_error(self, tmp_path: Path, config: Path) -> None:
        """An invalid job exits 1 with the decoder's message naming the field."""
        job = write_job(tmp_path, params={"max_tokens": 0})
        result = run("--explain", job, "--config", config)
        assert result.exit_code == 1
        assert "not a valid job (schema_violation)" in result.stderr
        assert "params.max_tokens" in result.stderr

    def test_unreadable_job_file(self, tmp_path: Path, config: Path) -> None:
        """A missing job file is an error with exit code 1, not a traceback."""
        result = run("--explain", tmp_path / "missing.json", "--config", config)
        assert result.exit_code == 1
        assert "cannot read" in result.stderr

    def test_all_routes_includes_inactive_providers(self, tmp_path: Path, config: Path) -> None:
        """--all-routes plans over routes without keys too, and says which providers are inactive."""
        result = run("--explain", write_job(tmp_path), "--config", config, "--all-routes")
        assert result.exit_code == 0, result.output
        assert "all 3 catalog routes (2 active)" in result.stdout
        assert "no QROUTE_TEST_ROUTE_NO_SUCH_KEY" in result.stdout
        assert "first choice remote/cheapest" in result.stdout

    def test_no_active_route_plans_over_all(self, tmp_path: Path) -> None:
        """With no provider key set anywhere, every catalog route is planned and the output says so."""
        config = tmp_path / "keyed.toml"
        config.write_text(KEYED_ONLY, encoding="utf-8")
        result = run("--explain", write_job(tmp_path), "--config", config)
        assert result.exit_code == 0, result.output
        assert "no route is active" in result.stdout
        assert "planning over all 1 catalog routes instead" in result.stdout
        assert "first choice remote/cheapest" in result.stdout

    def test_invalid_config_exits_2(self, tmp_path: Path) -> None:
        """A broken configuration is reported like `qroute config check` does, exit code 2."""
        bad = tmp_path / "bad.toml"
        bad.write_text("[routing]\nmax_attempts = 0\n", encoding="utf-8")
        result = run("--explain", write_job(tmp_path), "--config", bad)
        assert result.exit_code == 2
        assert "max_attempts" in result.stderr


class TestPlainOutput:
    def test_prints_route_ids_in_order(self, tmp_path: Path, config: Path) -> None:
        """Without --explain, stdout is one `route<TAB>estimated cost` line per eligible route."""
        result = run(write_job(tmp_path, params={"max_tokens": 100}), "--config", config)
        assert result.exit_code == 0, result.output
        assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["local/small", "local/json"]

    def test_job_from_stdin(self, tmp_path: Path, config: Path) -> None:
        """`-` reads the job from standard input."""
        job = json.dumps({"id": "j-stdin", "messages": [{"role": "user", "content": "hi"}]})
        env = {"COLUMNS": "250", "QROUTE_TEST_ROUTE_NO_SUCH_KEY": ""}
        result = CliRunner().invoke(app, ["route", "-", "--config", str(config)], input=job, env=env)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0].startswith("local/small\t")

    def test_job_given_twice_is_a_usage_error(self, tmp_path: Path, config: Path) -> None:
        """A positional job and --explain together are refused."""
        job = write_job(tmp_path)
        result = run(job, "--explain", job, "--config", config)
        assert result.exit_code == 2
