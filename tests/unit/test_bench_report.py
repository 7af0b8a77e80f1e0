"""Benchmark reports: PASS/FAIL verdicts, exact money in JSON, and the rendered tables."""

from __future__ import annotations

import json
from decimal import Decimal

from rich.console import Console

from qroute.bench.report import Check, ScenarioReport, fmt, render, render_summary, report_json


def _text(renderable: object) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


class TestCheck:
    """A check compares a measured value with its target and says by how much it missed."""

    def test_at_most_passes_on_the_limit(self) -> None:
        """`<=` passes when the value equals the target."""
        assert Check("cpu", "CPU per job", 1.0, "<=", 1.0, "ms").passed

    def test_at_least_fails_below(self) -> None:
        """380 jobs/s against >= 400 fails, missing by 5%."""
        check = Check("tp", "jobs/s", 380.0, ">=", 400.0, "jobs/s")
        assert check.verdict == "FAIL"
        assert check.shortfall() == "missed by 5.0%"

    def test_exact_decimal_ratio(self) -> None:
        """A Decimal ratio of exactly 1.01 passes `<= 1.01`."""
        assert Check("r", "cost ratio", Decimal("1.01"), "<=", Decimal("1.01"), "x").passed

    def test_zero_target(self) -> None:
        """Missing a zero target reports the value instead of a relative miss."""
        check = Check("failed", "failed jobs", 3, "==", 0)
        assert not check.passed
        assert check.shortfall() == "off by 3"


class TestScenarioReport:
    """A scenario passes only when it finished and every check passed."""

    def test_error_fails_the_scenario(self) -> None:
        """An error fails the scenario even with no failing check."""
        report = ScenarioReport("cpu", "cpu", error="worker died")
        assert not report.passed

    def test_json_keeps_money_exact(self) -> None:
        """Money stays a decimal string in JSON, and the verdicts are there."""
        report = ScenarioReport("ratelimit", "rl")
        report.metric("cost", "total cost", Decimal("0.1298000"), "USD")
        report.check("ratio", "cost / optimal", Decimal("1.2"), "<=", Decimal("1.05"), "x")
        doc = json.loads(json.dumps(report_json([report], {"cpus": 2})))
        scenario = doc["scenarios"]["ratelimit"]
        assert scenario["metrics"]["cost"] == "0.1298"
        assert scenario["checks"][0]["passed"] is False
        assert doc["passed"] is False


class TestRendering:
    """The tables show values with units and PASS/FAIL per target."""

    def test_scenario_table(self) -> None:
        """Metrics, the target with its comparison, the verdict and notes are all shown."""
        report = ScenarioReport("throughput", "throughput run")
        report.metric("p99", "latency p99", 2.3456, "s")
        report.check("tp", "jobs/s", 380.0, ">=", 400.0, "jobs/s")
        report.notes.append("latency includes queueing")
        text = _text(render(report))
        assert "latency p99" in text
        assert "2.346 s" in text
        assert "≥ 400.0 jobs/s" in text
        assert "FAIL (missed by 5.0%)" in text
        assert "note: latency includes queueing" in text

    def test_summary_lists_every_check(self) -> None:
        """The summary has one line per check across scenarios, and flags unfinished ones."""
        ok = ScenarioReport("cpu", "cpu")
        ok.check("cpu", "CPU per job", 0.8, "<=", 1.0, "ms")
        broken = ScenarioReport("ratelimit", "rl", error="timeout")
        text = _text(render_summary([ok, broken]))
        assert "CPU per job" in text
        assert "PASS" in text
        assert "scenario finished" in text
        assert "FAIL" in text

    def test_formats(self) -> None:
        """Money is exact with a dollar sign; big numbers get separators."""
        assert fmt(Decimal("0.000123"), "USD") == "$0.000123"
        assert fmt(4000) == "4,000"
        assert fmt(512.25, "jobs/s") == "512.2 jobs/s"
