"""One input line → a `Job`, or the reason it is not one. Never raises on bad input.

A line's format is recognised from its shape, so one file may mix them:
- `{"custom_id", "method", "url", "body"}`: an OpenAI Batch API request;
- `{"custom_id", "params"}`: an Anthropic Message Batches request;
- anything else: a qroute `Job`.
`LineOptions.force` pins one format; lines of another shape are then errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from qroute.batchfile.foreign import (
    AnthropicBatchLine,
    OpenAIBatchLine,
    RefusedField,
    anthropic_job,
    openai_job,
)
from qroute.codec import describe_validation_error, encode
from qroute.models import Job

InputFormat = Literal["qroute", "openai-batch", "anthropic-batch"]
INPUT_FORMATS: tuple[InputFormat, ...] = ("qroute", "openai-batch", "anthropic-batch")


@dataclass(frozen=True, slots=True)
class JobOverrides:
    """Fields the command line sets on every job.

    `batch_id`, `tenant`, `deadline` and `max_cost_usd` replace what a line says;
    `default_batch_id` only fills in lines without a batch id.
    """

    batch_id: str | None = None
    default_batch_id: str | None = None
    tenant: str | None = None
    deadline: datetime | None = None
    max_cost_usd: Decimal | None = None

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of `data` with the overrides set (the input is not changed)."""
        out = dict(data)
        if self.batch_id is not None:
            out["batch_id"] = self.batch_id
        elif self.default_batch_id is not None and out.get("batch_id") is None:
            out["batch_id"] = self.default_batch_id
        if self.tenant is not None:
            out["tenant"] = self.tenant
        if self.deadline is not None or self.max_cost_usd is not None:
            raw = out.get("constraints")
            constraints = dict(raw) if isinstance(raw, Mapping) else {} if raw is None else raw
            if isinstance(constraints, dict):
                if self.deadline is not None:
                    constraints["deadline"] = self.deadline
                if self.max_cost_usd is not None:
                    constraints["max_cost_usd"] = self.max_cost_usd
            out["constraints"] = constraints
        return out


KnownModel = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class LineOptions:
    """How lines are read: a pinned format, overrides, and an optional model-name check."""

    force: InputFormat | None = None
    overrides: JobOverrides = field(default_factory=JobOverrides)
    known_model: KnownModel | None = None
    catalog_name: str = "the catalog"
    max_bytes: int | None = None
    """Size cap on the encoded job (the workers' `worker.max_job_bytes`); None: no check."""


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A valid line."""

    number: int
    format: InputFormat
    job: Job


@dataclass(frozen=True, slots=True)
class LineError:
    """A rejected line: its 1-based number, the format it looked like (if any) and why."""

    number: int
    format: InputFormat | None
    reason: str

    def __str__(self) -> str:
        kind = f" ({self.format})" if self.format else ""
        return f"line {self.number}{kind}: {self.reason}"


def detect_format(data: Mapping[str, Any]) -> InputFormat:
    """Which format a decoded line is written in, from its keys."""
    if "custom_id" in data:
        if "params" in data and "body" not in data:
            return "anthropic-batch"
        return "openai-batch"
    return "qroute"


def parse_line(text: str | bytes, number: int, options: LineOptions) -> ParsedLine | LineError | None:
    """The job on this line, why there is none, or None for a blank line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return LineError(number, None, f"not UTF-8 ({exc.reason} at byte {exc.start})")
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return LineError(number, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return LineError(number, None, "invalid JSON: nested too deeply")
    if not isinstance(data, dict):
        return LineError(number, None, f"a line must be a JSON object, got {_json_kind(data)}")
    kind = detect_format(data)
    if options.force is not None and kind != options.force:
        return LineError(number, kind, f"looks like {kind}, but the input format is {options.force}")
    try:
        job_data = _job_data(kind, data)
    except ValidationError as exc:
        return LineError(number, kind, describe_validation_error(exc)[0])
    except RefusedField as exc:
        return LineError(number, kind, str(exc))
    try:
        job = Job.model_validate(options.overrides.apply(job_data))
    except ValidationError as exc:
        return LineError(number, kind, describe_validation_error(exc)[0])
    unknown = [m for m in job.constraints.allowed_models or () if not _known(options, m)]
    if unknown:
        names = ", ".join(repr(m) for m in unknown)
        return LineError(number, kind, f"unknown model {names}: not in {options.catalog_name}")
    if options.max_bytes is not None and (size := len(encode(job))) > options.max_bytes:
        return LineError(number, kind, f"job is {size} bytes, larger than the {options.max_bytes}-byte cap")
    return ParsedLine(number, kind, job)


def _job_data(kind: InputFormat, data: dict[str, Any]) -> dict[str, Any]:
    """Job data for the line: qroute lines as they are, foreign lines converted."""
    if kind == "openai-batch":
        return openai_job(OpenAIBatchLine.model_validate(data))
    if kind == "anthropic-batch":
        return anthropic_job(AnthropicBatchLine.model_validate(data))
    return data


def _known(options: LineOptions, model: str) -> bool:
    return options.known_model is None or options.known_model(model)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
