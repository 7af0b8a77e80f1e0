"""Topic creation reads the broker's per-topic answers: races are fine, refusals are errors."""

from __future__ import annotations

from typing import Any

import pytest

import qroute.worker.topics as topics_module
from qroute.config import Settings, TopicSettings
from qroute.worker.topics import TopicAdminError, create_topics


class FakeResponse:
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors

    def to_object(self) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "topic_errors": self.errors}


class FakeAdmin:
    """Answers create_topics with fixed error codes per topic; records whether it was closed."""

    def __init__(self, existing: set[str], codes: dict[str, int]) -> None:
        self.topics = set(existing)
        self.codes = codes
        self.closed = False

    async def start(self) -> None:
        return None

    async def list_topics(self) -> list[str]:
        return sorted(self.topics)

    async def create_topics(self, new_topics: list[Any]) -> FakeResponse:
        errors = []
        for topic in new_topics:
            code = self.codes.get(topic.name, 0)
            if code in (0, 36):
                self.topics.add(topic.name)
            errors.append({"topic": topic.name, "error_code": code, "error_message": None})
        return FakeResponse(errors)

    async def close(self) -> None:
        self.closed = True


SETTINGS = Settings(topics=TopicSettings(delay_tiers_s=[5]))


def install(monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin) -> None:
    monkeypatch.setattr(topics_module, "make_admin", lambda kafka: admin)


class TestCreateTopicsAnswers:
    async def test_topic_created_by_someone_else_meanwhile_is_not_reported(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TopicAlreadyExists (36) from a concurrent creator is success, but not 'created by us'."""
        admin = FakeAdmin(existing=set(), codes={"qroute.dlq": 36})
        install(monkeypatch, admin)
        created = await create_topics(SETTINGS)
        assert created == ["qroute.jobs", "qroute.results", "qroute.costs", "qroute.jobs.delay.5s"]
        assert admin.closed

    async def test_refusal_is_an_error_naming_topic_and_reason(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Any other error code raises TopicAdminError with the topic and the Kafka error name."""
        admin = FakeAdmin(existing=set(), codes={"qroute.costs": 38})
        install(monkeypatch, admin)
        with pytest.raises(TopicAdminError, match=r"'qroute.costs'.*InvalidReplicationFactorError \(38\)"):
            await create_topics(SETTINGS)
        assert admin.closed

    async def test_nothing_to_do_sends_no_create_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When every topic exists, no CreateTopics request is sent."""
        admin = FakeAdmin(
            existing={"qroute.jobs", "qroute.results", "qroute.costs", "qroute.dlq", "qroute.jobs.delay.5s"},
            codes={},
        )

        async def refuse(new_topics: list[Any]) -> FakeResponse:
            raise AssertionError("create_topics must not be called")

        monkeypatch.setattr(admin, "create_topics", refuse)
        install(monkeypatch, admin)
        assert await create_topics(SETTINGS) == []
        assert admin.closed
