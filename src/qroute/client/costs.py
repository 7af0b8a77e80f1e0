"""Adding up cost records: totals by batch, tenant, provider and model, exact to the last digit.

Every sum is a `Decimal` sum of the records' own amounts, so the grand total equals
the sum of the cost records (and the providers' bills) exactly, and each breakdown
adds up to the grand total.

Duplicates: a cost record republished unchanged (a publish retried after its
acknowledgement was lost) has the same job id and the same attempts; it is counted
once. A job that ran twice (its worker died after calling a provider) has two
records with different attempts; both are counted, because both were billed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from qroute.models import CostRecord, Usage
from qroute.money import ZERO

Dimension = Literal["batch", "tenant", "provider", "model"]
DIMENSIONS: tuple[Dimension, ...] = ("batch", "tenant", "provider", "model")
NO_BATCH = "(none)"


@dataclass
class CostLine:
    """Totals for one key of one dimension."""

    key: str
    jobs: int = 0
    """Cost records touching this key (a job that ran twice counts twice)."""
    attempts: int = 0
    billed_attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = ZERO

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "jobs": self.jobs,
            "attempts": self.attempts,
            "billed_attempts": self.billed_attempts,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": format(self.cost_usd.normalize(), "f"),
        }


@dataclass
class CostTotals:
    """Running totals over cost records; `add` them as they are read."""

    total: CostLine = field(default_factory=lambda: CostLine("total"))
    breakdown: dict[Dimension, dict[str, CostLine]] = field(
        default_factory=lambda: {dimension: {} for dimension in DIMENSIONS}
    )
    duplicates: int = 0
    _seen: set[bytes] = field(default_factory=set, repr=False)

    def add(self, record: CostRecord) -> bool:
        """Count a record; False (and not counted) when it repeats one already counted."""
        fingerprint = _fingerprint(record)
        if fingerprint in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(fingerprint)
        self._count_job(self.total, record)
        self._count_job(self._line("batch", record.batch_id or NO_BATCH), record)
        self._count_job(self._line("tenant", record.tenant), record)
        touched: set[tuple[Dimension, str]] = set()
        for attempt in record.attempts:
            keys: tuple[tuple[Dimension, str], ...] = (
                ("provider", attempt.provider),
                ("model", attempt.model),
            )
            for dimension, key in keys:
                line = self._line(dimension, key)
                _count_attempt(line, attempt.billed, attempt.usage, attempt.cost_usd)
                if (dimension, key) not in touched:
                    touched.add((dimension, key))
                    line.jobs += 1
        return True

    def add_all(self, records: Iterable[CostRecord]) -> None:
        for record in records:
            self.add(record)

    def lines(self, dimension: Dimension) -> list[CostLine]:
        """The dimension's lines, most expensive first (then by key)."""
        return sorted(self.breakdown[dimension].values(), key=lambda line: (-line.cost_usd, line.key))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready totals; amounts are exact decimal strings."""
        return {
            "total": self.total.as_dict(),
            "duplicates_ignored": self.duplicates,
            **{
                f"by_{dimension}": [line.as_dict() for line in self.lines(dimension)]
                for dimension in DIMENSIONS
            },
        }

    def _line(self, dimension: Dimension, key: str) -> CostLine:
        lines = self.breakdown[dimension]
        line = lines.get(key)
        if line is None:
            line = lines[key] = CostLine(key)
        return line

    @staticmethod
    def _count_job(line: CostLine, record: CostRecord) -> None:
        line.jobs += 1
        for attempt in record.attempts:
            _count_attempt(line, attempt.billed, attempt.usage, attempt.cost_usd)


def _fingerprint(record: CostRecord) -> bytes:
    """Same job, same attempts (when, where, what they cost) → same fingerprint."""
    parts = [record.job_id]
    parts.extend(
        f"{a.n}|{a.provider}|{a.model}|{a.started_at.isoformat()}|{a.cost_usd}" for a in record.attempts
    )
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).digest()


def _count_attempt(line: CostLine, billed: bool, usage: Usage | None, cost: Decimal) -> None:
    line.attempts += 1
    line.billed_attempts += int(billed)
    if usage is not None:
        line.input_tokens += usage.input_tokens
        line.output_tokens += usage.output_tokens
    line.cost_usd += cost
