"""What submit() checks before sending, how jobs are encoded, and how settings become a FastStream broker."""

from __future__ import annotations

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512

from qroute.client import JobRejected
from qroute.client.connect import broker_security
from qroute.client.prepare import JOB_HEADERS, prepare
from qroute.client.spec import client_asyncapi
from qroute.config import KafkaSettings, Settings
from qroute.kafka import KafkaConfigError
from qroute.models import Job, Message

JOB = {"id": "j-1", "messages": [{"role": "user", "content": "hello"}]}


class TestPrepare:
    def test_mapping_is_validated_and_encoded(self) -> None:
        """A dict becomes a Job; the record key is the job id."""
        prepared = prepare(JOB, reply_to=None, max_bytes=10_000)
        assert prepared.job.id == "j-1"
        assert prepared.key == b"j-1"
        assert Job.model_validate_json(prepared.value) == prepared.job

    def test_invalid_mapping_is_rejected_with_the_field(self) -> None:
        """JobRejected names the field and keeps structured details."""
        with pytest.raises(JobRejected) as caught:
            prepare({**JOB, "params": {"max_tokens": 0}}, reply_to=None, max_bytes=10_000)
        assert caught.value.job_id == "j-1"
        assert caught.value.message.startswith("params.max_tokens:")
        assert caught.value.details[0]["field"] == "params.max_tokens"

    def test_non_mapping_is_rejected(self) -> None:
        """Anything that is neither a Job nor a mapping is refused with its type."""
        with pytest.raises(JobRejected, match="got list"):
            prepare([1, 2], reply_to=None, max_bytes=10_000)  # type: ignore[arg-type]

    def test_size_cap(self) -> None:
        """A job larger than the workers' cap is refused with its size."""
        with pytest.raises(JobRejected, match=r"job is \d+ bytes, larger than the workers' 100-byte cap"):
            prepare(JOB, reply_to=None, max_bytes=100)

    def test_reply_to_is_filled_only_when_missing(self) -> None:
        """The client's reply topic goes on jobs without a reply_to; an explicit one is kept."""
        assert (
            prepare(JOB, reply_to="qroute.results.svc", max_bytes=10_000).job.reply_to == "qroute.results.svc"
        )
        own = Job(id="j-2", messages=[Message(role="user", content="x")], reply_to="qroute.results.mine")
        assert (
            prepare(own, reply_to="qroute.results.svc", max_bytes=10_000).job.reply_to
            == "qroute.results.mine"
        )

    def test_headers_name_the_schema(self) -> None:
        """Job records carry the same contract headers as the worker's output."""
        assert JOB_HEADERS == {
            "content-type": "application/json",
            "qroute-schema": "job",
            "qroute-schema-version": "1",
        }


class TestBrokerSecurity:
    def test_plaintext_needs_nothing(self) -> None:
        """PLAINTEXT: no security object."""
        assert broker_security(KafkaSettings(bootstrap_servers="k:9092")) is None

    def test_ssl(self) -> None:
        """SSL: a TLS-only security object with a context."""
        security = broker_security(KafkaSettings(bootstrap_servers="k:9092", security_protocol="SSL"))
        assert type(security) is BaseSecurity
        assert security.use_ssl
        assert security.ssl_context is not None

    def test_sasl_mechanisms(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SASL PLAIN and SCRAM map to FastStream's classes; the password comes from the named variable."""
        monkeypatch.setenv("KPASS", "s3cret")
        base = {"bootstrap_servers": "k:9092", "sasl_username": "u", "sasl_password_env": "KPASS"}
        plain = broker_security(
            KafkaSettings(**base, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN")
        )
        assert isinstance(plain, SASLPlaintext)
        assert (plain.username, plain.password, plain.use_ssl) == ("u", "s3cret", False)
        scram = broker_security(
            KafkaSettings(**base, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")
        )
        assert isinstance(scram, SASLScram512)
        assert scram.use_ssl

    def test_unsupported_mechanism(self) -> None:
        """A mechanism FastStream's Kafka broker cannot use is a configuration error."""
        settings = KafkaSettings(
            bootstrap_servers="k:9092",
            sasl_mechanism="GSSAPI",
            sasl_username="u",
            security_protocol="SASL_PLAINTEXT",
        )
        with pytest.raises(KafkaConfigError, match="GSSAPI"):
            broker_security(settings)

    def test_no_bootstrap(self) -> None:
        """Without a broker address the error says how to set one."""
        with pytest.raises(KafkaConfigError, match="No Kafka broker configured"):
            broker_security(KafkaSettings())


class TestAsyncAPI:
    def test_document_covers_jobs_and_results(self) -> None:
        """The client's AsyncAPI document has the jobs channel (Job) and the results channel (Result)."""
        document = client_asyncapi(Settings(kafka=KafkaSettings(bootstrap_servers="k:9092")))
        assert document["asyncapi"] == "3.0.0"
        channels = document["channels"]
        assert channels["qroute.jobs:publish"]["address"] == "qroute.jobs"
        assert channels["qroute.results:subscribe"]["address"] == "qroute.results"
        assert {"Job", "Result"} <= set(document["components"]["schemas"])
        assert document["operations"]["qroute.jobs:publish"]["action"] == "send"
