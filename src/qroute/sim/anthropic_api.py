"""Anthropic Messages as the simulator speaks it (reference §1.2, §3).

Shapes follow `anthropic.types.Message` (2.x SDK): `usage.input_tokens`
EXCLUDES cache reads, which are reported in `cache_read_input_tokens`; thinking
is inside `output_tokens` and repeated in `output_tokens_details`. Errors are
`{"type": "error", "error": {"type", "message"}, "request_id"}`; rate-limit
headers are `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` with
RFC 3339 UTC reset times, plus `retry-after` on 429.

Requests must carry `anthropic-version`; under `2026-10-21` and later,
`temperature`/`top_p`/`top_k` are refused with 400, as the real API does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from qroute.sim.config import Family
from qroute.sim.limits import BucketState, LimitState
from qroute.sim.wire import Answer, ParsedRequest, SimError, content_text, positive_int

SAMPLING_REFUSED_FROM = "2026-10-21"

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "context_length": "invalid_request_error",
    "not_found": "not_found_error",
    "rate_limit": "rate_limit_error",
    "server_error": "api_error",
    "unavailable": "api_error",
    "overloaded": "overloaded_error",
}


class AnthropicWire:
    """Messages request parsing and response rendering."""

    family: Family = "anthropic"
    endpoint = "messages"

    def parse(self, body: Any, headers: Mapping[str, str]) -> ParsedRequest | SimError:
        version = headers.get("anthropic-version")
        if not version:
            return _invalid("anthropic-version: header is required")
        if not isinstance(body, dict):
            return _invalid("The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("model: Field required")
        max_tokens = body.get("max_tokens")
        if not positive_int(max_tokens):
            return _invalid("max_tokens: Field required (a positive integer)")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid("messages: at least one message is required")
        system = content_text(body.get("system"))
        if system is None:
            return _invalid("system: Input should be a valid string or a list of text blocks")
        texts = [system] if system else []
        for i, message in enumerate(messages):
            text = content_text(message.get("content")) if isinstance(message, dict) else None
            if text is None or message.get("role") not in ("user", "assistant"):
                return _invalid(f"messages.{i}: invalid message")
            texts.append(text)
        if version >= SAMPLING_REFUSED_FROM:
            for name in ("temperature", "top_p", "top_k"):
                if name in body:
                    return _invalid(f"{name}: sampling parameters are not supported in API version {version}")
        if body.get("stream"):
            return _invalid("stream: the simulator does not support streaming")
        # The Messages API has no JSON switch; clients ask in the system prompt.
        return ParsedRequest(model, "\n".join(texts), len(messages), max_tokens, "JSON" in system)

    def success(self, answer: Answer, created: int) -> dict[str, Any]:
        content = [{"type": "text", "text": answer.text}] if answer.text else []
        body: dict[str, Any] = {
            "id": f"msg_{answer.request_id.removeprefix('req_')}",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": _STOP_REASONS[answer.finish],
            "stop_sequence": None,
        }
        usage = answer.usage
        if usage is not None:
            body["usage"] = {
                "input_tokens": usage.input_tokens - usage.cached_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": usage.cached_tokens,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": usage.output_tokens,
                "output_tokens_details": {"thinking_tokens": usage.reasoning_tokens},
                "service_tier": "standard",
            }
        return body

    def error(self, error: SimError, request_id: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": _ERROR_TYPES[error.kind], "message": error.message},
            "request_id": request_id,
        }

    def id_headers(self, request_id: str) -> dict[str, str]:
        return {"request-id": request_id}

    def limit_headers(self, state: LimitState, now_epoch: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        _bucket_headers(headers, "requests", state.requests, now_epoch)
        _bucket_headers(headers, "tokens", state.tokens, now_epoch)
        return headers

    def retry_headers(self, wait_s: float) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(wait_s)))}


def rfc3339(epoch: float) -> str:
    """`2025-08-21T12:40:59Z`, rounded up to the second so it never claims a reset too early."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(epoch)))


def _bucket_headers(headers: dict[str, str], name: str, bucket: BucketState | None, now_epoch: float) -> None:
    if bucket is None:
        return
    headers[f"anthropic-ratelimit-{name}-limit"] = str(bucket.limit)
    headers[f"anthropic-ratelimit-{name}-remaining"] = str(bucket.remaining)
    headers[f"anthropic-ratelimit-{name}-reset"] = rfc3339(now_epoch + bucket.reset_s)


def _invalid(message: str) -> SimError:
    return SimError(400, "invalid_request", message)
