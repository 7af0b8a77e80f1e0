"""Shared fixtures: one Kafka-compatible broker per test session, and per-test topics on it.

The broker is, in order: the one named by `QROUTE_TEST_BOOTSTRAP`; a Kafka container
(testcontainers) when a Docker engine answers; the embedded Tansu broker.
`QROUTE_TEST_BROKER=embedded|container` forces one of the last two. Broker-backed tests are
never skipped: when no broker can be had they fail, and a skip inside one is reported as a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import Literal, NoReturn
from urllib.parse import urlsplit

import pytest
from aiokafka.errors import KafkaError
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from qroute.config import KafkaSettings, Settings, TopicSettings, WorkerSettings
from qroute.embedded import BrokerBinaryNotFoundError, BrokerStartError, EmbeddedBroker
from qroute.kafka import make_admin
from qroute.worker.topics import create_topics, required_topics

BOOTSTRAP_ENV = "QROUTE_TEST_BOOTSTRAP"
BROKER_ENV = "QROUTE_TEST_BROKER"
SESSION_TIMEOUT_ENV = "QROUTE_TEST_SESSION_TIMEOUT_MS"

# Shared 2-core machines: generation speed and per-example time depend on what else runs,
# so neither may fail a test; the properties themselves are still checked on every example.
hypothesis_settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("shared-machine")
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
# Tansu holds every JoinGroup for session_timeout/2, so short sessions make group tests fast.
# Real Kafka refuses sessions under group.min.session.timeout.ms (6000 by default): the container
# below lowers that floor; for an external broker set QROUTE_TEST_SESSION_TIMEOUT_MS.
TEST_SESSION_TIMEOUT_MS = 1500
TEST_HEARTBEAT_INTERVAL_MS = 500
# Using any of these makes a test broker-backed; it is marked `broker` automatically.
BROKER_FIXTURES = frozenset(
    {"kafka_broker", "kafka_bootstrap", "kafka_settings", "unique_settings", "unique_topics"}
)


def _fail_no_broker(reason: str) -> NoReturn:
    pytest.fail(
        f"No Kafka broker for broker-backed tests: {reason}. Set {BOOTSTRAP_ENV}=host:port, "
        "start Docker, or install the embedded broker with `pip install 'qroute[embedded]'`.",
        pytrace=False,
    )


def _docker_endpoint_accepts() -> bool | None:
    """Whether DOCKER_HOST (or the default socket) accepts a connection; None if it cannot tell.

    Probed with a plain socket first because docker-py leaks its socket when the connection
    fails, and the ResourceWarning that follows would fail a random test under `-W error`.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    url = urlsplit(host)
    try:
        if url.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(2)
                probe.connect(url.path)
            return True
        if url.scheme == "tcp" and url.hostname:
            with socket.create_connection((url.hostname, url.port or 2375), timeout=2):
                return True
    except OSError:
        return False
    return None  # ssh://, npipe://: let docker-py decide


def _docker_engine_answers() -> bool:
    """A cheap check (milliseconds) before testcontainers, whose constructor raises without Docker."""
    if _docker_endpoint_accepts() is False:
        return False
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=2)
    except DockerException:
        return False
    try:
        client.ping()
    except DockerException:
        return False
    finally:
        client.close()
    return True


def _container_bootstrap() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    container = (
        KafkaContainer(KAFKA_IMAGE)
        .with_kraft()
        .with_env("KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS", "500")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    try:
        container.start()
    except Exception as exc:  # any failure to get a container is a test-setup failure, reported loudly
        _fail_no_broker(f"the Kafka container did not start ({type(exc).__name__}: {exc})")
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()


def _embedded_bootstrap() -> Iterator[str]:
    broker = EmbeddedBroker()
    try:
        broker.start()
    except (BrokerBinaryNotFoundError, BrokerStartError) as exc:
        _fail_no_broker(str(exc))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


BrokerKind = Literal["external", "container", "embedded"]


@dataclass(frozen=True)
class TestBroker:
    """The session's broker: where it is, and what it is (Tansu differs from Kafka in places)."""

    __test__ = False  # not a test class, despite the name

    bootstrap: str
    kind: BrokerKind


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TestBroker]:
    """The session's broker; started once, never restarted mid-run (clients do not survive a restart)."""
    configured = os.environ.get(BOOTSTRAP_ENV)
    if configured:
        yield TestBroker(configured, "external")
        return
    choice = os.environ.get(BROKER_ENV, "auto")
    if choice not in {"auto", "container", "embedded"}:
        _fail_no_broker(f"{BROKER_ENV}={choice!r} is not one of auto, container, embedded")
    if choice == "container" or (choice == "auto" and _docker_engine_answers()):
        for bootstrap in _container_bootstrap():
            yield TestBroker(bootstrap, "container")
    else:
        for bootstrap in _embedded_bootstrap():
            yield TestBroker(bootstrap, "embedded")


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: TestBroker) -> str:
    """`host:port` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings pointing at the test broker, with fast group timings and no metrics port.

    Shared by the whole session: copy it (`model_copy`) rather than changing it.
    """
    session_ms = int(os.environ.get(SESSION_TIMEOUT_ENV, TEST_SESSION_TIMEOUT_MS))
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(50, min(TEST_HEARTBEAT_INTERVAL_MS, session_ms // 3)),
        ),
        worker=WorkerSettings(metrics_port=0),
    )


@pytest.fixture
def unique_group() -> str:
    """A consumer group id no other test uses."""
    return f"qroute-test-{uuid.uuid4().hex[:12]}"


def _suffixed(topics: TopicSettings, suffix: str) -> TopicSettings:
    """Every topic name (and reply prefix) with `suffix` appended, so tests never share a topic."""
    return topics.model_copy(
        update={
            "jobs": topics.jobs + suffix,
            "results": topics.results + suffix,
            "costs": topics.costs + suffix,
            "dlq": topics.dlq + suffix,
            "delay_prefix": topics.delay_prefix + suffix,
            "reply_prefixes": [reply + suffix for reply in topics.reply_prefixes],
        }
    )


@pytest.fixture
async def unique_settings(kafka_settings: Settings, unique_group: str) -> AsyncIterator[Settings]:
    """A copy of `kafka_settings` whose topics and worker group are this test's own, topics created.

    Topics are deleted afterwards so a long session does not grow the broker's memory.
    """
    suffix = f".t{uuid.uuid4().hex[:12]}"
    settings = kafka_settings.model_copy(
        update={
            "topics": _suffixed(kafka_settings.topics, suffix),
            "worker": kafka_settings.worker.model_copy(update={"group_id": unique_group}),
        }
    )
    await create_topics(settings)
    yield settings
    admin = make_admin(settings.kafka)
    with contextlib.suppress(KafkaError):  # clean-up only: a failure here must not mask the test result
        await admin.start()
        await admin.delete_topics([spec.name for spec in required_topics(settings)])
    await admin.close()


@pytest.fixture
def unique_topics(unique_settings: Settings) -> TopicSettings:
    """This test's topic names (already created); the same object as `unique_settings.topics`."""
    return unique_settings.topics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a broker fixture as `broker`, so `-m "not broker"` is exact."""
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A skipped broker test is a failure: in CI a silent skip would hide that Kafka was never tested."""
    report = yield
    if report.skipped and item.get_closest_marker("broker") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"broker-backed test was skipped, which is not allowed: {report.longrepr}"
    return report
