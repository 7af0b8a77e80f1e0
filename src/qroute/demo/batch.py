"""The demo's nightly batch: one summarisation job per passage, plus two records that must fail.

Every job asks for two sentences with `max_tokens` 120 and carries the same
deadline, so work the rate-limited cheap route cannot finish in time spills
over to dearer routes. The two broken records (not JSON; a job without
messages) are there on purpose: a real nightly file has bad lines, and the
dead-letter topic is where they go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from qroute.demo.passages import Passage
from qroute.models import Constraints, Job, Message, Params

INSTRUCTION = "Summarise this passage in two sentences."
MAX_TOKENS = 120
TENANT = "demo"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record sent as-is (key, value): for inputs that are not valid jobs."""

    key: bytes
    value: bytes


def job_id(run_id: str, n: int) -> str:
    return f"{run_id}-{n:05d}"


def nightly_batch(
    passages: Sequence[Passage],
    *,
    run_id: str,
    batch_id: str,
    deadline: datetime,
    created_at: datetime,
    max_tokens: int = MAX_TOKENS,
) -> list[Job]:
    """One job per passage, ids `<run_id>-00000` upwards, all due by `deadline`."""
    return [
        Job(
            id=job_id(run_id, n),
            created_at=created_at,
            tenant=TENANT,
            batch_id=batch_id,
            task="summarize",
            messages=[Message(role="user", content=f"{INSTRUCTION}\n\n{passage.text}")],
            params=Params(max_tokens=max_tokens),
            constraints=Constraints(deadline=deadline),
            metadata={"chapter": passage.chapter, "passage": str(passage.index)},
        )
        for n, passage in enumerate(passages)
    ]


def broken_records(run_id: str) -> list[RawRecord]:
    """Two inputs the worker must dead-letter: a truncated JSON line and a job with no messages."""
    return [
        RawRecord(f"{run_id}-broken-json".encode(), b'{"id": "' + run_id.encode() + b'-broken-json", "mess'),
        RawRecord(
            f"{run_id}-no-messages".encode(),
            b'{"id": "' + run_id.encode() + b'-no-messages", "messages": []}',
        ),
    ]
