"""Rate limits: 429s beyond rpm/tpm with each family's real headers and bodies; buckets refill."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from qroute.providers.ratelimit import parse_go_duration, parse_rfc3339
from qroute.sim import SimServer
from qroute.sim.engine import Reply, SimEngine
from qroute.sim.testing import (
    ANTHROPIC_HEADERS,
    chat_request,
    messages_request,
    sim_config,
    sim_model,
    sim_provider,
)

GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(ms|s))$|^0s$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = sim_config(
        sim_provider("oa", "openai", rpm=3, tpm=100_000),
        sim_provider("an", "anthropic", rpm=2),
        sim_provider("tok", "openai", tpm=500),
    )
    async with SimServer(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


class TestOpenAIRateLimits:
    """OpenAI family: x-ratelimit-* triples, retry-after(-ms), rate_limit_exceeded bodies."""

    async def test_requests_beyond_rpm_get_429(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """With rpm=3 the fourth immediate request is a 429 of type requests with the full header set."""
        url = f"{sim.base_url('oa')}/chat/completions"
        answers = [await http.post(url, json=chat_request("sim-small", "hi")) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        limited = answers[3]
        assert limited.json()["error"] == {
            "message": limited.json()["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        headers = limited.headers
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert GO_DURATION.match(headers["x-ratelimit-reset-requests"])
        reset = parse_go_duration(headers["x-ratelimit-reset-requests"])
        assert reset is not None
        assert 50 < reset <= 60  # three of three used: back to full in just under a minute
        retry_after_ms = int(headers["retry-after-ms"])
        assert 15_000 < retry_after_ms <= 20_000  # one request refills in 60/3 s
        assert headers["retry-after"] == str(-(-retry_after_ms // 1000))  # whole seconds, rounded up
        assert headers["x-request-id"].startswith("req_")

    async def test_success_headers_count_down(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Successful answers carry the remaining budget so a client can pace itself."""
        url = f"{sim.base_url('oa')}/chat/completions"
        first = await http.post(url, json=chat_request("sim-small", "hi"))
        second = await http.post(url, json=chat_request("sim-small", "hi"))
        assert first.headers["x-ratelimit-remaining-requests"] == "2"
        assert second.headers["x-ratelimit-remaining-requests"] == "1"
        assert int(second.headers["x-ratelimit-remaining-tokens"]) < int(
            first.headers["x-ratelimit-remaining-tokens"]
        )
        assert GO_DURATION.match(first.headers["x-ratelimit-reset-tokens"])

    async def test_tokens_beyond_tpm_get_429(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Input estimate + max tokens is reserved; a request that no longer fits is a 429 of type tokens."""
        url = f"{sim.base_url('tok')}/chat/completions"
        first = await http.post(url, json=chat_request("sim-small", "hi", max_tokens=300))
        second = await http.post(url, json=chat_request("sim-small", "hi", max_tokens=300))
        assert first.status_code == 200
        assert second.status_code == 429
        assert second.json()["error"]["type"] == "tokens"
        assert "x-ratelimit-limit-requests" not in second.headers  # no rpm configured
        assert second.headers["x-ratelimit-limit-tokens"] == "500"

    async def test_request_larger_than_tpm_is_refused(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A request above the whole per-minute token budget can never fit: 429 "Request too large"."""
        response = await http.post(
            f"{sim.base_url('tok')}/chat/completions", json=chat_request("sim-small", "hi", max_tokens=600)
        )
        assert response.status_code == 429
        assert response.json()["error"]["message"].startswith("Request too large")


class TestAnthropicRateLimits:
    """Anthropic family: anthropic-ratelimit-* with RFC 3339 resets, retry-after, rate_limit_error bodies."""

    async def test_requests_beyond_rpm_get_429(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """With rpm=2 the third immediate request is a 429 rate_limit_error with reset timestamps."""
        url = f"{sim.base_url('an')}/v1/messages"
        answers = [
            await http.post(url, json=messages_request("sim-small", "hi"), headers=ANTHROPIC_HEADERS)
            for _ in range(3)
        ]
        assert [r.status_code for r in answers] == [200, 200, 429]
        limited = answers[2]
        body = limited.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "rate_limit_error"
        assert body["request_id"] == limited.headers["request-id"]
        headers = limited.headers
        assert headers["anthropic-ratelimit-requests-limit"] == "2"
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        reset_text = headers["anthropic-ratelimit-requests-reset"]
        assert RFC3339_UTC.match(reset_text)
        reset_at = parse_rfc3339(reset_text)
        assert reset_at is not None
        assert time.time() + 50 < reset_at <= time.time() + 61
        assert 25 <= int(headers["retry-after"]) <= 30  # one request refills in 60/2 s, rounded up
        assert "anthropic-ratelimit-tokens-limit" not in headers  # no tpm configured

    async def test_success_headers_carry_remaining(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A 200 carries the request budget left and its reset time."""
        response = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("sim-small", "hi"),
            headers=ANTHROPIC_HEADERS,
        )
        assert response.headers["anthropic-ratelimit-requests-remaining"] == "1"
        assert RFC3339_UTC.match(response.headers["anthropic-ratelimit-requests-reset"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestBucketRefill:
    """Buckets refill continuously: a refused request fits again after the announced wait."""

    def test_admitted_again_after_retry_after(self) -> None:
        """At rpm=2, after a 429 the request is admitted once 30 s have passed, not before."""
        clock = FakeClock()
        engine = SimEngine(sim_config(sim_provider("oa", rpm=2, models=[sim_model()])), clock=clock)
        body = httpx.Request("POST", "http://x", json=chat_request("sim-small", "hi")).read()

        def status() -> int:
            plan = engine.handle("oa", "chat/completions", "POST", body, {})
            assert isinstance(plan, Reply)
            return plan.status

        assert [status(), status(), status()] == [200, 200, 429]
        clock.now += 29.0
        assert status() == 429
        clock.now += 1.01
        assert status() == 200
