"""Bytes ⇄ contracts. Decoding never raises: bad input becomes a `DecodeFailure` value.

The worker turns a failure into a `DeadLetter` with the original bytes, so nothing
is lost and the partition keeps moving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from qroute.models import DeadLetterReason, Job

DEFAULT_MAX_JOB_BYTES = 1024 * 1024
"""Default size cap on one job record (1 MiB); `worker.max_job_bytes` changes it."""


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a record is not a valid job. `message` names the field and the problem."""

    reason: DeadLetterReason
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    job_id: str | None = None


def describe_validation_error(error: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """One line per problem, `field.path: message`, plus JSON-safe details."""
    lines: list[str] = []
    details: list[dict[str, Any]] = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in item["loc"]) or "(job)"
        lines.append(f"{loc}: {item['msg']}")
        details.append({"field": loc, "type": item["type"], "message": item["msg"]})
    return "; ".join(lines), details


def decode_job(raw: bytes | None, *, max_bytes: int = DEFAULT_MAX_JOB_BYTES) -> Job | DecodeFailure:
    """Decode one record value into a `Job`, or say exactly why not."""
    if raw is None:
        return DecodeFailure("undecodable", "record has no value (null)")
    if len(raw) > max_bytes:
        return DecodeFailure("oversize", f"job is {len(raw)} bytes, larger than the {max_bytes}-byte cap")
    try:
        # Fast path for the common case, a valid job: pydantic parses the bytes itself
        # (about half the CPU of json.loads + model_validate). Anything it refuses takes
        # the path below, which says precisely what is wrong.
        return Job.model_validate_json(raw)
    except ValidationError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeFailure("undecodable", f"value is not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return DecodeFailure(
            "invalid_json", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    if not isinstance(data, dict):
        return DecodeFailure("schema_violation", f"a job must be a JSON object, got {type(data).__name__}")
    job_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        message, details = describe_validation_error(exc)
        return DecodeFailure("schema_violation", message, details, job_id)


def encode(message: BaseModel) -> bytes:
    """Serialise a contract to compact UTF-8 JSON (money as strings, times as RFC 3339)."""
    return message.model_dump_json(exclude_none=False).encode()
