"""OpenAI Chat Completions adapter: requests for OpenAI, Azure and compatible hosts; usage shapes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from qroute.providers.openai import OpenAIAdapter
from tests.unit.test_adapters_common import NOW, make_job, make_route

ADAPTER = OpenAIAdapter()


def body_of(request: httpx.Request) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(request.content)
    return result


def completion(usage: dict[str, Any], content: str | None = "Hi", finish: str = "stop") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-5.4-2026-03-05",
            "choices": [
                {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
            ],
            "usage": usage,
        },
    )


class TestBuildRequest:
    """The canonical job becomes a Chat Completions request."""

    def test_openai_request(self) -> None:
        """URL, bearer key, model, system first, output cap as max_completion_tokens on api.openai.com."""
        job = make_job(system="Be terse.", params={"max_tokens": 200})
        request = ADAPTER.build_request(job, make_route(api_model="gpt-4o-mini-2024-07-18"), "sk-test")
        assert request.method == "POST"
        assert str(request.url) == "https://api.openai.com/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-test"
        assert request.headers["content-type"] == "application/json"
        assert body_of(request) == {
            "model": "gpt-4o-mini-2024-07-18",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Summarise this."},
            ],
            "max_completion_tokens": 200,
        }

    def test_all_params_map(self) -> None:
        """temperature, top_p, stop and JSON mode are passed when set."""
        job = make_job(
            params={"temperature": 0.2, "top_p": 0.9, "stop": ["END"], "response_format": "json_object"}
        )
        body = body_of(ADAPTER.build_request(job, make_route(), "k"))
        assert body["temperature"] == 0.2
        assert body["top_p"] == 0.9
        assert body["stop"] == ["END"]
        assert body["response_format"] == {"type": "json_object"}

    def test_unset_params_are_left_out(self) -> None:
        """Sampling params the job did not set are not sent (reasoning models reject them)."""
        body = body_of(ADAPTER.build_request(make_job(), make_route(), "k"))
        assert not {"temperature", "top_p", "stop", "response_format"} & body.keys()

    def test_compatible_host_gets_max_tokens(self) -> None:
        """Groq, vLLM and friends get the classic max_tokens field."""
        route = make_route(base_url="https://api.groq.com/openai/v1/", api_model="openai/gpt-oss-120b")
        request = ADAPTER.build_request(make_job(params={"max_tokens": 64}), route, "gsk")
        assert str(request.url) == "https://api.groq.com/openai/v1/chat/completions"
        assert body_of(request)["max_tokens"] == 64
        assert body_of(request)["model"] == "openai/gpt-oss-120b"

    def test_azure_deployment_url_and_key(self) -> None:
        """Azure: deployment path, api-version query, api-key header instead of bearer."""
        route = make_route(
            base_url="https://res.openai.azure.com", azure_api_version="2024-10-21", api_model="gpt4o-prod"
        )
        request = ADAPTER.build_request(make_job(), route, "az-key")
        assert str(request.url) == (
            "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        )
        assert request.headers["api-key"] == "az-key"
        assert "authorization" not in request.headers
        assert "max_completion_tokens" in body_of(request)

    def test_no_key_sends_no_auth(self) -> None:
        """A local server without a key (vLLM, Ollama) gets no auth header."""
        route = make_route(base_url="http://127.0.0.1:11434/v1")
        assert "authorization" not in ADAPTER.build_request(make_job(), route, None).headers

    def test_extra_headers_are_added(self) -> None:
        """ProviderSpec.headers are sent (e.g. OpenRouter attribution, OpenAI-Project)."""
        route = make_route(headers={"OpenAI-Project": "proj_1", "HTTP-Referer": "https://example.com"})
        request = ADAPTER.build_request(make_job(), route, "k")
        assert request.headers["openai-project"] == "proj_1"
        assert request.headers["http-referer"] == "https://example.com"


class TestUsageShapes:
    """Usage in every shape OpenAI-compatible hosts send it."""

    def test_plain(self) -> None:
        """prompt/completion only (gpt-4o-mini-like, Ollama)."""
        outcome = ADAPTER.parse_response(completion({"prompt_tokens": 19, "completion_tokens": 10}), NOW)
        assert outcome.usage is not None
        assert outcome.usage.model_dump() == {
            "input_tokens": 19,
            "cached_input_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 10,
            "reasoning_tokens": 0,
        }

    def test_cached_and_reasoning(self) -> None:
        """OpenAI's details: cached tokens stay inside input; reasoning inside output."""
        usage = {
            "prompt_tokens": 2000,
            "completion_tokens": 500,
            "total_tokens": 2500,
            "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 64, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 384, "accepted_prediction_tokens": 0},
        }
        outcome = ADAPTER.parse_response(completion(usage), NOW)
        assert outcome.usage is not None
        assert (outcome.usage.input_tokens, outcome.usage.cached_input_tokens) == (2000, 1536)
        assert (outcome.usage.cache_write_tokens, outcome.usage.output_tokens) == (64, 500)
        assert outcome.usage.reasoning_tokens == 384

    def test_deepseek_cache_hits(self) -> None:
        """DeepSeek reports cache hits as prompt_cache_hit_tokens; prompt_tokens includes them."""
        usage = {
            "prompt_tokens": 1000,
            "completion_tokens": 20,
            "prompt_cache_hit_tokens": 640,
            "prompt_cache_miss_tokens": 360,
        }
        outcome = ADAPTER.parse_response(completion(usage), NOW)
        assert outcome.usage is not None
        assert (outcome.usage.input_tokens, outcome.usage.cached_input_tokens) == (1000, 640)

    def test_null_details(self) -> None:
        """null detail objects and null counts read as zero."""
        usage = {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "prompt_tokens_details": None,
            "completion_tokens_details": {"reasoning_tokens": None},
        }
        outcome = ADAPTER.parse_response(completion(usage), NOW)
        assert outcome.usage is not None
        assert outcome.usage.reasoning_tokens == 0


class TestParseSuccess:
    """Text and finish reason from the first choice."""

    @pytest.mark.parametrize(
        ("raw", "normal"),
        [
            ("stop", "stop"),
            ("length", "length"),
            ("tool_calls", "tool_calls"),
            ("function_call", "tool_calls"),
            ("eos", "eos"),
        ],
    )
    def test_finish_reasons(self, raw: str, normal: str) -> None:
        """Known reasons normalise; unknown ones pass through raw."""
        outcome = ADAPTER.parse_response(
            completion({"prompt_tokens": 1, "completion_tokens": 1}, finish=raw), NOW
        )
        assert (outcome.outcome, outcome.finish_reason) == ("success", normal)

    def test_empty_content_at_length_is_success(self) -> None:
        """A reasoning model that spent its cap thinking returns null content: empty text, billed."""
        response = completion({"prompt_tokens": 9, "completion_tokens": 100}, content=None, finish="length")
        outcome = ADAPTER.parse_response(response, NOW)
        assert (outcome.outcome, outcome.text, outcome.finish_reason, outcome.billed) == (
            "success",
            "",
            "length",
            True,
        )

    def test_refusal_is_content_filter(self) -> None:
        """A refusal with no content is a content-filter outcome, billed."""
        response = httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "finish_reason": "stop",
                        "message": {"content": None, "refusal": "I can't help with that."},
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 6},
            },
        )
        outcome = ADAPTER.parse_response(response, NOW)
        assert (outcome.outcome, outcome.action, outcome.billed) == ("content_filter", "terminal", True)
