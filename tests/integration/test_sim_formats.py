"""The simulator speaks the real wire formats: SDK types validate them and SDK clients complete calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from qroute.sim import SimServer
from qroute.sim.testing import (
    ANTHROPIC_HEADERS,
    chat_request,
    messages_request,
    sim_config,
    sim_model,
    sim_provider,
)

LONG_PROMPT = "Quarterly revenue grew in every region while costs stayed flat. " * 120  # > 1024 tokens


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = sim_config(
        sim_provider("oa", "openai", models=[sim_model("gpt-sim", reasoning_tokens=7, cached_ratio=0.5)]),
        sim_provider(
            "an", "anthropic", models=[sim_model("claude-sim", reasoning_tokens=5, cached_ratio=0.5)]
        ),
    )
    async with SimServer(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


class TestOpenAIFormat:
    """Chat Completions responses and errors."""

    async def test_response_validates_as_sdk_chat_completion(
        self, sim: SimServer, http: httpx.AsyncClient
    ) -> None:
        """A 200 body is a valid ChatCompletion whose usage adds up and includes reasoning."""
        response = await http.post(
            f"{sim.base_url('oa')}/chat/completions", json=chat_request("gpt-sim", "Hello")
        )
        assert response.status_code == 200
        completion = ChatCompletion.model_validate(response.json())
        assert completion.model == "gpt-sim"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.choices[0].message.content
        usage = completion.usage
        assert usage is not None
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert usage.completion_tokens_details is not None
        assert usage.completion_tokens_details.reasoning_tokens == 7
        assert usage.completion_tokens <= 64
        assert response.headers["x-request-id"].startswith("req_")

    async def test_long_prompt_reports_cached_tokens(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Over 1024 input tokens, cached_ratio of the prompt is reported in prompt_tokens_details."""
        response = await http.post(
            f"{sim.base_url('oa')}/chat/completions", json=chat_request("gpt-sim", LONG_PROMPT)
        )
        usage = ChatCompletion.model_validate(response.json()).usage
        assert usage is not None
        assert usage.prompt_tokens > 1024
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 2

    async def test_sdk_client_completes_a_call(self, sim: SimServer) -> None:
        """The official OpenAI client pointed at the simulator gets a completion back."""
        async with openai.AsyncOpenAI(
            base_url=sim.base_url("oa"), api_key="sk-test", max_retries=0
        ) as client:
            completion = await client.chat.completions.create(
                model="gpt-sim",
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Summarise this"},
                ],
                max_completion_tokens=40,
            )
        assert completion.choices[0].message.content
        assert completion.usage is not None
        assert completion.usage.completion_tokens <= 40

    async def test_unknown_model_is_sdk_not_found(self, sim: SimServer) -> None:
        """An unknown model is a 404 with code model_not_found, which the SDK raises as NotFoundError."""
        async with openai.AsyncOpenAI(
            base_url=sim.base_url("oa"), api_key="sk-test", max_retries=0
        ) as client:
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "x"}]
                )
        assert caught.value.code == "model_not_found"

    async def test_context_length_exceeded(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Input plus max_tokens over the window is a 400 with code context_length_exceeded."""
        body = chat_request("gpt-sim", "word " * 4000, max_tokens=4000)
        response = await http.post(f"{sim.base_url('oa')}/chat/completions", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "messages"

    async def test_json_mode_answers_json(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """With response_format json_object the content parses as a JSON object."""
        body = chat_request(
            "gpt-sim", "List the facts", max_tokens=200, response_format={"type": "json_object"}
        )
        response = await http.post(f"{sim.base_url('oa')}/chat/completions", json=body)
        content = response.json()["choices"][0]["message"]["content"]
        assert isinstance(json.loads(content), dict)


class TestAnthropicFormat:
    """Messages responses and errors."""

    async def test_response_validates_as_sdk_message(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """A 200 body is a valid Message; input_tokens excludes cache reads, thinking is inside output."""
        response = await http.post(
            f"{sim.base_url('an')}/v1/messages",
            json=messages_request("claude-sim", LONG_PROMPT, max_tokens=1000),
            headers=ANTHROPIC_HEADERS,
        )
        assert response.status_code == 200
        message = Message.model_validate(response.json())
        assert message.stop_reason == "end_turn"
        assert message.content[0].type == "text"
        usage = message.usage
        assert usage.cache_read_input_tokens
        total_input = usage.input_tokens + usage.cache_read_input_tokens
        assert usage.cache_read_input_tokens == total_input // 2
        assert usage.output_tokens_details is not None
        assert usage.output_tokens_details.thinking_tokens == 5
        assert 5 < usage.output_tokens <= 1000
        assert response.headers["request-id"].startswith("req_")

    async def test_sdk_client_completes_a_call(self, sim: SimServer) -> None:
        """The official Anthropic client pointed at the simulator gets a message back."""
        async with anthropic.AsyncAnthropic(
            base_url=sim.base_url("an"), api_key="sk-ant-test", max_retries=0
        ) as client:
            message = await client.messages.create(
                model="claude-sim",
                max_tokens=40,
                system="Be brief.",
                messages=[{"role": "user", "content": "Summarise this"}],
            )
        assert message.content
        assert message.usage.output_tokens <= 40

    async def test_unknown_model_is_sdk_not_found(self, sim: SimServer) -> None:
        """An unknown model is a 404 not_found_error, raised by the SDK as NotFoundError."""
        async with anthropic.AsyncAnthropic(
            base_url=sim.base_url("an"), api_key="sk-ant-test", max_retries=0
        ) as client:
            with pytest.raises(anthropic.NotFoundError) as caught:
                await client.messages.create(
                    model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
                )
        assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    async def test_prompt_too_long(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Input plus max_tokens over the window is a 400 invalid_request_error saying the prompt is too long."""
        body = messages_request("claude-sim", "word " * 4000, max_tokens=4000)
        response = await http.post(f"{sim.base_url('an')}/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        assert response.status_code == 400
        payload = response.json()
        assert payload["type"] == "error"
        assert payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"].startswith("prompt is too long")
        assert payload["request_id"] == response.headers["request-id"]

    async def test_version_header_is_required(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Without anthropic-version the request is refused with 400, as the real API does."""
        response = await http.post(
            f"{sim.base_url('an')}/v1/messages", json=messages_request("claude-sim", "x")
        )
        assert response.status_code == 400
        assert "anthropic-version" in response.json()["error"]["message"]

    async def test_sampling_refused_under_new_api_version(
        self, sim: SimServer, http: httpx.AsyncClient
    ) -> None:
        """Under anthropic-version 2026-10-21, temperature is a 400 even at its default."""
        headers = {**ANTHROPIC_HEADERS, "anthropic-version": "2026-10-21"}
        body = messages_request("claude-sim", "x", temperature=1.0)
        response = await http.post(f"{sim.base_url('an')}/v1/messages", json=body, headers=headers)
        assert response.status_code == 400


class TestAnswers:
    """Answer text and token counts are deterministic and within the caps."""

    async def test_same_prompt_same_answer(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """Two requests with one prompt get identical text and usage."""
        url = f"{sim.base_url('oa')}/chat/completions"
        first, second = [
            (await http.post(url, json=chat_request("gpt-sim", "Explain the budget plan"))).json()
            for _ in range(2)
        ]
        assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
        assert first["usage"] == second["usage"]

    async def test_small_cap_cuts_the_answer(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """When max_tokens is smaller than the answer, output equals the cap and finish_reason is length."""
        body = chat_request("gpt-sim", LONG_PROMPT, max_tokens=20)
        data = (await http.post(f"{sim.base_url('oa')}/chat/completions", json=body)).json()
        assert data["choices"][0]["finish_reason"] == "length"
        assert data["usage"]["completion_tokens"] <= 20

    async def test_wrong_endpoint_for_family_is_404(self, sim: SimServer, http: httpx.AsyncClient) -> None:
        """An OpenAI-family provider does not serve /v1/messages."""
        response = await http.post(f"{sim.url}/oa/v1/messages", json=messages_request("gpt-sim", "x"))
        assert response.status_code == 404
        assert "error" in response.json()
