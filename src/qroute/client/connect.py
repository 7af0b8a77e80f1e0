"""The client's FastStream Kafka broker, built from qroute's `KafkaSettings`.

Publishing goes through FastStream (`KafkaBroker` + a declared publisher) so the
AsyncAPI document (`qroute.client.spec`) describes exactly what the client sends.
Connection, security and timeouts come from the same settings as every other
qroute client; `qroute.kafka.connection_kwargs` does the validation (missing
bootstrap, unset password variable) and this module only translates.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from qroute.config import KafkaSettings
from qroute.kafka import KafkaConfigError, connection_kwargs
from qroute.models import Job

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}

JOBS_DESCRIPTION = (
    "Completion jobs (qroute Job, JSON). Key: the job id. Headers: content-type, "
    "qroute-schema=job, qroute-schema-version."
)


def broker_security(kafka: KafkaSettings) -> BaseSecurity | None:
    """FastStream's security object for the settings' protocol and SASL mechanism."""
    kwargs = connection_kwargs(kafka)
    use_ssl = "SSL" in kafka.security_protocol.upper()
    mechanism = kwargs.get("sasl_mechanism")
    if mechanism is None:
        return BaseSecurity(ssl_context=kwargs.get("ssl_context"), use_ssl=True) if use_ssl else None
    security = _SASL.get(str(mechanism).upper())
    if security is None:
        raise KafkaConfigError(f"kafka.sasl_mechanism {mechanism!r} is not one of {', '.join(_SASL)}")
    username, password = kwargs.get("sasl_plain_username"), kwargs.get("sasl_plain_password")
    if not username or password is None:
        raise KafkaConfigError("SASL needs kafka.sasl_username and kafka.sasl_password_env")
    return security(username, password, ssl_context=kwargs.get("ssl_context"), use_ssl=use_ssl)


def make_broker(kafka: KafkaSettings, *, description: str = "qroute producer client") -> KafkaBroker:
    """An unconnected broker whose producer waits for all in-sync replicas (acks=all).

    Idempotence stays off for the reason given in `qroute.kafka.make_producer` (the
    embedded broker rejects aiokafka's InitProducerId v0); consumers dedupe by job id.
    Topic auto-creation is off: topics are made by `qroute topics create`, with the
    partition counts the deployment chose. FastStream's own logging is off: the client
    is a library inside someone else's process.
    """
    kwargs = connection_kwargs(kafka)
    return KafkaBroker(
        kwargs["bootstrap_servers"],
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
        acks="all",
        enable_idempotence=False,
        linger_ms=kafka.linger_ms,
        max_batch_size=kafka.max_batch_size,
        max_request_size=kafka.max_request_size,
        allow_auto_create_topics=False,
        security=broker_security(kafka),
        logger=None,
        description=description,
    )


def jobs_publisher(broker: KafkaBroker, topic: str) -> DefaultPublisher:
    """The declared publisher of `Job` records to the jobs topic."""
    publisher = broker.publisher(topic, title=f"{topic}:publish", description=JOBS_DESCRIPTION, schema=Job)
    assert isinstance(publisher, DefaultPublisher)
    return publisher
