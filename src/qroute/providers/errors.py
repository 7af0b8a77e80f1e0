"""Error bodies of every provider, read into one shape.

The families disagree on where things live:
- OpenAI and compatibles: `{"error": {"message", "type", "param", "code"}}` (Azure:
  `code` may be the status as a string; OpenRouter: `code` is an int);
- Anthropic: `{"type": "error", "error": {"type", "message", "details": {"error_code"}}}`;
- Gemini: `{"error": {"code": 429, "message", "status", "details": [google.rpc.*]}}`,
  sometimes wrapped in a JSON array;
- vLLM: `{"object": "error", "message", "type", "code"}`; Ollama: `{"error": "text"}`;
- Together: `error_type` next to or inside `error`.

Classification branches on `type`/`code`/`status` values, never on free text,
except where a provider documents no code (Anthropic "prompt is too long",
Gemini token-count messages, OpenAI "Request too large").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qroute.providers.ratelimit import parse_go_duration

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

MAX_MESSAGE_CHARS = 500
"""Provider messages are copied into results and logs; keep them short."""


@dataclass(frozen=True, slots=True)
class ProviderError:
    """What an error body said, normalised.

    `codes` holds every machine-readable token found (OpenAI `type` and `code`,
    Anthropic `error.type` and `details.error_code`, Gemini `status` and
    `ErrorInfo.reason`, Together `error_type`), lower-cased.
    """

    message: str | None = None
    codes: frozenset[str] = frozenset()
    embedded_status: int | None = None
    """A numeric HTTP-like code inside the body (Gemini `code`, OpenRouter `code`)."""
    quota_ids: tuple[str, ...] = ()
    """Gemini `QuotaFailure.violations[].quotaId` values."""
    retry_delay_s: float | None = None
    """Gemini `RetryInfo.retryDelay`, in seconds."""


NO_ERROR = ProviderError()


def load_json(body: bytes) -> Any:
    """The decoded JSON body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def parse_error(data: Any) -> ProviderError:
    """Read any family's error body (already JSON-decoded); NO_ERROR if there is none."""
    if isinstance(data, list) and data:  # Gemini's non-SSE stream form wraps errors in an array
        data = data[0]
    if not isinstance(data, dict):
        return NO_ERROR
    err = data.get("error")
    if isinstance(err, str):  # Ollama native, some proxies
        return ProviderError(message=_short(err), codes=_codes(data.get("type"), data.get("error_type")))
    if not isinstance(err, dict):
        if data.get("object") == "error":  # older vLLM
            return ProviderError(
                message=_short(data.get("message")),
                codes=_codes(data.get("type"), data.get("code")),
                embedded_status=_status(data.get("code")),
            )
        return NO_ERROR

    tokens: list[Any] = [err.get("type"), err.get("code"), err.get("status"), err.get("error_type")]
    tokens.append(data.get("error_type"))
    details = err.get("details")
    if isinstance(details, dict):  # Anthropic
        tokens.append(details.get("error_code"))
    quota_ids: list[str] = []
    retry_delay: float | None = None
    if isinstance(details, list):  # Gemini google.rpc details
        for item in details:
            if not isinstance(item, dict):
                continue
            kind = item.get("@type")
            if kind == RETRY_INFO and isinstance(item.get("retryDelay"), str):
                retry_delay = parse_go_duration(item["retryDelay"])
            elif kind == QUOTA_FAILURE:
                quota_ids.extend(_quota_ids(item.get("violations")))
            elif kind == ERROR_INFO:
                tokens.append(item.get("reason"))
    inner = err.get("innererror")
    if isinstance(inner, dict):  # Azure content filter
        tokens.append(inner.get("code"))
    return ProviderError(
        message=_short(err.get("message")),
        codes=_codes(*tokens),
        embedded_status=_status(err.get("code")),
        quota_ids=tuple(quota_ids),
        retry_delay_s=retry_delay,
    )


def _quota_ids(violations: Any) -> list[str]:
    if not isinstance(violations, list):
        return []
    return [v["quotaId"] for v in violations if isinstance(v, dict) and isinstance(v.get("quotaId"), str)]


def _codes(*values: Any) -> frozenset[str]:
    return frozenset(v.lower() for v in values if isinstance(v, str) and v)


def _status(value: Any) -> int | None:
    """A status number from an int or a numeric string; bool and other types are not statuses."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= MAX_MESSAGE_CHARS else value[: MAX_MESSAGE_CHARS - 1] + "…"
