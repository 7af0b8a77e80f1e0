"""Gemini generateContent adapter: request mapping, usage shapes, blocked prompts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from qroute.providers.gemini import GeminiAdapter
from tests.unit.test_adapters_common import NOW, make_job, make_route

ADAPTER = GeminiAdapter()


def body_of(request: httpx.Request) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(request.content)
    return result


def generated(
    usage: dict[str, Any] | None, parts: list[dict[str, Any]] | None = None, finish: str = "STOP"
) -> httpx.Response:
    body: dict[str, Any] = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts if parts is not None else [{"text": "Hi"}]},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "modelVersion": "gemini-3.8-flash",
    }
    if usage is not None:
        body["usageMetadata"] = usage
    return httpx.Response(200, json=body)


class TestBuildRequest:
    """The canonical job becomes a generateContent request."""

    def test_url_key_roles_and_config(self) -> None:
        """Model in the path, x-goog-api-key, user/model roles, systemInstruction, generationConfig."""
        job = make_job(
            system="Be terse.",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Summarise."},
            ],
            params={
                "max_tokens": 256,
                "temperature": 0.2,
                "top_p": 0.95,
                "stop": ["END"],
                "response_format": "json_object",
            },
        )
        request = ADAPTER.build_request(job, make_route("gemini", api_model="gemini-2.5-flash"), "AIza-test")
        assert str(request.url) == (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        )
        assert request.headers["x-goog-api-key"] == "AIza-test"
        assert body_of(request) == {
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello"}]},
                {"role": "user", "parts": [{"text": "Summarise."}]},
            ],
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
            "generationConfig": {
                "maxOutputTokens": 256,
                "temperature": 0.2,
                "topP": 0.95,
                "stopSequences": ["END"],
                "responseMimeType": "application/json",
            },
        }

    def test_models_prefix_is_not_doubled(self) -> None:
        """A wire model already spelled `models/…` is used as is."""
        request = ADAPTER.build_request(
            make_job(), make_route("gemini", api_model="models/gemini-2.5-pro"), "k"
        )
        assert request.url.path == "/v1beta/models/gemini-2.5-pro:generateContent"

    def test_minimal_body(self) -> None:
        """No system text and no optional params: only contents and the output cap."""
        body = body_of(ADAPTER.build_request(make_job(), make_route("gemini"), "k"))
        assert body == {
            "contents": [{"role": "user", "parts": [{"text": "Summarise this."}]}],
            "generationConfig": {"maxOutputTokens": 1024},
        }


class TestUsageShapes:
    """usageMetadata: cached inside the prompt count; thoughts billed as output."""

    def test_plain(self) -> None:
        """Prompt and candidates only."""
        outcome = ADAPTER.parse_response(
            generated({"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10}), NOW
        )
        assert (outcome.outcome, outcome.text, outcome.finish_reason) == ("success", "Hi", "stop")
        assert outcome.usage is not None
        assert outcome.usage.model_dump() == {
            "input_tokens": 8,
            "cached_input_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 2,
            "reasoning_tokens": 0,
        }

    def test_cached(self) -> None:
        """cachedContentTokenCount is part of promptTokenCount."""
        usage = {"promptTokenCount": 5000, "cachedContentTokenCount": 4096, "candidatesTokenCount": 100}
        outcome = ADAPTER.parse_response(generated(usage), NOW)
        assert outcome.usage is not None
        assert (outcome.usage.input_tokens, outcome.usage.cached_input_tokens) == (5000, 4096)

    def test_thinking(self) -> None:
        """output = candidates + thoughts, reasoning = thoughts; thought parts are not answer text."""
        usage = {
            "promptTokenCount": 8,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 120,
            "totalTokenCount": 130,
        }
        parts: list[dict[str, Any]] = [{"text": "let me think", "thought": True}, {"text": "Hi"}]
        outcome = ADAPTER.parse_response(generated(usage, parts), NOW)
        assert outcome.text == "Hi"
        assert outcome.usage is not None
        assert (outcome.usage.output_tokens, outcome.usage.reasoning_tokens) == (122, 120)

    def test_tool_use_prompt_counts_as_input(self) -> None:
        """toolUsePromptTokenCount is billed as input."""
        usage = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 1}
        outcome = ADAPTER.parse_response(generated(usage), NOW)
        assert outcome.usage is not None
        assert outcome.usage.input_tokens == 15


class TestParse:
    """Finish reasons, blocked prompts and malformed bodies."""

    @pytest.mark.parametrize(
        ("raw", "normal"),
        [("STOP", "stop"), ("MAX_TOKENS", "length"), ("MALFORMED_FUNCTION_CALL", "MALFORMED_FUNCTION_CALL")],
    )
    def test_finish_reasons(self, raw: str, normal: str) -> None:
        """Known reasons normalise; others pass through raw."""
        outcome = ADAPTER.parse_response(generated({"promptTokenCount": 1}, finish=raw), NOW)
        assert outcome.finish_reason == normal

    @pytest.mark.parametrize("raw", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"])
    def test_safety_stops_are_content_filter(self, raw: str) -> None:
        """Safety-type finish reasons end the job as content_filter."""
        outcome = ADAPTER.parse_response(
            generated({"promptTokenCount": 3, "candidatesTokenCount": 0}, [], raw), NOW
        )
        assert (outcome.outcome, outcome.action) == ("content_filter", "terminal")

    def test_blocked_prompt(self) -> None:
        """HTTP 200 with promptFeedback.blockReason and no candidates is content_filter, not malformed."""
        response = httpx.Response(
            200, json={"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}
        )
        outcome = ADAPTER.parse_response(response, NOW)
        assert (outcome.outcome, outcome.action) == ("content_filter", "terminal")

    @pytest.mark.parametrize(
        "body",
        [
            {"usageMetadata": {"promptTokenCount": 8}},
            {"candidates": [{"finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 8}},
            {"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]},
            {
                "candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
                "usageMetadata": {"candidatesTokenCount": 1},
            },
        ],
        ids=["no-candidates", "no-content", "no-usage", "no-prompt-count"],
    )
    def test_malformed(self, body: dict[str, Any]) -> None:
        """Missing candidates, content, usage or prompt count: malformed, unbilled."""
        outcome = ADAPTER.parse_response(httpx.Response(200, json=body), NOW)
        assert (outcome.outcome, outcome.action, outcome.billed) == ("malformed_response", "retry", False)
