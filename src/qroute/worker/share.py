"""This worker's share of the group's provider quotas: its share of the jobs topic.

Workers of one consumer group call the same provider accounts. Each learns the
account's quota from response headers, which describe the whole account; paced
to all of it, N workers would send N times the quota. The group already splits
the work by partition, so a worker's share of the jobs topic's partitions is its
share of the load, and the shares of all members add up to 1. Delay-topic
partitions do not count: they carry a slice of the same jobs.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.structs import TopicPartition


def jobs_share(assigned: Iterable[TopicPartition], jobs_topic: str, total_partitions: int) -> float:
    """Assigned partitions of `jobs_topic` over its partition count, never 0 and at most 1.

    A member with no jobs partition (more members than partitions) still gets one
    partition's worth, so jobs it holds on delay topics can run.
    """
    if total_partitions <= 0:
        return 1.0
    mine = sum(1 for tp in assigned if tp.topic == jobs_topic)
    return min(1.0, max(1, mine) / total_partitions)
