"""OpenAI Chat Completions as the simulator speaks it (reference §1.2, §2).

Shapes follow `openai.types.chat.ChatCompletion` (3.x SDK); errors are
`{"error": {"message", "type", "param", "code"}}`; rate-limit headers are the
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` triples with Go-style
durations, plus `retry-after` / `retry-after-ms` on 429.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qroute.providers.ratelimit import format_go_duration
from qroute.sim.config import Family
from qroute.sim.limits import BucketState, LimitState
from qroute.sim.wire import Answer, ParsedRequest, SimError, content_text, positive_int

_ERROR_TYPE_CODE: dict[str, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "context_length": ("invalid_request_error", "context_length_exceeded"),
    "not_found": ("invalid_request_error", "model_not_found"),
    "server_error": ("server_error", None),
    "unavailable": ("service_unavailable_error", "server_is_overloaded"),
    "overloaded": ("server_error", "overloaded"),
}


class OpenAIWire:
    """Chat Completions request parsing and response rendering."""

    family: Family = "openai"
    endpoint = "chat/completions"

    def parse(self, body: Any, headers: Mapping[str, str]) -> ParsedRequest | SimError:
        if not isinstance(body, dict):
            return _invalid("The request body must be a JSON object.", None)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid("'messages' must be a non-empty array.", "messages")
        texts = []
        for i, message in enumerate(messages):
            text = content_text(message.get("content")) if isinstance(message, dict) else None
            if text is None or not isinstance(message.get("role"), str):
                return _invalid(f"Invalid value for 'messages[{i}]'.", f"messages[{i}]")
            texts.append(text)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and not positive_int(max_tokens):
            return _invalid("max_completion_tokens must be a positive integer.", "max_completion_tokens")
        if body.get("stream"):
            return _invalid("The simulator does not support stream=true.", "stream")
        response_format = body.get("response_format")
        json_mode = isinstance(response_format, dict) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        return ParsedRequest(model, "\n".join(texts), len(messages), max_tokens, json_mode)

    def success(self, answer: Answer, created: int) -> dict[str, Any]:
        content = None if answer.finish == "content_filter" else answer.text
        body: dict[str, Any] = {
            "id": f"chatcmpl-{answer.request_id.removeprefix('req_')}",
            "object": "chat.completion",
            "created": created,
            "model": answer.model,
            "service_tier": "default",
            "system_fingerprint": "fp_qroutesim",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": answer.finish,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                }
            ],
        }
        usage = answer.usage
        if usage is not None:
            body["usage"] = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": usage.reasoning_tokens,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                    "audio_tokens": 0,
                },
            }
        return body

    def error(self, error: SimError, request_id: str) -> dict[str, Any]:
        kind: str
        code: str | None
        if error.kind == "rate_limit":
            kind, code = error.bucket or "requests", "rate_limit_exceeded"
        else:
            kind, code = _ERROR_TYPE_CODE[error.kind]
        return {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}

    def id_headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": request_id}

    def limit_headers(self, state: LimitState, now_epoch: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        _bucket_headers(headers, "requests", state.requests)
        _bucket_headers(headers, "tokens", state.tokens)
        return headers

    def retry_headers(self, wait_s: float) -> dict[str, str]:
        return {
            "retry-after": str(max(1, math.ceil(wait_s))),
            "retry-after-ms": str(math.ceil(wait_s * 1000)),
        }


def _bucket_headers(headers: dict[str, str], name: str, bucket: BucketState | None) -> None:
    if bucket is None:
        return
    headers[f"x-ratelimit-limit-{name}"] = str(bucket.limit)
    headers[f"x-ratelimit-remaining-{name}"] = str(bucket.remaining)
    # OpenAI reports resets to the millisecond: "6ms", "1.574s", "6m0s".
    headers[f"x-ratelimit-reset-{name}"] = format_go_duration(round(bucket.reset_s, 3))


def _invalid(message: str, param: str | None) -> SimError:
    return SimError(400, "invalid_request", message, param=param)
