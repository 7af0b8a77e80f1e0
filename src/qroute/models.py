"""Wire contracts: what travels on Kafka between producers, workers and consumers.

These pydantic models are the source of truth; `schemas/*.json` is generated from
them (`qroute schemas export`) and a test fails when the two drift apart.

Compatibility rules:
- every message carries `schema_version`; this is version 1;
- unknown fields are ignored on decode (a newer producer never breaks an older worker);
- money is exact: `Decimal` USD, serialised as a string (see `qroute.money`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qroute.money import ZERO, Money

SCHEMA_VERSION: Literal[1] = 1

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
"""Job ids are 1-128 characters: letters, digits, and `. _ : -`, starting alphanumeric.

They become Kafka keys and file names in reports, so spaces and slashes are out."""

MAX_TOKENS_LIMIT = 1_000_000
"""Upper bound on `params.max_tokens`: larger than any model's output limit today."""

Capability = Literal["json_mode", "tools", "vision"]
"""What a job may require of a model. The catalog lists what each model supports."""

Tier = Annotated[int, Field(ge=1, le=4)]
"""Quality tier of a model: 1 small/fast, 2 mid, 3 strong, 4 frontier."""

Role = Literal["system", "user", "assistant"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Wire(BaseModel):
    """Base for wire messages: ignore unknown fields, keep things explicit."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, ser_json_timedelta="float")


class Message(_Wire):
    """One chat message."""

    role: Role
    content: str = Field(min_length=1, description="Message text; must not be empty.")


class Params(_Wire):
    """Generation parameters, mapped onto each provider's request format."""

    max_tokens: int = Field(
        default=1024, ge=1, le=MAX_TOKENS_LIMIT, description="Upper bound on generated tokens."
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[str] | None = Field(default=None, max_length=4)
    response_format: Literal["text", "json_object"] = "text"


class Constraints(_Wire):
    """What a route must satisfy for this job; the planner drops routes that do not."""

    allowed_models: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these models (catalog model names, or provider/model route ids).",
    )
    min_tier: Tier | None = None
    required_capabilities: list[Capability] = Field(default_factory=list)
    max_cost_usd: Money | None = Field(
        default=None, description="Hard cap on what this job may cost in total, in USD."
    )
    deadline: datetime | None = Field(
        default=None,
        description="When the answer stops being useful. A past deadline is valid: the job fails as expired.",
    )
    excluded_providers: list[str] = Field(default_factory=list)
    max_attempts: int | None = Field(default=None, ge=1, le=50)

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("deadline needs a timezone, e.g. 2026-11-23T06:00:00Z")
        return value


class Job(_Wire):
    """A completion job, as producers publish it to `qroute.jobs`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=JOB_ID_PATTERN, description="Unique job id; also the Kafka key.")
    created_at: datetime = Field(default_factory=utc_now)
    tenant: str = Field(default="default", min_length=1, max_length=128)
    batch_id: str | None = Field(default=None, max_length=128)
    task: str = Field(default="chat", min_length=1, max_length=64)
    system: str | None = Field(default=None, description="Optional system prompt.")
    messages: list[Message] = Field(min_length=1)
    params: Params = Field(default_factory=Params)
    constraints: Constraints = Field(default_factory=Constraints)
    reply_to: str | None = Field(default=None, max_length=249)
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _created_aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Usage(_Wire):
    """Provider-reported token usage, normalised across API families.

    `input_tokens` counts every prompt token including cached ones;
    `cached_input_tokens` and `cache_write_tokens` are the parts of it billed at
    cache prices. `output_tokens` includes `reasoning_tokens`.
    """

    input_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _parts_fit(self) -> Usage:
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cached + cache-write tokens exceed input tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning tokens exceed output tokens")
        return self


AttemptOutcome = Literal[
    "success",
    "rate_limited",
    "quota_exhausted",
    "overloaded",
    "server_error",
    "timeout",
    "connection_error",
    "malformed_response",
    "context_length",
    "bad_request",
    "content_filter",
    "auth_error",
    "not_found",
    "circuit_open",
]
"""How one provider call ended, whatever the provider's own words for it."""

AttemptAction = Literal["done", "retry", "failover", "terminal"]
"""What the attempt loop did next because of it."""


class Attempt(_Wire):
    """One call to one route, with what it cost."""

    n: int = Field(ge=1, description="1-based attempt number within the job.")
    provider: str
    model: str
    outcome: AttemptOutcome
    action: AttemptAction
    status_code: int | None = None
    provider_request_id: str | None = Field(
        default=None,
        description="The provider's own id for this call (x-request-id, request-id or x-goog-request-id "
        "response header), to quote to its support or when disputing a bill; null when no answer "
        "arrived or the provider sent none.",
        max_length=200,
    )
    error: str | None = Field(default=None, description="Provider error message or classification reason.")
    usage: Usage | None = None
    billed: bool = Field(description="Whether the provider bills this attempt (false: cost is zero).")
    cost_usd: Money = ZERO
    started_at: datetime
    duration_ms: float = Field(ge=0)


class AttemptBrief(_Wire):
    """The short form of an attempt carried in a `Result`."""

    provider: str
    model: str
    outcome: AttemptOutcome
    status_code: int | None = None


FailureType = Literal[
    "expired",
    "deadline_exceeded",
    "no_eligible_route",
    "budget_exceeded",
    "attempts_exhausted",
    "provider_rejected",
    "reply_topic_not_allowed",
]
"""Why a job failed, as a machine-readable code."""


class ErrorInfo(_Wire):
    type: FailureType
    message: str


class Timings(_Wire):
    created_at: datetime
    started_at: datetime
    finished_at: datetime
    queue_ms: float = Field(ge=0, description="From job creation to the worker starting it.")
    run_ms: float = Field(ge=0, description="From start to finish inside the worker, waits included.")


class Result(_Wire):
    """The answer to a job, published to `job.reply_to` (if allowed) or `qroute.results`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    tenant: str
    batch_id: str | None = None
    status: Literal["succeeded", "failed"]
    output: str | None = None
    finish_reason: str | None = None
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    cost_usd: Money = ZERO
    attempts: list[AttemptBrief] = Field(default_factory=list)
    timings: Timings
    error: ErrorInfo | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _status_consistent(self) -> Result:
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed result must carry an error")
        if self.status == "succeeded" and self.output is None:
            raise ValueError("a succeeded result must carry output")
        return self


class CostRecord(_Wire):
    """What one job cost, every attempt listed. Published to `qroute.costs`, one per job.

    `total_cost_usd` is the exact sum of the attempts' costs; billing consumers
    can add these records up and match the providers' invoices.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    tenant: str
    batch_id: str | None = None
    attempts: list[Attempt]
    total_cost_usd: Money
    currency: Literal["USD"] = "USD"
    price_source: str = Field(description="Where the prices came from (catalog name).")
    price_version: str = Field(description="Catalog version the prices were taken from.")
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _total_is_sum(self) -> CostRecord:
        total = sum((a.cost_usd for a in self.attempts), start=Decimal(0))
        if total != self.total_cost_usd:
            raise ValueError(f"total_cost_usd {self.total_cost_usd} != sum of attempts {total}")
        return self


DeadLetterReason = Literal[
    "undecodable",
    "invalid_json",
    "schema_violation",
    "oversize",
    "unknown_model",
    "processing_error",
]
"""Why a record was dead-lettered. `processing_error`: the worker's processor raised twice (a bug)."""


class DeadLetter(_Wire):
    """An input record the worker could not accept, with enough to replay or fix it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    reason: DeadLetterReason
    message: str = Field(description="Human-readable reason, with the field at fault where known.")
    details: list[dict[str, Any]] = Field(default_factory=list)
    job_id: str | None = Field(default=None, description="The job id, when one could be read.")
    payload_b64: str = Field(description="The original record value, base64.")
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    received_at: datetime = Field(default_factory=utc_now)


WIRE_MODELS: dict[str, type[BaseModel]] = {
    "job": Job,
    "result": Result,
    "cost_record": CostRecord,
    "dead_letter": DeadLetter,
}
"""The four contracts by schema name (the file stem in `schemas/`)."""
