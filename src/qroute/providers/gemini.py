"""Google Gemini `generateContent` (REST, v1beta).

Mapping notes:
- roles are `user` and `model`; system text goes to `systemInstruction`;
- `response_format: json_object` becomes `responseMimeType: application/json`;
- usage: `promptTokenCount` already includes `cachedContentTokenCount`; tool-use
  prompt tokens are input too. Thinking is billed as output, so output =
  candidates + thoughts and reasoning = thoughts;
- a blocked prompt comes back as HTTP 200 with `promptFeedback.blockReason` and
  no candidates: that is a content-filter outcome, not a malformed body.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, NonNegativeInt, ValidationError

from qroute.catalog.types import ApiFamily, Route
from qroute.models import Job, Usage
from qroute.providers.base import ProviderOutcome
from qroute.providers.classify import Completion, classify_response
from qroute.providers.wire import WireBody, json_post, max_output, split_system, usage, validation_reason

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_EMPTY_OK = frozenset({"length", "content_filter"})
"""Finish reasons after which a candidate may legitimately carry no text."""


class _Part(WireBody):
    text: str | None = None
    thought: bool | None = None


class _Content(WireBody):
    parts: list[_Part] = Field(default_factory=list)


class _Candidate(WireBody):
    content: _Content | None = None
    finish_reason: str | None = Field(default=None, alias="finishReason")


class _PromptFeedback(WireBody):
    block_reason: str | None = Field(default=None, alias="blockReason")


class _UsageMetadata(WireBody):
    prompt: NonNegativeInt = Field(alias="promptTokenCount")
    cached: NonNegativeInt = Field(default=0, alias="cachedContentTokenCount")
    candidates: NonNegativeInt = Field(default=0, alias="candidatesTokenCount")
    thoughts: NonNegativeInt = Field(default=0, alias="thoughtsTokenCount")
    tool_use_prompt: NonNegativeInt = Field(default=0, alias="toolUsePromptTokenCount")


class _Response(WireBody):
    candidates: list[_Candidate] = Field(default_factory=list)
    prompt_feedback: _PromptFeedback | None = Field(default=None, alias="promptFeedback")
    usage_metadata: _UsageMetadata | None = Field(default=None, alias="usageMetadata")


class GeminiAdapter:
    """generateContent request/response mapping (stateless, shareable)."""

    family: ApiFamily = "gemini"

    def build_request(self, job: Job, route: Route, api_key: str | None) -> httpx.Request:
        model = route.model.wire_model.removeprefix("models/")
        url = f"{route.provider.base_url.rstrip('/')}/models/{model}:generateContent"
        auth = {"x-goog-api-key": api_key} if api_key else {}
        return json_post(url, route, auth, generate_body(job, route))

    def parse_response(self, response: httpx.Response, now: float) -> ProviderOutcome:
        return classify_response(response, now, parse_generate_response)


def generate_body(job: Job, route: Route) -> dict[str, Any]:
    """The canonical job as a generateContent request body."""
    system, turns = split_system(job)
    params = job.params
    config: dict[str, Any] = {"maxOutputTokens": max_output(job, route)}
    if params.temperature is not None:
        config["temperature"] = params.temperature
    if params.top_p is not None:
        config["topP"] = params.top_p
    if params.stop:
        config["stopSequences"] = params.stop
    if params.response_format == "json_object":
        config["responseMimeType"] = "application/json"
    body: dict[str, Any] = {
        "contents": [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in turns
        ],
        "generationConfig": config,
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    return body


def parse_generate_response(data: Any) -> Completion | str:
    """A decoded GenerateContentResponse as a `Completion`, or why it is unusable."""
    try:
        body = _Response.model_validate(data)
    except ValidationError as exc:
        return validation_reason(exc)
    used = _usage(body.usage_metadata)
    if not body.candidates:
        if body.prompt_feedback is not None and body.prompt_feedback.block_reason:
            return Completion(text="", finish_reason="content_filter", usage=used)
        return "candidates: missing"
    candidate = body.candidates[0]
    raw = candidate.finish_reason
    finish = None if raw is None else FINISH_REASONS.get(raw, raw)
    if candidate.content is None and finish not in _EMPTY_OK:
        return "candidates.0.content: missing"
    parts = candidate.content.parts if candidate.content else []
    text = "".join(p.text or "" for p in parts if not p.thought)
    return Completion(text=text, finish_reason=finish, usage=used)


def _usage(raw: _UsageMetadata | None) -> Usage | None:
    if raw is None:
        return None
    return usage(
        input_tokens=raw.prompt + raw.tool_use_prompt,
        cached=raw.cached,
        output_tokens=raw.candidates + raw.thoughts,
        reasoning=raw.thoughts,
    )
