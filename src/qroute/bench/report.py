"""What a benchmark run found: measured values, targets with PASS/FAIL, and their rendering.

A scenario reports `Metric`s (numbers worth reading) and `Check`s (a number held
against a target from the issue). Both render as a rich table for people and as
plain JSON (`--json`) for scripts; money stays an exact decimal string in JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text

Value = int | float | str | Decimal
Comparison = Literal["<=", ">=", "<", ">", "=="]

_SYMBOL: dict[Comparison, str] = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "="}


def fmt(value: Value, unit: str = "") -> str:
    """A value for people: floats to 3 significant-ish digits, money exact, units appended."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, Decimal):
        text = format(value.normalize(), "f") if unit == "USD" else f"{value:.4f}"
    elif isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = value
    if not unit:
        return text
    return f"${text}" if unit == "USD" else f"{text} {unit}"


def _json(value: Value) -> Any:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured value."""

    key: str
    label: str
    value: Value
    unit: str = ""

    def display(self) -> str:
        return fmt(self.value, self.unit)


@dataclass(frozen=True, slots=True)
class Check:
    """A measured value against a target: `value <op> target`."""

    key: str
    label: str
    value: int | float | Decimal
    op: Comparison
    target: int | float | Decimal
    unit: str = ""

    @property
    def passed(self) -> bool:
        v, t = self.value, self.target
        return {
            "<=": v <= t,
            ">=": v >= t,
            "<": v < t,
            ">": v > t,
            "==": v == t,
        }[self.op]

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def shortfall(self) -> str:
        """How far a failed check is from its target, relative to it (`""` when it passed)."""
        if self.passed:
            return ""
        if not self.target:
            return f"off by {fmt(self.value, self.unit)}"  # the target is zero
        off = abs(float(self.value) / float(self.target) - 1) * 100
        return f"missed by {off:.1f}%"


@dataclass(slots=True)
class ScenarioReport:
    """Everything one scenario found."""

    name: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    """Set when the scenario could not finish: what went wrong (its checks then fail)."""

    def metric(self, key: str, label: str, value: Value, unit: str = "") -> None:
        self.metrics.append(Metric(key, label, value, unit))

    def check(
        self,
        key: str,
        label: str,
        value: int | float | Decimal,
        op: Comparison,
        target: int | float | Decimal,
        unit: str = "",
    ) -> Check:
        made = Check(key, label, value, op, target, unit)
        self.checks.append(made)
        return made

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "passed": self.passed,
            "error": self.error,
            "metrics": {m.key: _json(m.value) for m in self.metrics},
            "units": {m.key: m.unit for m in self.metrics if m.unit},
            "checks": [
                {
                    "key": c.key,
                    "label": c.label,
                    "value": _json(c.value),
                    "op": c.op,
                    "target": _json(c.target),
                    "unit": c.unit,
                    "passed": c.passed,
                }
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


def report_json(reports: Sequence[ScenarioReport], environment: dict[str, Any]) -> dict[str, Any]:
    """The whole run as one JSON document."""
    return {
        "environment": environment,
        "passed": all(r.passed for r in reports),
        "scenarios": {r.name: r.to_json() for r in reports},
    }


def render(report: ScenarioReport) -> Group:
    """One scenario as a rich renderable: measured values, then targets with PASS/FAIL."""
    table = Table(title=report.title, title_justify="left", show_header=True, expand=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_column("result")
    for metric in report.metrics:
        table.add_row(metric.label, metric.display(), "", "")
    if report.checks:
        table.add_section()
    for check in report.checks:
        verdict = Text(check.verdict, style="bold green" if check.passed else "bold red")
        if not check.passed:
            verdict.append(f" ({check.shortfall()})", style="red")
        target = f"{_SYMBOL[check.op]} {fmt(check.target, check.unit)}"
        table.add_row(check.label, fmt(check.value, check.unit), target, verdict)
    parts: list[Any] = [table]
    if report.error:
        parts.append(Text(f"error: {report.error}", style="bold red"))
    parts.extend(Text(f"note: {note}", style="dim") for note in report.notes)
    return Group(*parts)


def render_summary(reports: Sequence[ScenarioReport]) -> Table:
    """Every check of every scenario, one line each: the page to paste into a closing note."""
    table = Table(title="qroute bench: targets", title_justify="left")
    table.add_column("scenario")
    table.add_column("target")
    table.add_column("actual", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("result")
    for report in reports:
        if report.error:
            table.add_row(report.name, "scenario finished", "no", "", Text("FAIL", style="bold red"))
        for check in report.checks:
            verdict = Text(check.verdict, style="bold green" if check.passed else "bold red")
            table.add_row(
                report.name,
                check.label,
                fmt(check.value, check.unit),
                f"{_SYMBOL[check.op]} {fmt(check.target, check.unit)}",
                verdict,
            )
    return table
