"""What the two simulated API families share: parsed requests, answers, errors, the `Wire` seam.

The engine decides *what* happens to a request in family-neutral terms; a
`Wire` (OpenAI Chat Completions or Anthropic Messages) renders it in that
family's exact JSON shapes and headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from qroute.sim.config import Family
from qroute.sim.limits import BucketKind, LimitState

DEFAULT_MAX_OUTPUT = 4096
"""Output cap assumed when an OpenAI request sets none (Anthropic requires one)."""

Finish = Literal["stop", "length", "content_filter"]

ErrorKind = Literal[
    "invalid_request",
    "context_length",
    "not_found",
    "rate_limit",
    "server_error",
    "unavailable",
    "overloaded",
]


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """The parts of a completion request the simulator acts on."""

    model: str
    prompt: str
    """Every message's text (system included), joined by newlines."""
    messages: int
    max_tokens: int | None
    json_mode: bool


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """Token counts in qroute's convention: input includes cached, output includes reasoning."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful completion to render."""

    request_id: str
    model: str
    text: str
    finish: Finish
    usage: UsageCounts | None
    """None renders the body without usage (the `no-usage` fault)."""


@dataclass(frozen=True, slots=True)
class SimError:
    """An error answer in family-neutral terms."""

    status: int
    kind: ErrorKind
    message: str
    bucket: BucketKind | None = None
    """For rate limits: which budget ran out (OpenAI puts it in `error.type`)."""
    param: str | None = None


class Wire(Protocol):
    """One API family's request parsing and response rendering."""

    family: Family
    endpoint: str
    """Path after `/{provider}/v1/`: `chat/completions` or `messages`."""

    def parse(self, body: Any, headers: Mapping[str, str]) -> ParsedRequest | SimError: ...

    def success(self, answer: Answer, created: int) -> dict[str, Any]: ...

    def error(self, error: SimError, request_id: str) -> dict[str, Any]: ...

    def id_headers(self, request_id: str) -> dict[str, str]: ...

    def limit_headers(self, state: LimitState, now_epoch: float) -> dict[str, str]: ...

    def retry_headers(self, wait_s: float) -> dict[str, str]: ...


def content_text(content: Any) -> str | None:
    """Text of a message's `content`: a string, or the text blocks of a block list; None if malformed."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        return None
    parts = []
    for block in content:
        if not isinstance(block, dict):
            return None
        text = block.get("text")
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def positive_int(value: Any) -> bool:
    """JSON integers only (`true` is not a token count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
