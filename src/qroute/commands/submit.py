"""`qroute submit FILE.jsonl`: check a file of jobs, send it, optionally wait and write the results.

Exit codes: 0 all sent (and, with --wait, every result written); 1 lines rejected
(nothing sent, or the valid ones with --skip-invalid), or a configuration/broker
error; 3 --wait gave up (--timeout) before every result arrived; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from qroute.batchfile import (
    RENDERERS,
    FileChanged,
    InputFormat,
    JobOverrides,
    LineOptions,
    OutputFormat,
    ResultOrder,
    ResultsWriter,
    ScanReport,
    iter_jobs,
    scan_file,
)
from qroute.catalog.load import build_catalog
from qroute.client import ClientError, QRouteClient
from qroute.client.bulk import BatchOutcome, BatchProgress, run_batch
from qroute.commands.options import BootstrapOption, ConfigOption, settings_for
from qroute.config import Settings
from qroute.kafka import KafkaConfigError
from qroute.money import usd
from qroute.worker.intake import known_models

EXIT_REJECTED = 1
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
SHOWN_ERRORS = 50
"""Per-line errors printed; the count covers all of them."""

_RELATIVE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_deadline(text: str, now: datetime) -> datetime:
    """`2026-11-23T06:00:00Z` (a timezone is required) or a delay from now: `8h`, `90m`, `1d12h`, `45s`."""
    match = _RELATIVE.match(text.strip())
    if match and any(match.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return now + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "use an ISO time with a timezone (2026-11-23T06:00:00Z) or 8h / 90m / 1d"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs a timezone, e.g. 2026-11-23T06:00:00Z")
    return moment


def parse_money(text: str) -> Decimal:
    """An exact non-negative USD amount such as `0.05`."""
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a decimal amount such as 0.05") from None
    if not value.is_finite() or value < 0:
        raise typer.BadParameter("the amount must be a finite, non-negative number")
    return value


def default_batch_id(path: Path, now: datetime) -> str:
    """`<file stem>-<UTC time>`, trimmed to what a job id may hold."""
    stem = re.sub(r"[^A-Za-z0-9._:\-]", "-", path.stem).strip("-._:") or "batch"
    return f"{stem[:100]}-{now:%Y%m%dT%H%M%SZ}"


def line_options(
    settings: Settings, overrides: JobOverrides, force: InputFormat | None, check_models: bool
) -> LineOptions:
    known = None
    name = "the catalog"
    if check_models:
        catalog = build_catalog(settings)
        known = known_models(catalog)
        name = f"the catalog (version {catalog.version}; --no-model-check skips this check)"
    return LineOptions(
        force=force,
        overrides=overrides,
        known_model=known,
        catalog_name=name,
        max_bytes=settings.worker.max_job_bytes,
    )


def report_errors(report: ScanReport) -> None:
    """One line per rejected line (never wrapped, so it greps), the first `SHOWN_ERRORS` of them."""
    for error in report.errors[:SHOWN_ERRORS]:
        typer.echo(str(error), err=True)
    hidden = report.error_count - min(len(report.errors), SHOWN_ERRORS)
    if hidden > 0:
        typer.echo(f"... and {hidden} more rejected lines", err=True)


class ProgressView:
    """The rich progress display: sent, then done / failed / spend / ETA."""

    def __init__(self, console: Console, total: int, wait: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.sent: TaskID = self.progress.add_task("sent", total=total, extra="")
        self.done: TaskID | None = (
            self.progress.add_task("done", total=total, extra="0 failed  $0") if wait else None
        )

    def update(self, state: BatchProgress) -> None:
        self.progress.update(self.sent, completed=state.sent)
        if self.done is not None:
            extra = f"{state.failed} failed  {usd(state.spend)}"
            self.progress.update(self.done, completed=state.done, extra=extra)


async def send(
    settings: Settings,
    report: ScanReport,
    options: LineOptions,
    *,
    writer: ResultsWriter | None,
    view: ProgressView,
    timeout_s: float | None,
    max_pending: int,
) -> BatchOutcome:
    async with QRouteClient(settings, listen=writer is not None) as client:
        jobs = (line.job for line in iter_jobs(report, options))
        return await run_batch(
            client,
            jobs,
            total=report.valid,
            writer=writer,
            on_progress=view.update,
            wait_timeout_s=timeout_s,
            max_pending=max_pending,
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def submit(
        file: Annotated[
            Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL file of jobs.")
        ],
        config_path: ConfigOption = None,
        bootstrap: BootstrapOption = None,
        batch_id: Annotated[
            str | None,
            typer.Option(help="Batch id for every job (default: lines keep theirs, others get FILE-TIME)."),
        ] = None,
        tenant: Annotated[str | None, typer.Option(help="Tenant for every job.")] = None,
        deadline: Annotated[
            str | None,
            typer.Option(help="Deadline for every job: 2026-11-23T06:00:00Z, or 8h / 90m / 1d12h."),
        ] = None,
        max_cost: Annotated[str | None, typer.Option(help="Cost cap per job in USD, e.g. 0.05.")] = None,
        skip_invalid: Annotated[
            bool, typer.Option("--skip-invalid", help="Send the valid lines even if others are rejected.")
        ] = False,
        wait: Annotated[
            bool, typer.Option("--wait", help="Wait for every result and write them to a file.")
        ] = False,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                dir_okay=False,
                help="Results file (default FILE.results.jsonl; - for stdout).",
            ),
        ] = None,
        output_format: Annotated[
            OutputFormat,
            typer.Option("--format", help="Results as qroute Results or OpenAI Batch output lines."),
        ] = "qroute",
        order: Annotated[
            ResultOrder, typer.Option(help="Results in input order or as they arrive.")
        ] = "input",
        input_format: Annotated[
            InputFormat | None, typer.Option(help="Require this line format (default: recognised per line).")
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(min=0, help="With --wait: give up this many seconds after the last send."),
        ] = None,
        model_check: Annotated[
            bool,
            typer.Option("--model-check/--no-model-check", help="Reject models missing from the catalog."),
        ] = True,
        max_pending: Annotated[
            int, typer.Option(min=1, help="Jobs sent but not yet acknowledged, at most.")
        ] = 1000,
    ) -> None:
        """Check FILE (qroute jobs, OpenAI Batch or Anthropic Message Batches lines), then send every job.

        Nothing is sent when a line is rejected, unless --skip-invalid.
        """
        err = Console(stderr=True)
        now = datetime.now(UTC)
        settings = settings_for(config_path, bootstrap)
        overrides = JobOverrides(
            batch_id=batch_id,
            default_batch_id=None if batch_id else default_batch_id(file, now),
            tenant=tenant,
            deadline=parse_deadline(deadline, now) if deadline else None,
            max_cost_usd=parse_money(max_cost) if max_cost is not None else None,
        )
        options = line_options(settings, overrides, input_format, model_check)
        report = scan_file(file, options)
        typer.echo(report.describe(), err=True)
        report_errors(report)
        if report.error_count and not skip_invalid:
            typer.echo(
                f"nothing sent: fix the {report.error_count} rejected lines, or pass --skip-invalid", err=True
            )
            raise typer.Exit(EXIT_REJECTED)
        if report.valid == 0:
            typer.echo("no jobs to send", err=True)
            raise typer.Exit(EXIT_REJECTED if report.error_count else 0)
        out_path = output or file.with_suffix(".results.jsonl")
        writing = OutputPlan(out_path, output_format, order) if wait else None
        outcome = _run(settings, report, options, err, writing, timeout=timeout, max_pending=max_pending)
        _summarise(outcome, overrides, settings, writing)
        if outcome.missing:
            raise typer.Exit(EXIT_TIMEOUT)
        if report.error_count:
            raise typer.Exit(EXIT_REJECTED)


@dataclass(frozen=True)
class OutputPlan:
    """Where and how --wait writes results."""

    path: Path
    format: OutputFormat
    order: ResultOrder

    @property
    def to_stdout(self) -> bool:
        return str(self.path) == "-"

    def open(self, stack: ExitStack, positions: Mapping[str, int]) -> ResultsWriter:
        sink: BinaryIO = sys.stdout.buffer if self.to_stdout else stack.enter_context(self.path.open("wb"))
        return stack.enter_context(
            ResultsWriter(sink, positions, order=self.order, render=RENDERERS[self.format])
        )


def _run(
    settings: Settings,
    report: ScanReport,
    options: LineOptions,
    err: Console,
    writing: OutputPlan | None,
    *,
    timeout: float | None,
    max_pending: int,
) -> BatchOutcome:
    with ExitStack() as stack:
        writer = writing.open(stack, report.positions) if writing is not None else None
        view = ProgressView(err, report.valid, writing is not None)
        stack.enter_context(view.progress)
        try:
            return asyncio.run(
                send(
                    settings,
                    report,
                    options,
                    writer=writer,
                    view=view,
                    timeout_s=timeout,
                    max_pending=max_pending,
                )
            )
        except KeyboardInterrupt:
            typer.echo("interrupted: the results received so far are written", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (KafkaError, KafkaConfigError, ClientError, FileChanged) as exc:
            typer.echo(f"error: {exc or type(exc).__name__}", err=True)
            raise typer.Exit(1) from None


def _summarise(
    outcome: BatchOutcome, overrides: JobOverrides, settings: Settings, writing: OutputPlan | None
) -> None:
    state = outcome.progress
    batch = (
        f"batch id {overrides.batch_id}"
        if overrides.batch_id
        else f"unbatched lines got batch id {overrides.default_batch_id}"
    )
    typer.echo(f"sent {state.sent} jobs to {settings.topics.jobs} ({batch})", err=True)
    if writing is None:
        return
    failures = ", ".join(f"{n} {kind}" for kind, n in sorted(state.failures.items()))
    typer.echo(
        f"results: {state.succeeded} succeeded, {state.failed} failed{f' ({failures})' if failures else ''}; "
        f"spend {usd(state.spend)}",
        err=True,
    )
    where = "stdout" if writing.to_stdout else str(writing.path)
    typer.echo(f"results written to {where} ({writing.format} format, {writing.order} order)", err=True)
    if outcome.missing:
        shown = ", ".join(outcome.missing[:10])
        more = f" and {len(outcome.missing) - 10} more" if len(outcome.missing) > 10 else ""
        typer.echo(f"no result yet for {len(outcome.missing)} jobs: {shown}{more}", err=True)
