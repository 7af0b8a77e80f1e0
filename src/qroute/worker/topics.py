"""The topics qroute needs, and creating or checking them on the broker.

Topics are created explicitly (`qroute topics create`, or `topics.create_missing = true`)
because brokers that auto-create topics pick their own partition count: Tansu answers a
metadata request for an unknown topic by creating it with 4 partitions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from qroute.config import Settings
from qroute.kafka import make_admin

_TOPIC_ALREADY_EXISTS = 36
_VISIBLE_TIMEOUT_S = 10.0
_VISIBLE_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as `qroute topics create` makes it."""

    name: str
    partitions: int
    replication_factor: int


class MissingTopicsError(RuntimeError):
    """Topics qroute needs do not exist and it was not allowed to create them."""

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        super().__init__(
            f"Missing Kafka topics: {', '.join(self.topics)}. "
            "Run `qroute topics create`, or set `topics.create_missing = true` to let the worker create them."
        )


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic for a reason other than it already existing."""


def required_topics(settings: Settings) -> list[TopicSpec]:
    """Jobs, results, costs, dead letters and one delay topic per tier, in that order."""
    topics = settings.topics
    names = [topics.jobs, topics.results, topics.costs, topics.dlq]
    names += [topics.delay_topic(tier) for tier in topics.delay_tiers_s]
    unique = list(dict.fromkeys(names))  # two settings may name the same topic
    return [TopicSpec(name, topics.partitions, topics.replication_factor) for name in unique]


async def list_topics(settings: Settings) -> set[str]:
    """Names of the topics on the broker (a metadata request for all topics creates none)."""
    admin = make_admin(settings.kafka)
    try:
        await admin.start()
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def missing_topics(settings: Settings) -> list[str]:
    """Required topics the broker does not have, in `required_topics` order."""
    existing = await list_topics(settings)
    return [spec.name for spec in required_topics(settings) if spec.name not in existing]


async def create_topics(settings: Settings) -> list[str]:
    """Create the required topics that are missing; returns the names this call created.

    Idempotent and safe to race: a topic created meanwhile by another process counts as
    existing. Returns once the new topics show up in metadata, so producers that start
    next cannot trigger a broker's auto-creation with the wrong partition count.
    """
    admin = make_admin(settings.kafka)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [spec for spec in required_topics(settings) if spec.name not in existing]
        if not wanted:
            return []
        response = await admin.create_topics(
            [NewTopic(spec.name, spec.partitions, spec.replication_factor) for spec in wanted]
        )
        created: list[str] = []
        for error in response.to_object()["topic_errors"]:
            code = error["error_code"]
            if code == 0:
                created.append(error["topic"])
            elif code != _TOPIC_ALREADY_EXISTS:
                name = for_code(code).__name__
                raise TopicAdminError(
                    f"Creating topic {error['topic']!r} failed: {name} ({code}) {error['error_message'] or ''}".rstrip()
                )
        await _await_visible(admin, [spec.name for spec in wanted])
        return [spec.name for spec in wanted if spec.name in created]
    finally:
        await admin.close()


async def ensure_topics(settings: Settings) -> list[str]:
    """Start-up check: create missing topics if `topics.create_missing`, else raise MissingTopicsError."""
    if settings.topics.create_missing:
        return await create_topics(settings)
    missing = await missing_topics(settings)
    if missing:
        raise MissingTopicsError(missing)
    return []


async def _await_visible(admin: AIOKafkaAdminClient, names: Sequence[str]) -> None:
    """Wait until metadata lists every name (a controller may answer before brokers know)."""
    deadline = time.monotonic() + _VISIBLE_TIMEOUT_S
    while True:
        listed = set(await admin.list_topics())
        absent = [name for name in names if name not in listed]
        if not absent:
            return
        if time.monotonic() >= deadline:
            raise TopicAdminError(f"Created topics not visible after {_VISIBLE_TIMEOUT_S:g}s: {absent}")
        await asyncio.sleep(_VISIBLE_POLL_S)
