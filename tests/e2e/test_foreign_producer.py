"""Jobs produced by a second Kafka client library (librdkafka via confluent-kafka) are served.

The wire format is plain JSON with the job id as key: nothing aiokafka-specific.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from confluent_kafka import Producer

from qroute.config import Settings
from qroute.sim import FixedLatency, SimConfig, SimModel, SimProvider, SimServer
from qroute.testing import consume_json, sim_routes_settings, worker_in_process

pytestmark = pytest.mark.broker


def one_route_sim() -> SimConfig:
    return SimConfig(
        seed=5,
        providers=[
            SimProvider(
                name="cheap",
                family="openai",
                latency=FixedLatency(seconds=0.01),
                models=[
                    SimModel(name="small", input_per_m="0.10", cached_input_per_m="0.01", output_per_m="0.40")
                ],
            )
        ],
    )


class TestForeignProducer:
    async def test_jobs_from_confluent_kafka_get_results(self, unique_settings: Settings) -> None:
        """50 jobs written as hand-made JSON by librdkafka come back as 50 succeeded results."""
        async with SimServer(one_route_sim()) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            async with worker_in_process(settings):
                producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"})
                for i in range(50):
                    job = {"id": f"ck-{i}", "messages": [{"role": "user", "content": f"Summarise note {i}."}]}
                    producer.produce(settings.topics.jobs, key=f"ck-{i}", value=json.dumps(job))
                assert producer.flush(30) == 0, "every record acknowledged"
                results = await consume_json(settings, settings.topics.results, 50)
        assert Counter(r["job_id"] for r in results) == Counter(f"ck-{i}" for i in range(50))
        assert {r["status"] for r in results} == {"succeeded"}
