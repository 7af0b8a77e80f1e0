"""The simulator's bill: what it charged for every served answer, computed from its own prices.

Only a 200 that carried usage is billed. Injected failures (5xx, 429, 400,
timeouts, resets, malformed or truncated bodies, 200 without usage) are not.
Costs are exact Decimals, serialised as fixed-point strings:
cost = ((input - cached)·input_per_m + cached·cached_input_per_m + output·output_per_m) / 1e6.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal, localcontext
from typing import Annotated

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PlainSerializer

from qroute.sim.config import SimModel

Cost = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]
"""USD, exact; JSON as a fixed-point string (never `1E-7`, never a float)."""

_MILLION_EXPONENT = -6


def price(model: SimModel, input_tokens: int, cached: int, output_tokens: int) -> Decimal:
    """The simulator's charge for one answer (input includes the cached tokens)."""
    with localcontext() as ctx:
        ctx.prec = 60  # token counts × prices stay far below this: no rounding ever happens
        per_million = (
            (input_tokens - cached) * model.input_per_m
            + cached * model.cached_input_per_m
            + output_tokens * model.output_per_m
        )
        return per_million.scaleb(_MILLION_EXPONENT)


class LedgerEntry(BaseModel):
    """One billed answer."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    request_id: str
    input_tokens: NonNegativeInt
    """All input tokens, cached ones included (Anthropic's wire `input_tokens` excludes them)."""
    cached_input_tokens: NonNegativeInt
    output_tokens: NonNegativeInt
    """All output tokens, reasoning included."""
    reasoning_tokens: NonNegativeInt
    cost: Cost


class Ledger(BaseModel):
    """A snapshot of the bill and of what every provider answered."""

    model_config = ConfigDict(frozen=True)

    entries: list[LedgerEntry]
    """Every billed answer, in billing order (empty in a summary snapshot)."""
    total_cost: Cost
    provider_totals: dict[str, Cost]
    """Exact total per provider that billed anything."""
    billed_count: int
    """Number of billed answers (also in a summary snapshot)."""
    status_counts: dict[str, dict[str, int]]
    """Per provider: answers by HTTP status ("200", "429", …), or "reset"/"timeout" when none was sent."""
    fault_counts: dict[str, dict[str, int]]
    """Per provider: injected faults by kind (from rates, schedules, outages and directives)."""

    def total_for(self, provider: str) -> Decimal:
        """Exact total billed by one provider."""
        return self.provider_totals.get(provider, Decimal(0))

    def billed(self, provider: str | None = None) -> list[LedgerEntry]:
        """Billed entries, optionally of one provider."""
        return [e for e in self.entries if provider is None or e.provider == provider]


class LedgerBook:
    """The live, mutable record behind `Ledger` snapshots (single event loop, no locking)."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._total = Decimal(0)
        self._provider_totals: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def bill(self, entry: LedgerEntry) -> None:
        self._entries.append(entry)
        with localcontext() as ctx:
            ctx.prec = 60
            self._total += entry.cost
            self._provider_totals[entry.provider] += entry.cost

    def count_status(self, provider: str, status: str) -> None:
        self._statuses[provider][status] += 1

    def count_fault(self, provider: str, kind: str) -> None:
        self._faults[provider][kind] += 1

    def snapshot(self, *, entries: bool = True) -> Ledger:
        """The bill now; `entries=False` leaves out the per-answer list (cheap after long runs)."""
        return Ledger(
            entries=list(self._entries) if entries else [],
            total_cost=self._total,
            provider_totals=dict(self._provider_totals),
            billed_count=len(self._entries),
            status_counts={p: dict(c) for p, c in self._statuses.items()},
            fault_counts={p: dict(c) for p, c in self._faults.items()},
        )

    def clear(self) -> None:
        self._entries = []
        self._total = Decimal(0)
        self._provider_totals = defaultdict(Decimal)
        self._statuses = defaultdict(Counter)
        self._faults = defaultdict(Counter)
