"""aiokafka client factories: every qroute process applies `KafkaSettings` here, in one place.

Clients are built, not started: the caller owns `start()` / `stop()` (or `close()` for admin)
and must call the factories inside a running event loop (aiokafka binds to it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from qroute.config import KafkaSettings


class KafkaConfigError(ValueError):
    """The Kafka settings cannot produce a working client (no bootstrap, missing secret...)."""


def bootstrap_servers(kafka: KafkaSettings) -> str:
    """The configured bootstrap list, or a clear error saying how to set one."""
    if not kafka.bootstrap_servers:
        raise KafkaConfigError(
            "No Kafka broker configured: set kafka.bootstrap_servers in qroute.toml, "
            "QROUTE_KAFKA__BOOTSTRAP_SERVERS, or pass --bootstrap (`qroute broker` runs a local one)."
        )
    return kafka.bootstrap_servers


def connection_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by producer, consumer and admin: address, timeouts, security."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(kafka),
        "client_id": kafka.client_id,
        "request_timeout_ms": kafka.request_timeout_ms,
        "security_protocol": kafka.security_protocol,
    }
    if "SSL" in kafka.security_protocol.upper():
        kwargs["ssl_context"] = create_ssl_context()
    if kafka.sasl_mechanism:
        kwargs["sasl_mechanism"] = kafka.sasl_mechanism
        kwargs["sasl_plain_username"] = kafka.sasl_username
        kwargs["sasl_plain_password"] = _sasl_password(kafka)
    return kwargs


def _sasl_password(kafka: KafkaSettings) -> str | None:
    """Read the SASL password from the variable the settings name; the secret never sits in config."""
    if kafka.sasl_password_env is None:
        return None
    password = os.environ.get(kafka.sasl_password_env)
    if password is None:
        raise KafkaConfigError(f"kafka.sasl_password_env names ${kafka.sasl_password_env}, which is not set.")
    return password


def make_consumer(
    kafka: KafkaSettings, group_id: str | None, topics: Sequence[str] = (), **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that never commits by itself and starts a new group from the earliest record.

    Auto-commit is off because qroute commits only offsets whose results are published.
    """
    kwargs: dict[str, Any] = {
        **connection_kwargs(kafka),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "max_poll_interval_ms": kafka.max_poll_interval_ms,
    }
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **kwargs)


def make_producer(kafka: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas.

    Idempotence stays off: aiokafka only speaks InitProducerId v0, which Tansu (the embedded
    broker) answers with UnknownError; duplicates are handled by job id downstream anyway.
    """
    kwargs: dict[str, Any] = {
        **connection_kwargs(kafka),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": kafka.linger_ms,
        "max_batch_size": kafka.max_batch_size,
        "max_request_size": kafka.max_request_size,
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def make_admin(kafka: KafkaSettings, **overrides: Any) -> AIOKafkaAdminClient:
    """An admin client with the same address, timeouts and security as the other clients."""
    kwargs: dict[str, Any] = {**connection_kwargs(kafka), **overrides}
    return AIOKafkaAdminClient(**kwargs)
