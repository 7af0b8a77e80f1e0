"""Result lines for a results file: qroute's own `Result` JSON, or the OpenAI Batch output format.

The OpenAI form lets a pipeline written for the OpenAI Batch API read qroute's
output unchanged. A succeeded job becomes
`{"id", "custom_id", "response": {"status_code": 200, "request_id", "body": <chat.completion>}, "error": null}`;
a failed one `{"id", "custom_id", "response": null, "error": {"code": <qroute failure type>, "message"}}`.
`custom_id` is the one from the input line (kept in the job's metadata), else the job id.
Ids are derived from the job id, so rendering the same result twice gives the same line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from qroute.codec import encode
from qroute.models import Result

OutputFormat = Literal["qroute", "openai-batch"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("qroute", "openai-batch")

_OPENAI_FINISH = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def qroute_line(result: Result) -> bytes:
    """The result as qroute's wire JSON, one line."""
    return encode(result) + b"\n"


def _digest(job_id: str) -> str:
    return hashlib.sha256(job_id.encode()).hexdigest()[:32]


def chat_completion(result: Result) -> dict[str, Any]:
    """An OpenAI `chat.completion` object for a succeeded result."""
    finish = result.finish_reason if result.finish_reason in _OPENAI_FINISH else "stop"
    body: dict[str, Any] = {
        "id": f"chatcmpl-{_digest(result.job_id)}",
        "object": "chat.completion",
        "created": int(result.timings.finished_at.timestamp()),
        "model": result.model or "unknown",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.output, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "system_fingerprint": None,
    }
    if result.usage is not None:
        usage = result.usage
        body["usage"] = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        }
    return body


def openai_batch_record(result: Result) -> dict[str, Any]:
    """One OpenAI Batch output object for the result."""
    digest = _digest(result.job_id)
    record: dict[str, Any] = {
        "id": f"batch_req_{digest}",
        "custom_id": result.metadata.get("custom_id", result.job_id),
        "response": None,
        "error": None,
    }
    if result.status == "succeeded":
        record["response"] = {
            "status_code": 200,
            "request_id": f"req_{digest}",
            "body": chat_completion(result),
        }
    else:
        error = result.error
        record["error"] = {
            "code": error.type if error else "failed",
            "message": error.message if error else "the job failed",
        }
    return record


def openai_batch_line(result: Result) -> bytes:
    return json.dumps(openai_batch_record(result), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


RENDERERS: dict[OutputFormat, Callable[[Result], bytes]] = {
    "qroute": qroute_line,
    "openai-batch": openai_batch_line,
}
