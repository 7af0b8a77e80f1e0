"""aiokafka factories: settings are applied in one place, secrets come from the environment."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

import qroute.kafka as kafka_module
from qroute.config import KafkaSettings
from qroute.kafka import KafkaConfigError, connection_kwargs, make_admin, make_consumer, make_producer

BOOTSTRAP = "127.0.0.1:1"


class Recorder:
    """Stands in for an aiokafka client class: records how the factory built it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


@pytest.fixture(autouse=True)
def record_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"):
        monkeypatch.setattr(kafka_module, name, Recorder)


class TestConnectionKwargs:
    def test_plaintext(self) -> None:
        """Address, client id and timeout come from the settings; no security keys by default."""
        kwargs = connection_kwargs(KafkaSettings(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000))
        assert kwargs == {
            "bootstrap_servers": BOOTSTRAP,
            "client_id": "qroute",
            "request_timeout_ms": 5000,
            "security_protocol": "PLAINTEXT",
        }

    def test_no_bootstrap_is_a_clear_error(self) -> None:
        """Without an address the error says where to set one."""
        with pytest.raises(KafkaConfigError, match="bootstrap_servers"):
            connection_kwargs(KafkaSettings())

    def test_sasl_password_comes_from_the_named_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SASL credentials are passed through; the password is read from the variable the settings name."""
        monkeypatch.setenv("MY_KAFKA_PASSWORD", "s3cret")
        kafka = KafkaSettings(
            bootstrap_servers=BOOTSTRAP,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="svc",
            sasl_password_env="MY_KAFKA_PASSWORD",
        )
        kwargs = connection_kwargs(kafka)
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "svc"
        assert kwargs["sasl_plain_password"] == "s3cret"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)

    def test_unset_password_variable_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A named but unset password variable fails at build time, naming the variable."""
        monkeypatch.delenv("MISSING_PASSWORD", raising=False)
        kafka = KafkaSettings(
            bootstrap_servers=BOOTSTRAP, sasl_mechanism="PLAIN", sasl_password_env="MISSING_PASSWORD"
        )
        with pytest.raises(KafkaConfigError, match="MISSING_PASSWORD"):
            connection_kwargs(kafka)


class TestFactories:
    def test_consumer_commits_only_explicitly(self) -> None:
        """Consumers subscribe to the topics, start at the earliest record, never auto-commit, use session timings."""
        kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, session_timeout_ms=1500, heartbeat_interval_ms=500)
        consumer: Any = make_consumer(kafka, "g", ["a", "b"])
        assert consumer.args == ("a", "b")
        assert consumer.kwargs == {
            **connection_kwargs(kafka),
            "group_id": "g",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 1500,
            "heartbeat_interval_ms": 500,
            "max_poll_interval_ms": kafka.max_poll_interval_ms,
        }

    def test_producer_waits_for_all_replicas_without_idempotence(self) -> None:
        """acks=all, idempotence off (Tansu rejects aiokafka's InitProducerId v0), sizes from settings."""
        kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, max_request_size=8 * 1024 * 1024, linger_ms=7)
        kafka = kafka.model_copy(update={"max_batch_size": 64 * 1024})
        producer: Any = make_producer(kafka)
        assert producer.kwargs["acks"] == "all"
        assert producer.kwargs["enable_idempotence"] is False
        assert producer.kwargs["max_request_size"] == 8 * 1024 * 1024
        assert producer.kwargs["linger_ms"] == 7
        assert producer.kwargs["max_batch_size"] == 64 * 1024
        assert producer.kwargs["bootstrap_servers"] == BOOTSTRAP

    def test_overrides_win(self) -> None:
        """Keyword overrides replace what the factory chose."""
        kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP)
        consumer: Any = make_consumer(kafka, None, auto_offset_reset="latest", client_id="x")
        assert consumer.kwargs["auto_offset_reset"] == "latest"
        assert consumer.kwargs["client_id"] == "x"
        producer: Any = make_producer(kafka, acks=1)
        assert producer.kwargs["acks"] == 1

    def test_admin_uses_the_same_connection(self) -> None:
        """The admin client gets exactly the shared connection settings."""
        kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, client_id="ops")
        admin: Any = make_admin(kafka)
        assert admin.kwargs == connection_kwargs(kafka)
