"""From a record's bytes to a job the processor may run, or the reason it may not.

Three gates, all before any provider call:
- the bytes must decode into a valid `Job` (else a dead letter with the reason);
- every model the job names must exist in the catalog (else dead letter
  `unknown_model`: the producer has a typo, retrying cannot help);
- its `reply_to` must start with an allowed prefix (else a failed result on the
  default results topic: the job is fine, its destination is not; publishing to
  any topic a producer names would let producers write into other teams' topics).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from qroute.catalog.types import Catalog
from qroute.codec import DecodeFailure, decode_job
from qroute.models import CostRecord, DeadLetter, DeadLetterReason, ErrorInfo, Job, Result, Timings
from qroute.worker.headers import SourceRef
from qroute.worker.processing import Finished

KnownModel = Callable[[str], bool]
"""True when a name from `constraints.allowed_models` (model name or route id) is in the catalog."""


def known_models(catalog: Catalog) -> KnownModel:
    """A `KnownModel` check for every model of the catalog, by model name or `provider/model` route id.

    Disabled models count as known: a job naming one fails at planning with
    `no_eligible_route` (a configuration matter), not in the dead-letter topic.
    """
    names = frozenset(m.model for m in catalog.models) | frozenset(m.route_id for m in catalog.models)
    return names.__contains__


def dead_letter(
    raw: bytes | None,
    source: SourceRef,
    reason: DeadLetterReason,
    message: str,
    *,
    details: list[dict[str, object]] | None = None,
    job_id: str | None = None,
) -> DeadLetter:
    """A dead letter carrying the original bytes (base64) and where they were read."""
    return DeadLetter(
        reason=reason,
        message=message,
        details=list(details or []),
        job_id=job_id,
        payload_b64=base64.b64encode(raw or b"").decode("ascii"),
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
    )


def admit(
    raw: bytes | None, source: SourceRef, *, max_bytes: int, known_model: KnownModel | None
) -> Job | DeadLetter:
    """Decode and check a record; a `DeadLetter` explains why it cannot run."""
    decoded = decode_job(raw, max_bytes=max_bytes)
    if isinstance(decoded, DecodeFailure):
        return dead_letter(
            raw,
            source,
            decoded.reason,
            decoded.message,
            details=list(decoded.details),
            job_id=decoded.job_id,
        )
    unknown = [
        name
        for name in decoded.constraints.allowed_models or ()
        if known_model is not None and not known_model(name)
    ]
    if unknown:
        return dead_letter(
            raw,
            source,
            "unknown_model",
            f"constraints.allowed_models names models not in the catalog: {', '.join(unknown)}",
            details=[{"field": "constraints.allowed_models", "unknown": unknown}],
            job_id=decoded.id,
        )
    return decoded


def reply_topic(job: Job, *, allowed_prefixes: Sequence[str], default: str) -> str | None:
    """Where the job's result goes: its `reply_to` if allowed, the default if unset, None if refused."""
    if job.reply_to is None:
        return default
    if any(job.reply_to.startswith(prefix) for prefix in allowed_prefixes):
        return job.reply_to
    return None


def refused_reply(
    job: Job, *, allowed_prefixes: Sequence[str], price_source: str, price_version: str
) -> Finished:
    """The failed result (and zero-attempt cost record) for a job whose reply_to is not allowed."""
    now = datetime.now(UTC)
    queue_ms = max(0.0, (now - job.created_at).total_seconds() * 1000)
    result = Result(
        job_id=job.id,
        tenant=job.tenant,
        batch_id=job.batch_id,
        status="failed",
        timings=Timings(
            created_at=job.created_at, started_at=now, finished_at=now, queue_ms=queue_ms, run_ms=0.0
        ),
        error=ErrorInfo(
            type="reply_topic_not_allowed",
            message=f"reply_to {job.reply_to!r} does not start with an allowed prefix "
            f"({', '.join(allowed_prefixes) or 'none configured'}); the job was not run",
        ),
        metadata=job.metadata,
    )
    cost = CostRecord(
        job_id=job.id,
        tenant=job.tenant,
        batch_id=job.batch_id,
        attempts=[],
        total_cost_usd=Decimal(0),
        price_source=price_source,
        price_version=price_version,
        created_at=now,
    )
    return Finished(result=result, cost=cost)
