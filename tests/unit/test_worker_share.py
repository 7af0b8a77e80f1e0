"""jobs_share: a worker's share of the provider quotas is its share of the jobs topic."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from qroute.worker.share import jobs_share


def tps(topic: str, *partitions: int) -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in partitions}


@pytest.mark.parametrize(
    ("assigned", "total", "share"),
    [
        (tps("jobs", 0, 1, 2, 3, 4, 5, 6, 7), 8, 1.0),
        (tps("jobs", 0, 1, 2, 3), 8, 0.5),
        (tps("jobs", 5, 6, 7), 8, 0.375),
        (tps("jobs", 0, 1) | tps("jobs.delay.5s", 0, 1, 2, 3, 4, 5), 8, 0.25),
        (tps("jobs.delay.5s", 0), 8, 0.125),
        (set(), 4, 0.25),
        (tps("jobs", 0), 0, 1.0),
    ],
)
def test_share(assigned: set[TopicPartition], total: int, share: float) -> None:
    """Only jobs-topic partitions count; never 0 (delay jobs must still run); unknown total means 1."""
    assert jobs_share(assigned, "jobs", total) == share


def test_members_shares_add_up_to_one() -> None:
    """Three members splitting eight partitions 3/3/2 pace to exactly one account's quota together."""
    split = [tps("jobs", 0, 1, 2), tps("jobs", 3, 4, 5), tps("jobs", 6, 7)]
    assert sum(jobs_share(part, "jobs", 8) for part in split) == pytest.approx(1.0)
