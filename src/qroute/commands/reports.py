"""`qroute results` (tail the reply topic) and `qroute costs` (totals from the cost topic).

Both read without a consumer group, from the first record up to the high-water mark
seen when they start (learnt from a fetch, not ListOffsets, which the embedded broker
answers short; see `qroute.client.tail`), then stop, unless `results --follow`.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Generic, TypeVar

import typer
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from qroute.client.costs import DIMENSIONS, CostLine, CostTotals
from qroute.client.errors import ClientError
from qroute.client.tail import Record, Start, TopicTail
from qroute.commands.options import BootstrapOption, ConfigOption, settings_for
from qroute.config import KafkaSettings
from qroute.kafka import KafkaConfigError
from qroute.models import CostRecord, Result
from qroute.money import usd

BatchOption = Annotated[str | None, typer.Option("--batch-id", help="Only records of this batch.")]
TopicOption = Annotated[
    str | None, typer.Option("--topic", "-t", help="Read this topic instead of the configured one.")
]
PREVIEW_CHARS = 60


async def read_topic(
    kafka: KafkaSettings,
    topic: str,
    handle: Callable[[Record], None],
    *,
    follow: bool,
    start: Start = "beginning",
) -> None:
    """Hand every record to `handle`: up to the current end, or forever with `follow`."""
    tail = await TopicTail.open(kafka, topic, start=start)
    try:
        while True:
            for record in await tail.read(timeout_ms=500, max_records=5000):
                handle(record)
            if not follow and await tail.caught_up():
                return
    finally:
        await tail.close()


def _run(reader: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the reader; broker and configuration problems become `error: ...` and exit 1."""
    try:
        asyncio.run(reader())
    except KeyboardInterrupt:
        return
    except (KafkaError, KafkaConfigError, ClientError, TimeoutError) as exc:
        typer.echo(f"error: {exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from None


M = TypeVar("M", bound=BaseModel)


class Decoder(Generic[M]):
    """Decodes records into a contract; counts and reports the ones that are not."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.bad = 0

    def __call__(self, record: Record) -> M | None:
        try:
            return self.model.model_validate_json(record.value or b"")
        except ValidationError:
            self.bad += 1
            return None

    def report(self, topic: str) -> None:
        if self.bad:
            typer.echo(
                f"skipped {self.bad} records on {topic} that are not valid {self.model.__name__}s", err=True
            )


def result_line(result: Result) -> str:
    """One line per result for people: id, status, route, cost, batch, then output or error."""
    route = f"{result.provider}/{result.model}" if result.provider else "-"
    if result.status == "succeeded":
        detail = (result.output or "").replace("\n", " ")
        detail = detail if len(detail) <= PREVIEW_CHARS else detail[: PREVIEW_CHARS - 1] + "…"
    else:
        detail = f"{result.error.type}: {result.error.message}" if result.error else "failed"
    return f"{result.job_id}\t{result.status}\t{route}\t{usd(result.cost_usd)}\t{result.batch_id or '-'}\t{detail}"


def costs_table(title: str, lines: list[CostLine]) -> Table:
    """One dimension's totals. Amounts are never cut short: a narrow terminal folds them instead."""
    table = Table(title=title, title_justify="left")
    table.add_column(title.removeprefix("by "), overflow="fold")
    for name in ("jobs", "attempts", "billed", "in tokens", "out tokens"):
        table.add_column(name, justify="right", overflow="fold")
    widest = max((len(usd(line.cost_usd)) for line in lines), default=0)
    table.add_column("cost USD", justify="right", overflow="fold", min_width=max(widest, 8))
    for line in lines:
        table.add_row(
            line.key,
            str(line.jobs),
            str(line.attempts),
            str(line.billed_attempts),
            str(line.input_tokens),
            str(line.output_tokens),
            usd(line.cost_usd),
        )
    return table


def write_costs_csv(totals: CostTotals) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "dimension",
            "key",
            "jobs",
            "attempts",
            "billed_attempts",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ]
    )
    rows = [("total", totals.total)] + [(d, line) for d in DIMENSIONS for line in totals.lines(d)]
    for dimension, line in rows:
        data = line.as_dict()
        writer.writerow([dimension, *data.values()])


def register(app: typer.Typer) -> None:
    @app.command()
    def results(
        config_path: ConfigOption = None,
        bootstrap: BootstrapOption = None,
        batch_id: BatchOption = None,
        topic: TopicOption = None,
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help="Keep printing new results (Ctrl-C stops).")
        ] = False,
        new: Annotated[
            bool, typer.Option("--new", help="Only results written from now on (implies --follow).")
        ] = False,
        jsonl: Annotated[bool, typer.Option("--jsonl", help="Print each Result as JSON.")] = False,
    ) -> None:
        """Print the results on the results topic (or --topic), optionally only one batch's."""
        settings = settings_for(config_path, bootstrap)
        name = topic or settings.topics.results
        decode = Decoder(Result)

        def show(record: Record) -> None:
            result = decode(record)
            if result is None or (batch_id is not None and result.batch_id != batch_id):
                return
            typer.echo(result.model_dump_json() if jsonl else result_line(result))

        _run(
            lambda: read_topic(
                settings.kafka, name, show, follow=follow or new, start="now" if new else "beginning"
            )
        )
        decode.report(name)

    @app.command()
    def costs(
        config_path: ConfigOption = None,
        bootstrap: BootstrapOption = None,
        batch_id: BatchOption = None,
        topic: TopicOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the totals as JSON.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="Print the totals as CSV.")] = False,
    ) -> None:
        """Total the cost records: by batch, tenant, provider and model, in exact USD."""
        if as_json and as_csv:
            raise typer.BadParameter("choose one of --json and --csv")
        settings = settings_for(config_path, bootstrap)
        name = topic or settings.topics.costs
        decode = Decoder(CostRecord)
        totals = CostTotals()

        def count(record: Record) -> None:
            cost = decode(record)
            if cost is not None and (batch_id is None or cost.batch_id == batch_id):
                totals.add(cost)

        _run(lambda: read_topic(settings.kafka, name, count, follow=False))
        decode.report(name)
        if as_json:
            typer.echo(json.dumps(totals.as_dict(), indent=2))
        elif as_csv:
            write_costs_csv(totals)
        else:
            console = Console()
            for dimension in DIMENSIONS:
                console.print(costs_table(f"by {dimension}", totals.lines(dimension)))
            total = totals.total
            console.print(
                f"total {usd(total.cost_usd)} over {total.jobs} cost records, {total.attempts} attempts"
                + (f" ({totals.duplicates} duplicate records ignored)" if totals.duplicates else ""),
                markup=False,
                highlight=False,
            )
