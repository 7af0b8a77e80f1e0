"""`qroute costs` and `qroute results` against a real broker: exact totals, breakdowns, filters, formats."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from qroute.codec import encode
from qroute.config import Settings
from qroute.kafka import make_producer
from qroute.models import Attempt, CostRecord, Usage

from .test_client_sdk import old_result, publish_results
from .test_submit_cli import config_file, invoke

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def attempt(n: int, provider: str, model: str, cost: str, *, billed: bool = True) -> Attempt:
    return Attempt(
        n=n,
        provider=provider,
        model=model,
        outcome="success" if billed else "rate_limited",
        action="done" if billed else "failover",
        usage=Usage(input_tokens=100 * n, output_tokens=10 * n) if billed else None,
        billed=billed,
        cost_usd=Decimal(cost),
        started_at=T0 + timedelta(seconds=n),
        duration_ms=5.0,
    )


def record(job_id: str, batch: str | None, tenant: str, attempts: list[Attempt]) -> CostRecord:
    return CostRecord(
        job_id=job_id,
        tenant=tenant,
        batch_id=batch,
        attempts=attempts,
        total_cost_usd=sum((a.cost_usd for a in attempts), start=Decimal(0)),
        price_source="test",
        price_version="1",
    )


def sample_records() -> list[CostRecord]:
    """Amounts with many decimal places (a float sum would be off), two batches, two tenants, a failover."""
    return [
        record("a", "b1", "acme", [attempt(1, "cheap", "small", "0.000000123456789")]),
        record(
            "b",
            "b1",
            "acme",
            [attempt(1, "cheap", "small", "0", billed=False), attempt(2, "premium", "large", "0.0123")],
        ),
        record("c", "b2", "zeta", [attempt(1, "cheap", "small", "0.1")]),
        record("d", None, "zeta", [attempt(1, "premium", "large", "0.2")]),
    ]


async def publish_costs(settings: Settings, records: list[CostRecord]) -> None:
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        sends = [
            await producer.send(settings.topics.costs, encode(r), key=r.job_id.encode()) for r in records
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def by_key(rows: list[dict[str, object]]) -> dict[object, Decimal]:
    return {row["key"]: Decimal(str(row["cost_usd"])) for row in rows}


class TestCostsCommand:
    async def test_json_totals_are_the_exact_sum(self, unique_settings: Settings, tmp_path: Path) -> None:
        """The total equals the Decimal sum of the records; each breakdown adds up to it; duplicates once."""
        records = sample_records()
        duplicate = records[0].model_copy(update={"created_at": T0})  # same job, same attempts: republished
        await publish_costs(unique_settings, [*records, duplicate, records[2]])
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        code, output = await invoke("costs", "--config", config, "--json")
        assert code == 0, output
        totals = json.loads(output)
        expected = sum((r.total_cost_usd for r in records), start=Decimal(0))
        assert expected == Decimal("0.312300123456789")
        assert Decimal(totals["total"]["cost_usd"]) == expected
        assert totals["total"]["jobs"] == 4
        assert totals["duplicates_ignored"] == 2
        for dimension in ("batch", "tenant", "provider", "model"):
            assert sum(by_key(totals[f"by_{dimension}"]).values(), start=Decimal(0)) == expected
        assert by_key(totals["by_batch"]) == {
            "b1": Decimal("0.012300123456789"),
            "b2": Decimal("0.1"),
            "(none)": Decimal("0.2"),
        }
        assert by_key(totals["by_provider"]) == {
            "cheap": Decimal("0.100000123456789"),
            "premium": Decimal("0.2123"),
        }
        cheap = next(row for row in totals["by_provider"] if row["key"] == "cheap")
        assert (cheap["jobs"], cheap["attempts"], cheap["billed_attempts"]) == (3, 3, 2)

    async def test_batch_filter_csv_and_table(self, unique_settings: Settings, tmp_path: Path) -> None:
        """--batch-id keeps one batch; --csv and the table print the same exact amounts."""
        await publish_costs(unique_settings, sample_records())
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        code, output = await invoke("costs", "--config", config, "--batch-id", "b1", "--csv")
        assert code == 0, output
        rows = list(csv.DictReader(io.StringIO(output)))
        total = next(row for row in rows if row["dimension"] == "total")
        assert total["cost_usd"] == "0.012300123456789"
        assert {row["key"] for row in rows if row["dimension"] == "tenant"} == {"acme"}
        code, output = await invoke("costs", "--config", config, "--batch-id", "b1")
        assert code == 0, output
        assert "total $0.012300123456789 over 2 cost records, 3 attempts" in output

    async def test_empty_topic(self, unique_settings: Settings, tmp_path: Path) -> None:
        """No records: zero totals, exit 0 (reading stops at the high-water mark, it does not hang)."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        code, output = await invoke("costs", "--config", config, "--json")
        assert code == 0, output
        assert json.loads(output)["total"]["cost_usd"] == "0"

    async def test_missing_topic_is_an_error(self, unique_settings: Settings, tmp_path: Path) -> None:
        """A topic that does not exist is reported, not created."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        code, output = await invoke("costs", "--config", config, "--topic", "no-such-topic-here")
        assert code == 1
        assert "topic 'no-such-topic-here' does not exist" in output


class TestResultsCommand:
    async def test_prints_the_results_of_one_batch(self, unique_settings: Settings, tmp_path: Path) -> None:
        """`qroute results --batch-id` prints that batch's results up to the current end, then exits."""
        mine = [old_result(f"r-{i}").model_copy(update={"batch_id": "mine"}) for i in range(3)]
        await publish_results(unique_settings, [*mine, old_result("other")])
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        code, output = await invoke("results", "--config", config, "--batch-id", "mine")
        assert code == 0, output
        assert sorted(line.split("\t")[0] for line in output.splitlines()) == ["r-0", "r-1", "r-2"]
        code, output = await invoke("results", "--config", config, "--jsonl")
        assert code == 0, output
        assert len([json.loads(line) for line in output.splitlines()]) == 4
