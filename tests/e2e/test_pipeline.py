"""The whole flow: jobs on Kafka → real worker → simulator over HTTP → results and exact costs."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from qroute.config import Settings
from qroute.models import Job, Message
from qroute.sim import FixedLatency, SimConfig, SimModel, SimProvider, SimServer
from qroute.testing import consume_json, produce_jobs, sim_routes_settings, worker_in_process

pytestmark = pytest.mark.broker


def two_provider_sim() -> SimConfig:
    return SimConfig(
        seed=3,
        providers=[
            SimProvider(
                name="cheap",
                family="openai",
                latency=FixedLatency(seconds=0.01),
                failure_rates={"503": 0.05, "malformed": 0.02},
                models=[
                    SimModel(name="small", input_per_m="0.10", cached_input_per_m="0.01", output_per_m="0.40")
                ],
            ),
            SimProvider(
                name="premium",
                family="anthropic",
                latency=FixedLatency(seconds=0.02),
                models=[
                    SimModel(
                        name="large", input_per_m="3.00", cached_input_per_m="0.30", output_per_m="15.00"
                    )
                ],
            ),
        ],
    )


def jobs(n: int, prefix: str) -> list[Job]:
    return [
        Job(
            id=f"{prefix}-{i}",
            batch_id=prefix,
            messages=[Message(role="user", content=f"Summarise document number {i} about tides and moons.")],
            params={"max_tokens": 64},
        )
        for i in range(n)
    ]


class TestPipeline:
    async def test_every_job_answered_once_and_costs_match_the_ledger(
        self, unique_settings: Settings
    ) -> None:
        """200 jobs with injected 503s and garbage: 200 results, 200 cost records, sum == simulator bill."""
        async with SimServer(two_provider_sim()) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            n = 200
            async with worker_in_process(settings):
                await produce_jobs(settings, jobs(n, "pipe"))
                results = await consume_json(settings, settings.topics.results, n)
                costs = await consume_json(settings, settings.topics.costs, n)
            ledger = await sim.ledger()
        assert Counter(r["job_id"] for r in results) == Counter(f"pipe-{i}" for i in range(n))
        assert all(r["status"] == "succeeded" for r in results)
        assert len({c["job_id"] for c in costs}) == n
        total = sum((Decimal(c["total_cost_usd"]) for c in costs), start=Decimal(0))
        assert total == ledger.total_cost
        assert total > 0
        assert {r["provider"] for r in results} == {"cheap"}, "the cheap route absorbs retries"
