"""Cost totals: exact sums, every breakdown adds up to the total, republished records count once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from qroute.client.costs import DIMENSIONS, NO_BATCH, CostTotals
from qroute.models import Attempt, CostRecord, Usage

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def attempt(n: int, provider: str, model: str, cost: Decimal) -> Attempt:
    billed = cost > 0
    return Attempt(
        n=n,
        provider=provider,
        model=model,
        outcome="success" if billed else "server_error",
        action="done" if billed else "retry",
        usage=Usage(input_tokens=7, output_tokens=3) if billed else None,
        billed=billed,
        cost_usd=cost,
        started_at=T0 + timedelta(milliseconds=n),
        duration_ms=1.0,
    )


def record(job_id: str, attempts: list[Attempt], batch: str | None = "b", tenant: str = "t") -> CostRecord:
    return CostRecord(
        job_id=job_id,
        tenant=tenant,
        batch_id=batch,
        attempts=attempts,
        total_cost_usd=sum((a.cost_usd for a in attempts), start=Decimal(0)),
        price_source="test",
        price_version="1",
    )


amounts = st.decimals(min_value=0, max_value=10, places=12, allow_nan=False, allow_infinity=False)
attempt_lists = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["m1", "m2"]), amounts),
    min_size=1,
    max_size=4,
)
records = st.lists(
    st.tuples(attempt_lists, st.sampled_from(["b1", "b2", None]), st.sampled_from(["t1", "t2"])), max_size=15
)


class TestCostTotals:
    @given(records)
    def test_breakdowns_add_up_to_the_exact_total(
        self, specs: list[tuple[list[tuple[str, str, Decimal]], str | None, str]]
    ) -> None:
        """For any records, the total is their exact Decimal sum and each dimension sums to it."""
        built = [
            record(f"j{i}", [attempt(n + 1, p, m, c) for n, (p, m, c) in enumerate(spec)], batch, tenant)
            for i, (spec, batch, tenant) in enumerate(specs)
        ]
        totals = CostTotals()
        totals.add_all(built)
        expected = sum((r.total_cost_usd for r in built), start=Decimal(0))
        assert totals.total.cost_usd == expected
        assert totals.total.jobs == len(built)
        for dimension in DIMENSIONS:
            assert sum((line.cost_usd for line in totals.lines(dimension)), start=Decimal(0)) == expected

    def test_republished_record_counts_once(self) -> None:
        """The same job with the same attempts (a retried publish) is counted once."""
        original = record("a", [attempt(1, "p", "m", Decimal("0.5"))])
        totals = CostTotals()
        assert totals.add(original)
        assert not totals.add(original.model_copy(update={"created_at": T0}))
        assert totals.total.cost_usd == Decimal("0.5")
        assert totals.duplicates == 1

    def test_a_job_that_ran_twice_counts_twice(self) -> None:
        """A job re-run after a crash has different attempts; both were billed, both count."""
        totals = CostTotals()
        totals.add(record("a", [attempt(1, "p", "m", Decimal("0.5"))]))
        totals.add(record("a", [attempt(2, "p", "m", Decimal("0.5"))]))
        assert totals.total.cost_usd == Decimal("1.0")
        assert totals.duplicates == 0

    def test_provider_lines_count_jobs_attempts_and_tokens(self) -> None:
        """Per provider: jobs touching it, attempts, billed attempts and billed tokens."""
        totals = CostTotals()
        totals.add(record("a", [attempt(1, "p", "m", Decimal(0)), attempt(2, "p", "m", Decimal("0.2"))]))
        totals.add(record("b", [attempt(1, "q", "m", Decimal("0.1"))], batch=None))
        line = totals.breakdown["provider"]["p"]
        assert (line.jobs, line.attempts, line.billed_attempts) == (1, 2, 1)
        assert (line.input_tokens, line.output_tokens) == (7, 3)
        assert totals.breakdown["model"]["m"].jobs == 2
        assert set(totals.breakdown["batch"]) == {"b", NO_BATCH}

    def test_lines_most_expensive_first_and_json_exact(self) -> None:
        """Lines sort by cost; JSON amounts are exact strings without exponents."""
        totals = CostTotals()
        totals.add(record("a", [attempt(1, "cheap", "m", Decimal("0.00000001"))]))
        totals.add(record("b", [attempt(1, "dear", "m", Decimal("3"))]))
        assert [line.key for line in totals.lines("provider")] == ["dear", "cheap"]
        data = totals.as_dict()
        assert data["total"]["cost_usd"] == "3.00000001"
        assert data["by_provider"][1]["cost_usd"] == "0.00000001"
