"""The worker's AsyncAPI document: what it reads (jobs, parked jobs) and what it writes.

The worker consumes with its own aiokafka loop (`qroute.worker.loop`: manual
offsets, pausing partitions, delay-topic gating), which a FastStream subscriber
cannot express, and publishes through its own acknowledged producer
(`qroute.worker.emit`). So, as in `qroute.client.spec`, the channels are declared
on a FastStream broker that is never started, only to render the document from
the same payload models the worker decodes and encodes.

FastStream cannot declare message headers in the document, so the headers qroute
sets (`qroute.worker.headers`) are named in each channel's description; and the
`correlationId` FastStream puts on every message is dropped, because the worker's
records carry no `correlation_id` header.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from qroute.client.connect import make_broker
from qroute.config import Settings
from qroute.models import CostRecord, DeadLetter, Job, Result
from qroute.worker import headers

CONTRACT_HEADERS = (
    f"Headers: {headers.CONTENT_TYPE}=application/json, {headers.SCHEMA}={{schema}}, "
    f"{headers.SCHEMA_VERSION_HEADER}, and {headers.TRACEPARENT} when the job record had one."
)
DELAY_HEADERS = (
    f"Headers: {headers.CONTENT_TYPE}=application/json; {headers.NOT_BEFORE} (epoch milliseconds, "
    f"the job must not run before then); {headers.ATTEMPTS} (JSON list of the attempts made so far, "
    f"whose cost ends up in the final cost record); {headers.SOURCE_TOPIC}, "
    f"{headers.SOURCE_PARTITION}, {headers.SOURCE_OFFSET} (where the job was first read); "
    f"{headers.CRASHES} (times the processor raised on it, when non-zero); "
    f"{headers.TRACEPARENT} when the job record had one."
)


def _jobs_description(settings: Settings) -> str:
    return (
        "Completion jobs (qroute Job, JSON), keyed by job id. Documentation only: the worker reads "
        "this topic with its own aiokafka consumer loop, not a FastStream subscriber, in consumer "
        f"group `{settings.worker.group_id}`. Delivery is at-least-once: a record's offset is committed "
        "only after what it turned into (its result and cost record, its dead letter, or its parked "
        "copy on a delay topic) is acknowledged by the broker, so a job may be processed again after a "
        "crash or rebalance. Records that are not a valid Job, are larger than "
        f"`worker.max_job_bytes` or name unknown models go to `{settings.topics.dlq}`."
    )


def _delay_description(tier_s: int) -> str:
    return (
        f"Parked jobs (the original Job bytes, keyed by job id) that must wait, tier {tier_s}s: jobs "
        "whose next route is not ready (rate limit, backoff) for longer than "
        "`routing.defer_threshold_s`, or retried once after the processor raised. Each record has a "
        f"not-before header ({headers.NOT_BEFORE}); the worker reads "
        "the partition in order, pausing it until its head record is due, in the same consumer group "
        f"and with the same at-least-once commits as the jobs topic. {DELAY_HEADERS}"
    )


def _results_description(settings: Settings) -> str:
    prefixes = ", ".join(f"`{p}`" for p in settings.topics.reply_prefixes)
    return (
        f"Results (qroute Result, JSON), keyed by job id, one per finished job, on `{settings.topics.results}` "
        f"or the job's reply_to. A reply_to must start with one of `topics.reply_prefixes` ({prefixes}); "
        "otherwise the worker sends a failed result (reply_topic_not_allowed) to the default results "
        "topic. Duplicates are possible (at-least-once): correlate by job id. "
        + CONTRACT_HEADERS.format(schema="result")
    )


def _costs_description() -> str:
    return (
        "Cost records (qroute CostRecord, JSON), keyed by job id: one per finished job, published "
        "with its result, with every attempt's tokens and cost. Duplicates are possible "
        "(at-least-once): deduplicate by job id. " + CONTRACT_HEADERS.format(schema="cost_record")
    )


def _dlq_description() -> str:
    return (
        "Dead letters (qroute DeadLetter, JSON), keyed by job id when one could be read: records the "
        "worker could not accept or process (bad JSON, schema violation, oversize, unknown model, "
        "repeated processing error), with the original bytes so they can be replayed. "
        + CONTRACT_HEADERS.format(schema="dead_letter")
    )


def _document_subscriber(broker: KafkaBroker, topic: str, group_id: str, description: str) -> None:
    """Declare a `Job` subscriber that is never run: it only puts the channel in the document."""
    subscriber = broker.subscriber(
        topic, group_id=group_id, title=f"{topic}:subscribe", description=description
    )

    @subscriber
    async def on_job(job: Job) -> None:
        """Documentation only: `qroute.worker.loop` consumes this topic."""


def worker_asyncapi(settings: Settings, *, version: str = "1") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the worker, as JSON-ready data.

    Topic names come from `settings.topics`; the broker address and security from
    `settings.kafka` (a bootstrap address is required, as for the client's document).
    """
    topics = settings.topics
    broker = make_broker(settings.kafka, description="qroute worker")
    tiers = sorted(set(topics.delay_tiers_s))
    _document_subscriber(broker, topics.jobs, settings.worker.group_id, _jobs_description(settings))
    for tier in tiers:
        delay_topic = topics.delay_topic(tier)
        _document_subscriber(broker, delay_topic, settings.worker.group_id, _delay_description(tier))
    outputs: list[tuple[str, type[Any], str]] = [
        (topics.results, Result, _results_description(settings)),
        (topics.costs, CostRecord, _costs_description()),
        (topics.dlq, DeadLetter, _dlq_description()),
        *((topics.delay_topic(tier), Job, _delay_description(tier)) for tier in tiers),
    ]
    for topic, model, description in outputs:
        broker.publisher(topic, title=f"{topic}:publish", description=description, schema=model)
    spec = AsyncAPI(broker, title="qroute worker", version=version, schema_version="3.0.0")
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    for message in document.get("components", {}).get("messages", {}).values():
        # FastStream states a correlation_id header on every message; the worker's records
        # have none (they are keyed and correlated by job id), so the claim is removed.
        message.pop("correlationId", None)
    return document
