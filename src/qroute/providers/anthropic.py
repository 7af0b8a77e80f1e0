"""Anthropic Messages API.

Mapping notes:
- system text (job.system and any system-role messages) goes to `system`;
- the `anthropic-version` header comes from the ProviderSpec; under `2026-10-21`
  and later, sampling parameters are refused with 400 even at default values,
  so `temperature`/`top_p` are only sent to older versions (temperature
  clamped to Anthropic's 0–1 range);
- JSON mode has no plain switch in this API, so `response_format: json_object`
  adds one sentence to the system prompt asking for a single JSON object;
- usage: Anthropic's `input_tokens` excludes cache reads and writes; qroute's
  `Usage.input_tokens` includes them, so the three are added up. Thinking
  tokens are already inside `output_tokens` and are reported as reasoning.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import NonNegativeInt, ValidationError

from qroute.catalog.types import ApiFamily, Route
from qroute.models import Job, Usage
from qroute.providers.base import ProviderOutcome
from qroute.providers.classify import Completion, classify_response
from qroute.providers.wire import WireBody, json_post, max_output, split_system, usage, validation_reason

SAMPLING_REFUSED_FROM = "2026-10-21"
"""First API version that answers 400 to temperature/top_p/top_k."""

JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class _OutputDetails(WireBody):
    thinking_tokens: NonNegativeInt | None = None


class _Usage(WireBody):
    input_tokens: NonNegativeInt
    output_tokens: NonNegativeInt
    cache_creation_input_tokens: NonNegativeInt | None = None
    cache_read_input_tokens: NonNegativeInt | None = None
    output_tokens_details: _OutputDetails | None = None


class _Block(WireBody):
    type: str
    text: str | None = None


class _Message(WireBody):
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage | None = None


class AnthropicAdapter:
    """Messages request/response mapping (stateless, shareable)."""

    family: ApiFamily = "anthropic"

    def build_request(self, job: Job, route: Route, api_key: str | None) -> httpx.Request:
        provider = route.provider
        auth = {"anthropic-version": provider.anthropic_version}
        if api_key:
            auth["x-api-key"] = api_key
        return json_post(messages_url(provider.base_url), route, auth, messages_body(job, route))

    def parse_response(self, response: httpx.Response, now: float) -> ProviderOutcome:
        return classify_response(response, now, parse_message)


def messages_url(base_url: str) -> str:
    """`{base}/v1/messages`, accepting a base with or without the `/v1` (the SDK's base has none)."""
    base = base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def messages_body(job: Job, route: Route) -> dict[str, Any]:
    """The canonical job as a Messages request body."""
    system, turns = split_system(job)
    params = job.params
    if params.response_format == "json_object":
        system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
    body: dict[str, Any] = {
        "model": route.model.wire_model,
        "max_tokens": max_output(job, route),
        "messages": [{"role": m.role, "content": m.content} for m in turns],
    }
    if system:
        body["system"] = system
    if route.provider.anthropic_version < SAMPLING_REFUSED_FROM:
        if params.temperature is not None:
            body["temperature"] = min(params.temperature, 1.0)
        if params.top_p is not None:
            body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = params.stop
    return body


def parse_message(data: Any) -> Completion | str:
    """A decoded Message as a `Completion`, or why it is unusable."""
    try:
        body = _Message.model_validate(data)
    except ValidationError as exc:
        return validation_reason(exc)
    text = "".join(block.text or "" for block in body.content if block.type == "text")
    raw = body.stop_reason
    return Completion(
        text=text,
        finish_reason=None if raw is None else FINISH_REASONS.get(raw, raw),
        usage=_usage(body.usage),
    )


def _usage(raw: _Usage | None) -> Usage | None:
    if raw is None:
        return None
    read = raw.cache_read_input_tokens or 0
    write = raw.cache_creation_input_tokens or 0
    details = raw.output_tokens_details
    return usage(
        input_tokens=raw.input_tokens + read + write,
        cached=read,
        cache_write=write,
        output_tokens=raw.output_tokens,
        reasoning=(details.thinking_tokens or 0) if details else 0,
    )
