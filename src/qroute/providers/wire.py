"""Helpers the three adapters share: request assembly, usage normalisation, parse errors."""

from __future__ import annotations

import functools
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from qroute.catalog.types import Route
from qroute.models import Job, Message, Usage


class WireBody(BaseModel):
    """Base for provider response shapes: unknown fields ignored, frozen, fast."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def json_post(
    url: str, route: Route, auth: dict[str, str], body: dict[str, Any], params: dict[str, str] | None = None
) -> httpx.Request:
    """A JSON POST with auth first and the provider's configured extra headers last (they may override)."""
    headers = {"content-type": "application/json", "accept": "application/json", **auth}
    headers.update(route.provider.headers)
    return httpx.Request(
        "POST", _parsed_url(url, tuple(sorted((params or {}).items()))), headers=headers, json=body
    )


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str, params: tuple[tuple[str, str], ...]) -> httpx.URL:
    """Parse each endpoint once: httpx re-parses the URL string of every request otherwise."""
    parsed = httpx.URL(url)
    return parsed.copy_merge_params(dict(params)) if params else parsed


def max_output(job: Job, route: Route) -> int:
    """The job's cap, never above the model's own output limit (the provider would answer 400)."""
    return min(job.params.max_tokens, route.model.max_output_tokens)


def split_system(job: Job) -> tuple[str | None, list[Message]]:
    """The system prompt (job.system plus any system-role messages) and the remaining turns.

    Anthropic and Gemini take system text out of band; OpenAI keeps it inline.
    """
    parts = [job.system] if job.system else []
    turns: list[Message] = []
    for message in job.messages:
        if message.role == "system":
            parts.append(message.content)
        else:
            turns.append(message)
    return ("\n\n".join(parts) if parts else None), turns


def usage(
    *, input_tokens: int, cached: int = 0, cache_write: int = 0, output_tokens: int, reasoning: int = 0
) -> Usage:
    """A `Usage` that cannot fail validation: detail counts are clamped into their totals.

    Some hosts report cache details that add up to more than the prompt (LiteLLM
    rescales these); a usage the model rejects would lose an exact cost record.
    """
    cached = min(cached, input_tokens)
    cache_write = min(cache_write, input_tokens - cached)
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        output_tokens=output_tokens,
        reasoning_tokens=min(reasoning, output_tokens),
    )


def validation_reason(exc: ValidationError) -> str:
    """The first problem in a response body, as `"choices.0.message: Field required"`."""
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{location}: {first['msg']}"
