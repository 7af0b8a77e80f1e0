"""The client's AsyncAPI document: what it publishes (jobs) and what it reads (results).

Built from the same FastStream declarations the client uses to publish. The reply
reader is an aiokafka consumer of its own (it must choose its start offsets before
the first job is sent, which a FastStream subscriber does not allow), so here it
is declared on a broker that is never started, only to document the channel.
"""

from __future__ import annotations

from typing import Any

from faststream.specification import AsyncAPI

from qroute.client.connect import jobs_publisher, make_broker
from qroute.config import Settings
from qroute.models import Result

RESULTS_DESCRIPTION = (
    "Results (qroute Result, JSON), keyed by job id, on `topics.results` or the job's `reply_to`. "
    "Read without a consumer group and correlated by job id; duplicates are possible (at-least-once)."
)


def client_asyncapi(settings: Settings, *, version: str = "1") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the producer client, as JSON-ready data."""
    broker = make_broker(settings.kafka, description="qroute producer client")
    jobs_publisher(broker, settings.topics.jobs)
    subscriber = broker.subscriber(
        settings.topics.results,
        group_id=None,
        title=f"{settings.topics.results}:subscribe",
        description=RESULTS_DESCRIPTION,
    )

    @subscriber
    async def on_result(result: Result) -> None:
        """Documentation only: the client's reply reader hands results to `result()` waiters."""

    spec = AsyncAPI(broker, title="qroute client", version=version, schema_version="3.0.0")
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document
