"""OpenAI Chat Completions, and everything that speaks it.

One adapter serves OpenAI, Azure OpenAI (when `ProviderSpec.azure_api_version` is
set: deployment URL, `api-version` query, `api-key` header) and the
OpenAI-compatible hosts (Groq, Together, DeepSeek, Mistral, Fireworks,
OpenRouter, vLLM, Ollama) by configuration alone: base URL, key, extra headers.

Output cap: OpenAI and Azure get `max_completion_tokens` (reasoning models
refuse the deprecated `max_tokens`); other hosts get `max_tokens`, which every
compatible server understands.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import NonNegativeInt, ValidationError

from qroute.catalog.types import ApiFamily, Route
from qroute.models import Job, Usage
from qroute.providers.base import ProviderOutcome
from qroute.providers.classify import Completion, classify_response
from qroute.providers.wire import WireBody, json_post, max_output, usage, validation_reason

OFFICIAL_HOST = "api.openai.com"

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # deprecated spelling of the same thing
}


class _PromptDetails(WireBody):
    cached_tokens: NonNegativeInt | None = None
    cache_write_tokens: NonNegativeInt | None = None
    cache_creation_tokens: NonNegativeInt | None = None  # spelling used by some compatible hosts


class _CompletionDetails(WireBody):
    reasoning_tokens: NonNegativeInt | None = None


class _Usage(WireBody):
    prompt_tokens: NonNegativeInt
    completion_tokens: NonNegativeInt
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_cache_hit_tokens: NonNegativeInt | None = None  # DeepSeek reports cache hits here


class _Message(WireBody):
    content: str | None = None
    refusal: str | None = None


class _Choice(WireBody):
    message: _Message
    finish_reason: str | None = None


class _ChatCompletion(WireBody):
    choices: list[_Choice]
    usage: _Usage | None = None


class OpenAIAdapter:
    """Chat Completions request/response mapping (stateless, shareable)."""

    family: ApiFamily = "openai"

    def build_request(self, job: Job, route: Route, api_key: str | None) -> httpx.Request:
        provider = route.provider
        base = provider.base_url.rstrip("/")
        body = chat_body(job, route)
        if provider.azure_api_version:
            url = f"{base}/openai/deployments/{route.model.wire_model}/chat/completions"
            auth = {"api-key": api_key} if api_key else {}
            return json_post(url, route, auth, body, params={"api-version": provider.azure_api_version})
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        return json_post(f"{base}/chat/completions", route, auth, body)

    def parse_response(self, response: httpx.Response, now: float) -> ProviderOutcome:
        return classify_response(response, now, parse_chat_completion)


def chat_body(job: Job, route: Route) -> dict[str, Any]:
    """The canonical job as a Chat Completions request body."""
    messages: list[dict[str, str]] = []
    if job.system:
        messages.append({"role": "system", "content": job.system})
    messages.extend({"role": m.role, "content": m.content} for m in job.messages)
    provider = route.provider
    official = provider.azure_api_version is not None or OFFICIAL_HOST in provider.base_url
    body: dict[str, Any] = {
        "model": route.model.wire_model,
        "messages": messages,
        "max_completion_tokens" if official else "max_tokens": max_output(job, route),
    }
    params = job.params
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop"] = params.stop
    if params.response_format == "json_object":
        body["response_format"] = {"type": "json_object"}
    return body


def parse_chat_completion(data: Any) -> Completion | str:
    """A decoded ChatCompletion as a `Completion`, or why it is unusable."""
    try:
        body = _ChatCompletion.model_validate(data)
    except ValidationError as exc:
        return validation_reason(exc)
    if not body.choices:
        return "choices: empty"
    choice = body.choices[0]
    finish = normalise_finish_reason(choice.finish_reason)
    text = choice.message.content
    if text is None:
        if choice.message.refusal is not None:
            finish = "content_filter"  # the model refused (structured outputs); nothing usable came back
        elif finish not in ("length", "content_filter", "tool_calls"):
            return "choices.0.message.content: missing"
        text = ""
    return Completion(text=text, finish_reason=finish, usage=_usage(body.usage))


def normalise_finish_reason(raw: str | None) -> str | None:
    return None if raw is None else FINISH_REASONS.get(raw, raw)


def _usage(raw: _Usage | None) -> Usage | None:
    if raw is None:
        return None
    prompt = raw.prompt_tokens_details
    cached = (prompt.cached_tokens if prompt else None) or raw.prompt_cache_hit_tokens or 0
    write = (prompt.cache_write_tokens or prompt.cache_creation_tokens or 0) if prompt else 0
    details = raw.completion_tokens_details
    return usage(
        input_tokens=raw.prompt_tokens,
        cached=cached,
        cache_write=write,
        output_tokens=raw.completion_tokens,
        reasoning=(details.reasoning_tokens or 0) if details else 0,
    )
