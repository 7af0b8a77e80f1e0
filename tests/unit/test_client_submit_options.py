"""`qroute submit` option values (deadline, money, default batch id) and the bulk progress counter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer

from qroute.client.bulk import BatchProgress
from qroute.commands.submit import default_batch_id, parse_deadline, parse_money
from qroute.models import JOB_ID_PATTERN, ErrorInfo, Result, Timings

NOW = datetime(2026, 11, 22, 21, 30, tzinfo=UTC)


class TestDeadline:
    @pytest.mark.parametrize(
        ("text", "delta"),
        [
            ("8h", timedelta(hours=8)),
            ("90m", timedelta(minutes=90)),
            ("1d12h", timedelta(days=1, hours=12)),
            ("45s", timedelta(seconds=45)),
        ],
    )
    def test_relative(self, text: str, delta: timedelta) -> None:
        """A delay is counted from now."""
        assert parse_deadline(text, NOW) == NOW + delta

    def test_absolute_with_timezone(self) -> None:
        """An ISO time with Z or an offset is taken as written."""
        assert parse_deadline("2026-11-23T06:00:00Z", NOW) == datetime(2026, 11, 23, 6, tzinfo=UTC)

    @pytest.mark.parametrize("text", ["2026-11-23T06:00:00", "tomorrow", "8x", ""])
    def test_rejected(self, text: str) -> None:
        """A naive time or an unreadable value is a usage error."""
        with pytest.raises(typer.BadParameter):
            parse_deadline(text, NOW)


class TestMoney:
    def test_exact(self) -> None:
        """Amounts stay exact decimals ($ allowed)."""
        assert parse_money("$0.10") == Decimal("0.10")

    @pytest.mark.parametrize("text", ["-1", "abc", "NaN", "inf"])
    def test_rejected(self, text: str) -> None:
        """Negative, non-numeric and non-finite amounts are usage errors."""
        with pytest.raises(typer.BadParameter):
            parse_money(text)


class TestDefaultBatchId:
    def test_file_stem_and_time(self) -> None:
        """FILE-TIME, usable as an id even for odd file names."""
        batch = default_batch_id(Path("/data/nightly jobs!.jsonl"), NOW)
        assert batch == "nightly-jobs-20261122T213000Z"
        long = default_batch_id(Path("x" * 300 + ".jsonl"), NOW)
        assert re.fullmatch(JOB_ID_PATTERN, long)
        assert len(long) <= 128


class TestBatchProgress:
    def test_counts_and_exact_spend(self) -> None:
        """Succeeded and failed results are counted; spend is the exact sum of their costs."""
        timings = Timings(created_at=NOW, started_at=NOW, finished_at=NOW, queue_ms=0, run_ms=0)
        progress = BatchProgress(total=3)
        progress.count(
            Result(
                job_id="a",
                tenant="t",
                status="succeeded",
                output="x",
                cost_usd=Decimal("0.1"),
                timings=timings,
            )
        )
        progress.count(
            Result(
                job_id="b",
                tenant="t",
                status="succeeded",
                output="x",
                cost_usd=Decimal("0.2"),
                timings=timings,
            )
        )
        progress.count(
            Result(
                job_id="c",
                tenant="t",
                status="failed",
                error=ErrorInfo(type="expired", message="late"),
                timings=timings,
            )
        )
        assert (progress.succeeded, progress.failed, progress.done) == (2, 1, 3)
        assert progress.spend == Decimal("0.3")
        assert progress.failures == {"expired": 1}
