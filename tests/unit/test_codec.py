"""Decoding jobs: bad input becomes a value with a reason, never an exception."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from qroute.codec import DecodeFailure, decode_job, encode
from qroute.models import Job

VALID = {"id": "job-1", "messages": [{"role": "user", "content": "Summarise this."}]}


class TestDecodeJob:
    def test_valid_job_decodes(self) -> None:
        """A minimal job decodes with defaults filled in."""
        job = decode_job(json.dumps(VALID).encode())
        assert isinstance(job, Job)
        assert job.params.max_tokens == 1024
        assert job.tenant == "default"

    def test_unknown_fields_are_ignored(self) -> None:
        """Fields from a newer producer do not break decoding."""
        job = decode_job(json.dumps({**VALID, "future_field": {"x": 1}}).encode())
        assert isinstance(job, Job)

    @pytest.mark.parametrize(
        ("raw", "reason", "fragment"),
        [
            (None, "undecodable", "null"),
            (b"\xff\xfe\x00", "undecodable", "not UTF-8"),
            (b"{not json", "invalid_json", "invalid JSON"),
            (b"[1, 2]", "schema_violation", "JSON object"),
            (json.dumps({**VALID, "id": "has space"}).encode(), "schema_violation", "id:"),
            (json.dumps({**VALID, "messages": []}).encode(), "schema_violation", "messages:"),
            (
                json.dumps({**VALID, "params": {"max_tokens": 0}}).encode(),
                "schema_violation",
                "params.max_tokens",
            ),
            (
                json.dumps({**VALID, "params": {"temperature": 3}}).encode(),
                "schema_violation",
                "params.temperature",
            ),
        ],
    )
    def test_bad_input_is_classified(self, raw: bytes | None, reason: str, fragment: str) -> None:
        """Each kind of bad input gets its reason and a message naming the problem."""
        failure = decode_job(raw)
        assert isinstance(failure, DecodeFailure)
        assert failure.reason == reason
        assert fragment in failure.message

    def test_oversize_job_is_rejected_before_parsing(self) -> None:
        """The size cap applies to the raw bytes."""
        big = json.dumps({**VALID, "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
        failure = decode_job(big, max_bytes=1000)
        assert isinstance(failure, DecodeFailure)
        assert failure.reason == "oversize"

    def test_money_round_trips_as_string(self) -> None:
        """max_cost_usd is exact and serialised as a string."""
        job = decode_job(json.dumps({**VALID, "constraints": {"max_cost_usd": "0.0001"}}).encode())
        assert isinstance(job, Job)
        assert job.constraints.max_cost_usd == Decimal("0.0001")
        assert json.loads(encode(job))["constraints"]["max_cost_usd"] == "0.0001"

    def test_float_money_is_rejected(self) -> None:
        """A float price would not be exact, so it is refused with a hint."""
        failure = decode_job(json.dumps({**VALID, "constraints": {"max_cost_usd": 0.1}}).encode())
        assert isinstance(failure, DecodeFailure)
        assert "not a float" in failure.message
