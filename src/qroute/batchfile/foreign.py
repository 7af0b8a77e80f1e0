"""OpenAI Batch API and Anthropic Message Batches request lines, turned into qroute job data.

Both line shapes are checked with their own pydantic models, so errors name the
field the way the user wrote it (`body.messages.0.content`, `params.max_tokens`).
What qroute cannot honour is refused with the field named: tools and function
calling, more than one choice, streaming, non-text content, structured-output
schemas. Sampling hints and bookkeeping fields that do not change what a job
means for routing are accepted and ignored (see `IGNORED_*`).

The line's `model` becomes `constraints.allowed_models = [model]`; qroute still
picks the cheapest provider serving that model. The `custom_id` becomes the job
id (it must be a valid job id) and is also kept as `metadata.custom_id`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from qroute.models import JOB_ID_PATTERN, MAX_TOKENS_LIMIT

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

IGNORED_OPENAI_FIELDS = frozenset(
    {
        "user",
        "seed",
        "metadata",
        "store",
        "service_tier",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "reasoning_effort",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    }
)
"""OpenAI body fields accepted and dropped: hints and bookkeeping, not part of a job's meaning."""

REFUSED_OPENAI_FIELDS = {
    "tools": "tool calling is not supported (text chat only)",
    "tool_choice": "tool calling is not supported (text chat only)",
    "functions": "function calling is not supported (text chat only)",
    "function_call": "function calling is not supported (text chat only)",
    "parallel_tool_calls": "tool calling is not supported (text chat only)",
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not supported",
    "top_logprobs": "log probabilities are not supported",
}
"""OpenAI body fields qroute cannot honour, with the reason given to the user."""

IGNORED_ANTHROPIC_FIELDS = frozenset({"metadata", "top_k", "service_tier"})
REFUSED_ANTHROPIC_FIELDS = {
    "tools": "tool use is not supported (text chat only)",
    "tool_choice": "tool use is not supported (text chat only)",
    "thinking": "extended thinking is not supported",
    "mcp_servers": "MCP servers are not supported",
    "container": "containers are not supported",
}

_JOB_ID = re.compile(JOB_ID_PATTERN)


def _job_id(value: str) -> str:
    if not _JOB_ID.match(value):
        raise ValueError(
            "must be usable as a job id: 1-128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return value


CustomId = Annotated[str, AfterValidator(_job_id)]
"""Becomes the job id, so it must be one."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _text_content(value: Any) -> Any:
    """A string, or a list of text parts joined: `[{"type": "text", "text": "..."}]`."""
    if not isinstance(value, list):
        return value
    texts: list[str] = []
    for index, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            raise ValueError(f"part {index}: only text parts are supported, got {kind!r}")
        texts.append(part["text"])
    return "".join(texts)


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, BeforeValidator(_text_content), AfterValidator(_not_empty)]
"""Message content: a non-empty string, or text parts that join into one."""


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Stops = Annotated[list[str], BeforeValidator(_one_or_many), Field(max_length=4)]


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text


class ResponseFormat(_Open):
    type: Literal["text", "json_object"]


class ChatBody(_Open):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: Stops | None = None
    response_format: ResponseFormat | None = None
    n: Literal[1] | None = None
    stream: Literal[False] | None = None
    logprobs: Literal[False] | None = None


class OpenAIBatchLine(_Strict):
    """One line of an OpenAI Batch API input file."""

    custom_id: CustomId
    method: Literal["POST"]
    url: Literal["/v1/chat/completions"]
    body: ChatBody


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: Text


class MessagesParams(_Open):
    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=MAX_TOKENS_LIMIT)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: Text | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop_sequences: Stops | None = None
    stream: Literal[False] | None = None


class AnthropicBatchLine(_Strict):
    """One request of an Anthropic Message Batches file (`{"custom_id", "params"}`)."""

    custom_id: CustomId
    params: MessagesParams


class RefusedField(ValueError):
    """A field the line may contain in its own API, but qroute cannot honour. `field` is its path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def _refuse(
    extra: dict[str, Any] | None, refused: dict[str, str], ignored: frozenset[str], where: str
) -> None:
    for name in extra or {}:
        if name in refused:
            raise RefusedField(f"{where}.{name}", refused[name])
        if name not in ignored:
            raise RefusedField(f"{where}.{name}", "unknown field")


def openai_job(line: OpenAIBatchLine) -> dict[str, Any]:
    """Job data (not yet validated as a `Job`) for an OpenAI Batch line."""
    body = line.body
    _refuse(body.model_extra, REFUSED_OPENAI_FIELDS, IGNORED_OPENAI_FIELDS, "body")
    params: dict[str, Any] = {}
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if body.temperature is not None:
        params["temperature"] = body.temperature
    if body.top_p is not None:
        params["top_p"] = body.top_p
    if body.stop is not None:
        params["stop"] = body.stop
    if body.response_format is not None:
        params["response_format"] = body.response_format.type
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in body.messages
    ]
    return {
        "id": line.custom_id,
        "messages": messages,
        "params": params,
        "constraints": {"allowed_models": [body.model]},
        "metadata": {"custom_id": line.custom_id},
    }


def anthropic_job(line: AnthropicBatchLine) -> dict[str, Any]:
    """Job data (not yet validated as a `Job`) for an Anthropic Message Batches request."""
    p = line.params
    _refuse(p.model_extra, REFUSED_ANTHROPIC_FIELDS, IGNORED_ANTHROPIC_FIELDS, "params")
    params: dict[str, Any] = {"max_tokens": p.max_tokens}
    if p.temperature is not None:
        params["temperature"] = p.temperature
    if p.top_p is not None:
        params["top_p"] = p.top_p
    if p.stop_sequences is not None:
        params["stop"] = p.stop_sequences
    job: dict[str, Any] = {
        "id": line.custom_id,
        "messages": [{"role": m.role, "content": m.content} for m in p.messages],
        "params": params,
        "constraints": {"allowed_models": [p.model]},
        "metadata": {"custom_id": line.custom_id},
    }
    if p.system is not None:
        job["system"] = p.system
    return job
