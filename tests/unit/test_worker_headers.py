"""Record headers: contract headers and the delay headers a parked job carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from qroute.models import Attempt
from qroute.worker import headers
from qroute.worker.headers import SourceRef


def _attempt() -> Attempt:
    return Attempt(
        n=1,
        provider="openai",
        model="gpt-4o-mini",
        outcome="rate_limited",
        action="retry",
        status_code=429,
        billed=False,
        cost_usd=Decimal("0"),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_ms=12.5,
    )


SOURCE = SourceRef("qroute.jobs", 3, 1234)


class TestContractHeaders:
    """Published contracts name their schema and pass the trace context through."""

    def test_schema_headers(self) -> None:
        """content-type, schema name and version are always present."""
        found = dict(headers.contract_headers("result", None))
        assert found == {
            "content-type": b"application/json",
            "qroute-schema": b"result",
            "qroute-schema-version": b"1",
        }

    def test_traceparent_passed_through(self) -> None:
        """A traceparent from the job record is copied unchanged."""
        found = dict(headers.contract_headers("cost_record", b"00-abc-def-01"))
        assert found["traceparent"] == b"00-abc-def-01"

    def test_get_returns_last_value(self) -> None:
        """When a header repeats, the last value wins; a missing one is None."""
        pairs = [("a", b"1"), ("a", b"2")]
        assert headers.get(pairs, "a") == b"2"
        assert headers.get(pairs, "b") is None
        assert headers.get(None, "a") is None


class TestDelayHeaders:
    """Delay headers survive a round trip; broken ones degrade instead of raising."""

    def test_round_trip(self) -> None:
        """not-before, attempts, crash count, source and traceparent come back as written."""
        written = headers.delay_headers(
            not_before=1_800_000_000.25, attempts=[_attempt()], source=SOURCE, crashes=1, traceparent=b"tp"
        )
        info = headers.read_delay_info(written)
        assert info.not_before == 1_800_000_000.25
        assert info.attempts == (_attempt(),)
        assert info.crashes == 1
        assert info.source == SOURCE
        assert info.problem is None
        assert headers.get(written, "traceparent") == b"tp"

    def test_not_before_is_epoch_ms_ascii(self) -> None:
        """qroute-not-before is epoch milliseconds as ASCII digits."""
        written = dict(
            headers.delay_headers(not_before=12.345, attempts=[], source=SOURCE, crashes=0, traceparent=None)
        )
        assert written["qroute-not-before"] == b"12345"
        assert json.loads(written["qroute-attempts"]) == []
        assert "qroute-crashes" not in written

    def test_no_headers_means_due_now(self) -> None:
        """A record without delay headers is due at once with an empty history."""
        info = headers.read_delay_info([])
        assert info.not_before is None
        assert info.attempts == ()
        assert info.source is None
        assert info.problem is None

    def test_broken_headers_reported_not_raised(self) -> None:
        """Unparseable not-before and attempts are named in `problem` and left out."""
        info = headers.read_delay_info([("qroute-not-before", b"soon"), ("qroute-attempts", b"[{}]")])
        assert info.not_before is None
        assert info.attempts == ()
        assert info.problem is not None
        assert "qroute-not-before" in info.problem
        assert "qroute-attempts" in info.problem
