"""Topic admin: which topics qroute needs, creating them idempotently, and the `qroute topics` CLI."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qroute.cli import app
from qroute.config import Settings, TopicSettings
from qroute.kafka import make_admin
from qroute.worker.topics import (
    MissingTopicsError,
    TopicSpec,
    create_topics,
    ensure_topics,
    list_topics,
    missing_topics,
    required_topics,
)


def fresh_settings(base: Settings, **topic_fields: object) -> Settings:
    """`base` with topic names nobody has created yet."""
    prefix = f"f{uuid.uuid4().hex[:12]}."
    defaults = TopicSettings()
    names = {
        "jobs": prefix + defaults.jobs,
        "results": prefix + defaults.results,
        "costs": prefix + defaults.costs,
        "dlq": prefix + defaults.dlq,
        "delay_prefix": prefix + defaults.delay_prefix,
    }
    topics = TopicSettings.model_validate({**names, **topic_fields})
    return base.model_copy(update={"topics": topics})


class TestRequiredTopics:
    def test_lists_every_topic_in_order(self) -> None:
        """Jobs, results, costs, DLQ, then one delay topic per tier, each with the configured sizing."""
        settings = Settings(topics=TopicSettings(delay_tiers_s=[5, 60], partitions=3, replication_factor=2))
        assert required_topics(settings) == [
            TopicSpec("qroute.jobs", 3, 2),
            TopicSpec("qroute.results", 3, 2),
            TopicSpec("qroute.costs", 3, 2),
            TopicSpec("qroute.dlq", 3, 2),
            TopicSpec("qroute.jobs.delay.5s", 3, 2),
            TopicSpec("qroute.jobs.delay.60s", 3, 2),
        ]

    def test_a_topic_named_twice_is_listed_once(self) -> None:
        """Settings that reuse a name (costs on the results topic) do not ask for it twice."""
        settings = Settings(topics=TopicSettings(costs="qroute.results"))
        names = [spec.name for spec in required_topics(settings)]
        assert names.count("qroute.results") == 1

    def test_missing_topics_error_says_how_to_fix(self) -> None:
        """The error names the topics and both ways out."""
        message = str(MissingTopicsError(["a.jobs", "a.dlq"]))
        assert "a.jobs, a.dlq" in message
        assert "qroute topics create" in message
        assert "topics.create_missing = true" in message


class TestCreateTopics:
    async def test_creates_all_then_nothing(self, kafka_settings: Settings) -> None:
        """A first call creates every required topic with its partitions; a second creates none."""
        settings = fresh_settings(kafka_settings, partitions=3)
        wanted = [spec.name for spec in required_topics(settings)]
        assert await missing_topics(settings) == wanted

        assert await create_topics(settings) == wanted
        assert await create_topics(settings) == []
        assert await missing_topics(settings) == []

        admin = make_admin(settings.kafka)
        await admin.start()
        try:
            described = await admin.describe_topics([settings.topics.jobs])
        finally:
            await admin.close()
        assert len(described[0]["partitions"]) == 3

    async def test_keeps_existing_topics(self, kafka_settings: Settings) -> None:
        """Only the topics that are missing are created and reported."""
        settings = fresh_settings(kafka_settings)
        first = Settings(
            topics=settings.topics.model_copy(update={"delay_tiers_s": [5]}), kafka=settings.kafka
        )
        created_first = await create_topics(first)
        assert settings.topics.jobs in created_first

        created = await create_topics(settings)
        assert created == [settings.topics.delay_topic(30), settings.topics.delay_topic(300)]

    async def test_concurrent_creators_do_not_fail(self, kafka_settings: Settings) -> None:
        """Two workers starting together both succeed; each topic is created exactly once."""
        settings = fresh_settings(kafka_settings)
        first, second = await asyncio.gather(create_topics(settings), create_topics(settings))
        assert sorted(first + second) == sorted(spec.name for spec in required_topics(settings))
        assert await missing_topics(settings) == []


class TestEnsureTopics:
    async def test_raises_when_not_allowed_to_create(self, kafka_settings: Settings) -> None:
        """Without create_missing, missing topics are an error that names them, and nothing is created."""
        settings = fresh_settings(kafka_settings)
        with pytest.raises(MissingTopicsError) as caught:
            await ensure_topics(settings)
        assert caught.value.topics == [spec.name for spec in required_topics(settings)]
        assert settings.topics.jobs not in await list_topics(settings)

    async def test_creates_when_allowed(self, kafka_settings: Settings) -> None:
        """With create_missing, the topics are created and no error is raised."""
        settings = fresh_settings(kafka_settings, create_missing=True)
        await ensure_topics(settings)
        assert await missing_topics(settings) == []


class TestUniqueTopicsFixture:
    async def test_topics_exist_and_are_private(self, unique_settings: Settings, unique_group: str) -> None:
        """The fixture's topics exist, differ from the defaults, and the worker group is the test's own."""
        assert await missing_topics(unique_settings) == []
        assert unique_settings.topics.jobs != TopicSettings().jobs
        assert unique_settings.topics.results.startswith(unique_settings.topics.reply_prefixes[0])
        assert unique_settings.worker.group_id == unique_group


class TestTopicsCommand:
    @staticmethod
    def write_config(path: Path, settings: Settings) -> Path:
        topics = settings.topics
        path.write_text(
            "[topics]\n"
            f'jobs = "{topics.jobs}"\nresults = "{topics.results}"\ncosts = "{topics.costs}"\n'
            f'dlq = "{topics.dlq}"\ndelay_prefix = "{topics.delay_prefix}"\ndelay_tiers_s = [7]\n'
            "partitions = 2\n"
        )
        return path

    @staticmethod
    async def invoke(*args: str) -> tuple[int, str]:
        # In a thread: the command calls asyncio.run, which cannot nest in the test's loop.
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
        return result.exit_code, result.output

    async def test_create_then_check(self, kafka_settings: Settings, tmp_path: Path) -> None:
        """`topics check` fails before `topics create`, passes after; a second create creates nothing."""
        settings = fresh_settings(kafka_settings)
        config = str(self.write_config(tmp_path / "qroute.toml", settings))
        bootstrap = kafka_settings.kafka.bootstrap_servers
        assert bootstrap is not None

        code, output = await self.invoke("topics", "check", "--config", config, "--bootstrap", bootstrap)
        assert code == 1
        assert f"missing  {settings.topics.jobs}" in output

        code, output = await self.invoke("topics", "create", "--config", config, "--bootstrap", bootstrap)
        assert code == 0, output
        assert f"created  {settings.topics.delay_prefix}.7s (partitions=2, rf=1)" in output

        code, output = await self.invoke("topics", "create", "--config", config, "--bootstrap", bootstrap)
        assert code == 0, output
        assert "created" not in output
        assert output.count("exists") == 5

        code, output = await self.invoke("topics", "check", "--config", config, "--bootstrap", bootstrap)
        assert code == 0, output

    async def test_no_broker_configured_is_a_clear_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a bootstrap address the command exits 1 and says how to configure one."""
        monkeypatch.delenv("QROUTE_KAFKA__BOOTSTRAP_SERVERS", raising=False)
        config = tmp_path / "qroute.toml"
        config.write_text("")
        code, output = await self.invoke("topics", "create", "--config", str(config))
        assert code == 1
        assert "No Kafka broker configured" in output

    async def test_invalid_config_is_a_clear_error(self, tmp_path: Path) -> None:
        """A config the loader rejects exits 1 with the loader's explanation, not a traceback."""
        config = tmp_path / "qroute.toml"
        config.write_text("[topics]\npartitions = 0\n")
        code, output = await self.invoke(
            "topics", "check", "--config", str(config), "--bootstrap", "127.0.0.1:1"
        )
        assert code == 1
        assert "topics.partitions" in output
        assert "Traceback" not in output
