"""From what a caller hands `submit()` to the bytes that go on the wire, or a `JobRejected`.

Everything that can be checked without the broker is checked here, before anything
is sent: the schema (with the same messages the worker's dead-letter topic would
give) and the size cap the workers enforce (`worker.max_job_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from qroute.client.errors import JobRejected
from qroute.codec import describe_validation_error, encode
from qroute.models import SCHEMA_VERSION, Job
from qroute.worker.headers import CONTENT_TYPE, SCHEMA, SCHEMA_VERSION_HEADER

JOB_HEADERS: dict[str, str] = {
    CONTENT_TYPE: "application/json",
    SCHEMA: "job",
    SCHEMA_VERSION_HEADER: str(SCHEMA_VERSION),
}
"""Headers on every job record: consumers can dispatch on the schema without parsing the body."""


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A validated job and its record value."""

    job: Job
    value: bytes

    @property
    def key(self) -> bytes:
        return self.job.id.encode()


def coerce_job(job: Job | Mapping[str, Any]) -> Job:
    """The job as a validated `Job`; a mapping is validated, a `Job` is taken as built."""
    if isinstance(job, Job):
        return job
    if not isinstance(job, Mapping):
        raise JobRejected(f"a job must be a Job or a mapping, got {type(job).__name__}")
    job_id = job.get("id") if isinstance(job.get("id"), str) else None
    try:
        return Job.model_validate(dict(job))
    except ValidationError as exc:
        message, details = describe_validation_error(exc)
        raise JobRejected(message, job_id=job_id, details=details) from None


def prepare(job: Job | Mapping[str, Any], *, reply_to: str | None, max_bytes: int) -> PreparedJob:
    """Validate, fill in `reply_to` when the client listens on a non-default topic, encode, size-check."""
    checked = coerce_job(job)
    if reply_to is not None and checked.reply_to is None:
        checked = checked.model_copy(update={"reply_to": reply_to})
    value = encode(checked)
    if len(value) > max_bytes:
        raise JobRejected(
            f"job is {len(value)} bytes, larger than the workers' {max_bytes}-byte cap (worker.max_job_bytes)",
            job_id=checked.id,
        )
    return PreparedJob(checked, value)
