"""Admission: what becomes a job, a dead letter, or a refused reply."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import Decimal

from qroute.catalog.types import Catalog, ModelSpec, ProviderSpec
from qroute.codec import encode
from qroute.models import DeadLetter, Job, Message
from qroute.worker.headers import SourceRef
from qroute.worker.intake import admit, known_models, refused_reply, reply_topic

SOURCE = SourceRef("qroute.jobs", 1, 42)
PREFIXES = ["qroute.results"]


def _job(**fields: object) -> Job:
    return Job.model_validate({"id": "j-1", "messages": [{"role": "user", "content": "hi"}], **fields})


def _admit(raw: bytes | None, known: frozenset[str] | None = None) -> Job | DeadLetter:
    known_model = None if known is None else known.__contains__
    return admit(raw, SOURCE, max_bytes=4096, known_model=known_model)


class TestAdmit:
    """Valid jobs pass; everything else is a dead letter carrying the original bytes."""

    def test_valid_job(self) -> None:
        """A valid job decodes into a Job."""
        admitted = _admit(encode(_job()))
        assert isinstance(admitted, Job)
        assert admitted.id == "j-1"

    def test_decode_failure_becomes_dead_letter(self) -> None:
        """Invalid JSON is dead-lettered with reason, source coordinates and base64 payload."""
        raw = b"{nope"
        letter = _admit(raw)
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "invalid_json"
        assert base64.b64decode(letter.payload_b64) == raw
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("qroute.jobs", 1, 42)

    def test_schema_violation_keeps_job_id(self) -> None:
        """A schema violation names the field and keeps the job id when one was readable."""
        letter = _admit(json.dumps({"id": "j-9", "messages": []}).encode())
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "schema_violation"
        assert letter.job_id == "j-9"
        assert "messages" in letter.message

    def test_null_value(self) -> None:
        """A tombstone (null value) is undecodable, with an empty payload."""
        letter = _admit(None)
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "undecodable"
        assert letter.payload_b64 == ""

    def test_oversize(self) -> None:
        """A record above max_bytes is dead-lettered as oversize."""
        letter = _admit(encode(_job(metadata={"pad": "x" * 5000})))
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "oversize"

    def test_unknown_model(self) -> None:
        """Names missing from the catalog are listed in an unknown_model letter."""
        raw = encode(_job(constraints={"allowed_models": ["gpt-4o-mini", "openai/gpt-5-mega"]}))
        letter = _admit(raw, known=frozenset({"gpt-4o-mini"}))
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "unknown_model"
        assert letter.job_id == "j-1"
        assert "openai/gpt-5-mega" in letter.message
        assert "gpt-4o-mini," not in letter.message

    def test_known_models_pass(self) -> None:
        """Model names and route ids the catalog knows are accepted."""
        raw = encode(_job(constraints={"allowed_models": ["gpt-4o-mini", "openai/gpt-4o-mini"]}))
        assert isinstance(_admit(raw, known=frozenset({"gpt-4o-mini", "openai/gpt-4o-mini"})), Job)

    def test_no_catalog_check_without_known_model(self) -> None:
        """Without a known_model check any model name is accepted."""
        raw = encode(_job(constraints={"allowed_models": ["anything"]}))
        assert isinstance(_admit(raw), Job)


class TestReplyTopic:
    """reply_to is used only under an allowed prefix."""

    def test_default_when_unset(self) -> None:
        """No reply_to: the default results topic."""
        assert reply_topic(_job(), allowed_prefixes=PREFIXES, default="qroute.results") == "qroute.results"

    def test_allowed_prefix(self) -> None:
        """A reply_to under an allowed prefix is used as is."""
        job = _job(reply_to="qroute.results.billing")
        assert (
            reply_topic(job, allowed_prefixes=PREFIXES, default="qroute.results") == "qroute.results.billing"
        )

    def test_disallowed(self) -> None:
        """Any other reply_to is refused (None)."""
        job = _job(reply_to="payments.ledger")
        assert reply_topic(job, allowed_prefixes=PREFIXES, default="qroute.results") is None

    def test_refusal_is_failed_result_with_zero_cost(self) -> None:
        """The refusal is a failed result with reply_topic_not_allowed and a zero-attempt cost record."""
        job = Job(
            id="j-2", messages=[Message(role="user", content="x")], reply_to="evil", metadata={"a": "b"}
        )
        refusal = refused_reply(job, allowed_prefixes=PREFIXES, price_source="catalog", price_version="7")
        assert refusal.result.status == "failed"
        assert refusal.result.error is not None
        assert refusal.result.error.type == "reply_topic_not_allowed"
        assert "evil" in refusal.result.error.message
        assert refusal.result.metadata == {"a": "b"}
        assert refusal.cost.attempts == []
        assert refusal.cost.total_cost_usd == 0
        assert refusal.cost.price_version == "7"


class TestKnownModels:
    """known_models accepts a catalog's model names and route ids, nothing else."""

    def test_names_and_route_ids(self) -> None:
        """Both `model` and `provider/model` forms are known; other names are not."""
        provider = ProviderSpec(name="openai", family="openai", base_url="https://api.openai.com/v1")
        model = ModelSpec(
            provider="openai",
            model="gpt-4o-mini",
            tier=1,
            input_per_m=Decimal("0.15"),
            output_per_m=Decimal("0.60"),
            context_window=128_000,
            max_output_tokens=16_384,
            price_source="test",
            price_date=date(2026, 1, 1),
        )
        known = known_models(
            Catalog(version="1", source="test", providers={"openai": provider}, models=(model,))
        )
        assert known("gpt-4o-mini")
        assert known("openai/gpt-4o-mini")
        assert not known("anthropic/gpt-4o-mini")
        assert not known("gpt-5")
