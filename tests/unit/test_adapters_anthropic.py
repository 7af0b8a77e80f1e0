"""Anthropic Messages adapter: request mapping, usage shapes, stop reasons."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from qroute.providers.anthropic import JSON_INSTRUCTION, AnthropicAdapter, messages_url
from tests.unit.test_adapters_common import NOW, make_job, make_route

ADAPTER = AnthropicAdapter()


def body_of(request: httpx.Request) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(request.content)
    return result


def message(
    usage: dict[str, Any] | None, content: list[dict[str, Any]] | None = None, stop: str = "end_turn"
) -> httpx.Response:
    body: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content if content is not None else [{"type": "text", "text": "Hi"}],
        "stop_reason": stop,
        "stop_sequence": None,
    }
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


class TestBuildRequest:
    """The canonical job becomes a Messages request."""

    def test_headers_and_body(self) -> None:
        """x-api-key, anthropic-version from the spec, system out of band, max_tokens required."""
        job = make_job(
            system="Be terse.",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Summarise."},
            ],
            params={"max_tokens": 300, "stop": ["###"]},
        )
        request = ADAPTER.build_request(job, make_route("anthropic", api_model="claude-sonnet-4-6"), "sk-ant")
        assert str(request.url) == "https://api.anthropic.com/v1/messages"
        assert request.headers["x-api-key"] == "sk-ant"
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert body_of(request) == {
            "model": "claude-sonnet-4-6",
            "max_tokens": 300,
            "system": "Be terse.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Summarise."},
            ],
            "stop_sequences": ["###"],
        }

    @pytest.mark.parametrize(
        ("base", "url"),
        [
            ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
            ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"),
            ("http://127.0.0.1:8080/premium", "http://127.0.0.1:8080/premium/v1/messages"),
        ],
    )
    def test_base_with_or_without_v1(self, base: str, url: str) -> None:
        """Both SDK-style bases (no /v1) and API-style bases (/v1) work."""
        assert messages_url(base) == url

    def test_sampling_params_under_old_version(self) -> None:
        """2023-06-01 accepts temperature (clamped to 0–1) and top_p."""
        job = make_job(params={"temperature": 1.5, "top_p": 0.9})
        body = body_of(ADAPTER.build_request(job, make_route("anthropic"), "k"))
        assert (body["temperature"], body["top_p"]) == (1.0, 0.9)

    def test_sampling_params_dropped_under_2026_version(self) -> None:
        """2026-10-21 answers 400 to any sampling param, so none is sent."""
        job = make_job(params={"temperature": 0.2, "top_p": 0.9})
        request = ADAPTER.build_request(job, make_route("anthropic", anthropic_version="2026-10-21"), "k")
        assert request.headers["anthropic-version"] == "2026-10-21"
        assert not {"temperature", "top_p"} & body_of(request).keys()

    def test_json_mode_asks_in_system_prompt(self) -> None:
        """There is no JSON switch: the request asks for a single JSON object in the system prompt."""
        job = make_job(system="Extract fields.", params={"response_format": "json_object"})
        body = body_of(ADAPTER.build_request(job, make_route("anthropic"), "k"))
        assert body["system"] == f"Extract fields.\n\n{JSON_INSTRUCTION}"

    def test_system_role_messages_are_hoisted(self) -> None:
        """System-role messages leave `messages` and join `system`."""
        job = make_job(messages=[{"role": "system", "content": "Rules."}, {"role": "user", "content": "Go"}])
        body = body_of(ADAPTER.build_request(job, make_route("anthropic"), "k"))
        assert body["system"] == "Rules."
        assert body["messages"] == [{"role": "user", "content": "Go"}]


class TestUsageShapes:
    """Anthropic counts cache reads/writes outside input_tokens; qroute counts them inside."""

    def test_plain(self) -> None:
        """The documented response shape with no caching."""
        usage = {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 6,
            "output_tokens_details": {"thinking_tokens": 0},
            "service_tier": "standard",
        }
        outcome = ADAPTER.parse_response(message(usage), NOW)
        assert (outcome.outcome, outcome.text, outcome.finish_reason) == ("success", "Hi", "stop")
        assert outcome.usage is not None
        assert outcome.usage.model_dump() == {
            "input_tokens": 12,
            "cached_input_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 6,
            "reasoning_tokens": 0,
        }

    def test_cached(self) -> None:
        """input = input_tokens + cache writes + cache reads; the parts are kept."""
        usage = {
            "input_tokens": 50,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 3000,
            "output_tokens": 200,
        }
        outcome = ADAPTER.parse_response(message(usage), NOW)
        assert outcome.usage is not None
        assert (outcome.usage.input_tokens, outcome.usage.cached_input_tokens) == (4050, 3000)
        assert outcome.usage.cache_write_tokens == 1000

    def test_thinking(self) -> None:
        """Thinking is inside output_tokens and reported as reasoning; thinking blocks are not text."""
        usage = {"input_tokens": 30, "output_tokens": 900, "output_tokens_details": {"thinking_tokens": 700}}
        content = [
            {"type": "thinking", "thinking": "…", "signature": "x"},
            {"type": "text", "text": "Answer"},
        ]
        outcome = ADAPTER.parse_response(message(usage, content), NOW)
        assert outcome.text == "Answer"
        assert outcome.usage is not None
        assert (outcome.usage.output_tokens, outcome.usage.reasoning_tokens) == (900, 700)

    def test_null_cache_fields(self) -> None:
        """Older responses send null cache counts."""
        usage = {
            "input_tokens": 7,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "output_tokens": 1,
        }
        outcome = ADAPTER.parse_response(message(usage), NOW)
        assert outcome.usage is not None
        assert outcome.usage.input_tokens == 7


class TestParse:
    """Stop reasons, multi-block text and malformed bodies."""

    @pytest.mark.parametrize(
        ("raw", "normal"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("tool_use", "tool_calls"),
            ("pause_turn", "pause_turn"),
        ],
    )
    def test_stop_reasons(self, raw: str, normal: str) -> None:
        """Stop reasons normalise; unknown ones pass through raw."""
        outcome = ADAPTER.parse_response(message({"input_tokens": 1, "output_tokens": 1}, stop=raw), NOW)
        assert outcome.finish_reason == normal

    def test_refusal_is_content_filter(self) -> None:
        """stop_reason refusal is a content-filter outcome, billed."""
        outcome = ADAPTER.parse_response(
            message({"input_tokens": 5, "output_tokens": 2}, [], stop="refusal"), NOW
        )
        assert (outcome.outcome, outcome.action, outcome.billed) == ("content_filter", "terminal", True)

    def test_text_blocks_concatenate(self) -> None:
        """Several text blocks form one answer."""
        content = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
        outcome = ADAPTER.parse_response(message({"input_tokens": 1, "output_tokens": 2}, content), NOW)
        assert outcome.text == "Hello, world"

    def test_missing_usage_is_malformed(self) -> None:
        """No usage: retried, not billed."""
        outcome = ADAPTER.parse_response(message(None), NOW)
        assert (outcome.outcome, outcome.billed) == ("malformed_response", False)

    def test_missing_content_is_malformed(self) -> None:
        """No content array: retried, not billed, reason named."""
        response = httpx.Response(
            200, json={"type": "message", "usage": {"input_tokens": 1, "output_tokens": 1}}
        )
        outcome = ADAPTER.parse_response(response, NOW)
        assert outcome.outcome == "malformed_response"
        assert outcome.error is not None
        assert "content" in outcome.error

    def test_rate_limit_headers_on_success(self) -> None:
        """Successful responses carry the budget for pacing."""
        response = message({"input_tokens": 1, "output_tokens": 1})
        response.headers["anthropic-ratelimit-requests-remaining"] = "49"
        response.headers["anthropic-ratelimit-requests-reset"] = "2025-08-21T12:40:59Z"
        outcome = ADAPTER.parse_response(response, NOW)
        assert outcome.rate_limit is not None
        assert outcome.rate_limit.remaining_requests == 49
