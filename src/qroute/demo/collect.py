"""What the demo has seen on the result, cost and dead-letter topics so far.

A background task reads the three topics from the start and files every record
of this run here; the progress bar and the final summary both read from this one
tally, so the numbers shown are the numbers on the topics. Records of other runs
(a shared broker, a reused topic prefix) are left out: results and costs by job
id, dead letters by the run id inside their payload. Delivery is at-least-once:
a job may be answered twice, so results and cost records are kept per job id
(the latest wins) and duplicates are counted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from qroute.config import Settings
from qroute.demo.reader import TopicReader

JsonRecord = dict[str, Any]


@dataclass
class Tally:
    """Records seen per topic, keyed by job id where the contract has one."""

    expected: frozenset[str]
    run_id: str
    results: dict[str, JsonRecord] = field(default_factory=dict)
    costs: dict[str, JsonRecord] = field(default_factory=dict)
    dead_letters: list[JsonRecord] = field(default_factory=list)
    duplicate_results: int = 0
    unreadable: int = 0
    reader_error: BaseException | None = None
    """Set when the background reader died (broker gone, topic deleted): the tally stopped growing."""

    def add_result(self, record: JsonRecord) -> None:
        job_id = str(record.get("job_id"))
        if job_id not in self.expected:
            return
        if job_id in self.results:
            self.duplicate_results += 1
        self.results[job_id] = record

    def add_cost(self, record: JsonRecord) -> None:
        job_id = str(record.get("job_id"))
        if job_id in self.expected:
            self.costs[job_id] = record

    def add_dead_letter(self, record: JsonRecord) -> None:
        """Kept when its job id or its original payload names this run."""
        try:
            payload = base64.b64decode(str(record.get("payload_b64", "")))
        except ValueError:
            payload = b""
        if str(record.get("job_id") or "").startswith(self.run_id) or self.run_id.encode() in payload:
            self.dead_letters.append(record)

    @property
    def done(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results.values() if r.get("status") == "failed")

    @property
    def spend(self) -> Decimal:
        """Spend so far from the results (each carries its job's total); the summary uses the cost topic."""
        return sum((Decimal(str(r.get("cost_usd", "0"))) for r in self.results.values()), Decimal(0))

    def complete(self, dead_letters_expected: int) -> bool:
        """Every expected job has a result and a cost record, and the dead letters are in."""
        return (
            self.expected.issubset(self.results)
            and self.expected.issubset(self.costs)
            and len(self.dead_letters) >= dead_letters_expected
        )


async def _follow(settings: Settings, tally: Tally) -> None:
    try:
        await _read_into(settings, tally)
    except Exception as exc:
        tally.reader_error = exc
        raise


async def _read_into(settings: Settings, tally: Tally) -> None:
    topics = settings.topics
    async with TopicReader(settings.kafka, [topics.results, topics.costs, topics.dlq]) as reader:
        while True:
            for record in await reader.poll():
                try:
                    value: JsonRecord = json.loads(record.value or b"null")
                except ValueError:
                    tally.unreadable += 1
                    continue
                if not isinstance(value, dict):
                    tally.unreadable += 1
                elif record.topic == topics.results:
                    tally.add_result(value)
                elif record.topic == topics.costs:
                    tally.add_cost(value)
                else:
                    tally.add_dead_letter(value)


@contextlib.asynccontextmanager
async def following(settings: Settings, run_id: str, expected: Collection[str]) -> AsyncIterator[Tally]:
    """A tally of run `run_id` (jobs `expected`), kept up to date from the topics until the block ends."""
    tally = Tally(expected=frozenset(expected), run_id=run_id)
    task = asyncio.create_task(_follow(settings, tally), name="qroute-demo-follow")
    try:
        yield tally
    finally:
        task.cancel()
        # A reader that failed has already put its error in `tally.reader_error`.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def count_parked(settings: Settings) -> tuple[int, int]:
    """(records, distinct jobs) on the delay topics: how often jobs were deferred, and how many."""
    topics = [settings.topics.delay_topic(tier) for tier in settings.topics.delay_tiers_s]
    async with TopicReader(settings.kafka, topics) as reader:
        records = await reader.read_all()
    return len(records), len({r.key for r in records})
