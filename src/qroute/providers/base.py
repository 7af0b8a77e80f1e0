"""What every provider adapter produces: a classified outcome, never an exception.

Adapters build an `httpx.Request` from a job and parse an `httpx.Response` (or a
transport error) into a `ProviderOutcome`. They never own connections; the
worker's one shared client (`qroute.providers.http.HttpClient`) sends the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from qroute.catalog.types import Route
from qroute.models import AttemptAction, AttemptOutcome, Job, Usage


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """Quota a provider reported in its response headers, as absolute wall-clock times.

    Any field may be None when the provider did not say. Reset times are UNIX
    epoch seconds, so the snapshot stays meaningful after the response is old.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    requests_reset_at: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    tokens_reset_at: float | None = None


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    """One provider call, classified.

    `action` says what the attempt loop should do: `done` (success), `retry`
    the same route, `failover` to another route, or `terminal` for the job.
    `billed` says whether the provider charges for this call; when it does,
    `usage` is what it billed. `request_id` is what the provider's support asks
    for when a call is disputed.
    """

    outcome: AttemptOutcome
    action: AttemptAction
    status_code: int | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    billed: bool = False
    error: str | None = None
    retry_after_s: float | None = None
    rate_limit: RateLimitSnapshot | None = None
    request_id: str | None = None
    """The provider's id for this call, from its response headers; None when no answer arrived."""


class Adapter(Protocol):
    """One API family (OpenAI Chat Completions, Anthropic Messages, Gemini generateContent)."""

    def build_request(self, job: Job, route: Route, api_key: str | None) -> httpx.Request:
        """Map the canonical job onto this API's HTTP request."""
        ...

    def parse_response(self, response: httpx.Response, now: float) -> ProviderOutcome:
        """Turn any response (2xx or error, well-formed or garbage) into an outcome.

        `now` is the wall-clock time (epoch seconds) the response arrived, used to
        turn relative reset headers into absolute times.
        """
        ...
