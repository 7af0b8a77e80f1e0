"""Kafka record headers qroute writes and reads, in one place.

Contract headers (on results, cost records, dead letters) name the schema so a
consumer can dispatch without parsing the body. Delay headers carry what a
parked job needs when it comes back: when it may run, the attempts it already
made (their cost must end up in the final cost record) and where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from qroute.models import SCHEMA_VERSION, Attempt

Headers = list[tuple[str, bytes]]
"""aiokafka's header form: (name, value) pairs, names may repeat."""

CONTENT_TYPE = "content-type"
SCHEMA = "qroute-schema"
SCHEMA_VERSION_HEADER = "qroute-schema-version"
TRACEPARENT = "traceparent"
"""W3C trace context, copied from the job record to everything published for it."""

NOT_BEFORE = "qroute-not-before"
"""Epoch milliseconds, ASCII: the parked job must not run before then."""
ATTEMPTS = "qroute-attempts"
"""JSON list of `Attempt`: the history so far."""
CRASHES = "qroute-crashes"
"""How many times the processor raised on this job (ASCII integer)."""
SOURCE_TOPIC = "qroute-source-topic"
SOURCE_PARTITION = "qroute-source-partition"
SOURCE_OFFSET = "qroute-source-offset"

_ATTEMPTS = TypeAdapter(list[Attempt])


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a job record was first read (the jobs topic, not a delay topic)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DelayInfo:
    """What the delay headers of a record say. `problem` is set when a header was unreadable."""

    not_before: float | None = None
    """Epoch seconds; None when absent (run at once)."""
    attempts: tuple[Attempt, ...] = ()
    crashes: int = 0
    source: SourceRef | None = None
    problem: str | None = None


def get(headers: Sequence[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The last value of header `name` (a later header overrides an earlier one), or None."""
    found: bytes | None = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found


def contract_headers(schema: str, traceparent: bytes | None) -> Headers:
    """Headers for a published contract (`result`, `cost_record`, `dead_letter`)."""
    headers: Headers = [
        (CONTENT_TYPE, b"application/json"),
        (SCHEMA, schema.encode()),
        (SCHEMA_VERSION_HEADER, str(SCHEMA_VERSION).encode()),
    ]
    if traceparent is not None:
        headers.append((TRACEPARENT, traceparent))
    return headers


def delay_headers(
    *,
    not_before: float,
    attempts: Sequence[Attempt],
    source: SourceRef,
    crashes: int,
    traceparent: bytes | None,
) -> Headers:
    """Headers for a job parked on a delay topic."""
    headers: Headers = [
        (CONTENT_TYPE, b"application/json"),
        (NOT_BEFORE, str(round(not_before * 1000)).encode()),
        (ATTEMPTS, _ATTEMPTS.dump_json(list(attempts))),
        (SOURCE_TOPIC, source.topic.encode()),
        (SOURCE_PARTITION, str(source.partition).encode()),
        (SOURCE_OFFSET, str(source.offset).encode()),
    ]
    if crashes:
        headers.append((CRASHES, str(crashes).encode()))
    if traceparent is not None:
        headers.append((TRACEPARENT, traceparent))
    return headers


def read_delay_info(headers: Sequence[tuple[str, bytes]] | None) -> DelayInfo:
    """Parse the delay headers. Never raises: unreadable parts are left out and named in `problem`.

    A missing or broken not-before means "due now"; broken attempts mean an empty
    history (the job still runs; only the earlier attempts' cost lines are lost).
    """
    problems: list[str] = []
    not_before: float | None = None
    raw = get(headers, NOT_BEFORE)
    if raw is not None:
        try:
            not_before = int(raw.decode("ascii")) / 1000
        except (UnicodeDecodeError, ValueError):
            problems.append(f"{NOT_BEFORE} is not an integer")
    attempts: tuple[Attempt, ...] = ()
    raw = get(headers, ATTEMPTS)
    if raw is not None:
        try:
            attempts = tuple(_ATTEMPTS.validate_json(raw))
        except ValidationError:
            problems.append(f"{ATTEMPTS} is not a JSON list of attempts")
    crashes = _int(get(headers, CRASHES)) or 0
    source: SourceRef | None = None
    topic, partition, offset = (get(headers, n) for n in (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET))
    part_n, offset_n = _int(partition), _int(offset)
    if topic is not None and part_n is not None and offset_n is not None:
        try:
            source = SourceRef(topic.decode(), part_n, offset_n)
        except UnicodeDecodeError:
            problems.append(f"{SOURCE_TOPIC} is not UTF-8")
    return DelayInfo(not_before, attempts, crashes, source, "; ".join(problems) or None)


def _int(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
