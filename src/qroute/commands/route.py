"""`qroute route`: plan a job offline and show which route it would take, and why.

Nothing is sent anywhere: the job is decoded exactly as the worker decodes it,
its tokens are estimated offline, and the planner judges every route of the
configured catalog. Exit codes: 0 a route is eligible, 1 the job is invalid or
no route is eligible, 2 the configuration is invalid (as `qroute config check`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qroute.catalog.load import active_routes, build_catalog, provider_inactive_reason
from qroute.catalog.types import Catalog, Route
from qroute.codec import DecodeFailure, decode_job
from qroute.config import ConfigError, Settings, load_settings
from qroute.models import Job
from qroute.money import usd
from qroute.routing.planner import Plan, plan
from qroute.routing.tokens import estimate_input_tokens

EXIT_NO_ROUTE = 1
EXIT_BAD_JOB = 1
EXIT_BAD_CONFIG = 2


def _console() -> Console:
    """Wide output when piped, so each route stays on one row."""
    console = Console()
    return console if console.is_terminal else Console(width=220)


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _read_job(source: str, settings: Settings) -> Job:
    """The job file (or stdin for `-`), decoded exactly as the worker decodes a record."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {source}: {exc.strerror or exc}", EXIT_BAD_JOB) from None
    decoded = decode_job(raw, max_bytes=settings.worker.max_job_bytes)
    if isinstance(decoded, DecodeFailure):
        raise _fail(f"{source} is not a valid job ({decoded.reason}): {decoded.message}", EXIT_BAD_JOB)
    return decoded


def _routes(catalog: Catalog, all_routes: bool) -> tuple[list[Route], str, bool]:
    """The routes to plan over, a sentence saying which ones, and whether some are inactive."""
    active = active_routes(catalog)
    everything = catalog.routes()
    if all_routes:
        return everything, f"all {len(everything)} catalog routes ({len(active)} active)", True
    if not active:
        sentence = (
            f"no route is active (no provider has its API key set): planning over all {len(everything)} "
            "catalog routes instead"
        )
        return everything, sentence, True
    return active, f"{len(active)} active routes", False


def _table(result: Plan, show_active: bool) -> Table:
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("route")
    table.add_column("tier", justify="right")
    table.add_column("est. input", justify="right")
    table.add_column("est. output", justify="right")
    table.add_column("est. cost", justify="right")
    if show_active:
        table.add_column("provider")
    table.add_column("verdict")
    rank = 0
    for verdict in result.verdicts:
        estimate = verdict.estimate
        if verdict.eligible:
            rank += 1
        row = [
            str(rank) if verdict.eligible else "",
            verdict.route.id,
            str(verdict.route.model.tier),
            f"{estimate.input_tokens:,}",
            f"{estimate.output_tokens:,}",
            usd(estimate.cost_usd),
        ]
        if show_active:
            inactive = provider_inactive_reason(verdict.route.provider, os.environ)
            row.append("active" if inactive is None else f"[yellow]{escape(inactive)}[/]")
        row.append(
            "[green]eligible[/]" if verdict.eligible else f"[red]{escape('; '.join(verdict.reasons))}[/]"
        )
        table.add_row(*row, style=None if verdict.eligible else "dim")
    return table


def register(app: typer.Typer) -> None:
    @app.command("route")
    def route(
        job_file: Annotated[
            str | None,
            typer.Argument(
                metavar="JOB", help="Job JSON file (`-` for stdin): print the routes to try, in order."
            ),
        ] = None,
        explain: Annotated[
            str | None,
            typer.Option(
                "--explain",
                "-e",
                metavar="JOB",
                help="Job JSON file (`-` for stdin): show every route with its estimate and verdict.",
            ),
        ] = None,
        config_path: Annotated[
            Path | None,
            typer.Option(
                "--config",
                "-c",
                dir_okay=False,
                help="qroute.toml to read (default: $QROUTE_CONFIG, else ./qroute.toml if present).",
            ),
        ] = None,
        all_routes: Annotated[
            bool,
            typer.Option("--all-routes", help="Also plan over routes whose provider is not active (no key)."),
        ] = False,
    ) -> None:
        """Plan a job offline: which routes may serve it, cheapest estimated cost first.

        Without --explain, prints the eligible route ids in the order the worker would try them.
        """
        source = explain if explain is not None else job_file
        if source is None or (explain is not None and job_file is not None):
            raise _fail(
                "give the job file once: `qroute route JOB.json` or `qroute route --explain JOB.json`", 2
            )
        try:
            settings = load_settings(config_path)
            catalog = build_catalog(settings)
        except ConfigError as exc:
            raise _fail(str(exc), EXIT_BAD_CONFIG) from None
        job = _read_job(source, settings)
        routes, which, mixed = _routes(catalog, all_routes)
        result = plan(job, routes, expected_output_ratio=settings.routing.default_expected_output_ratio)

        if explain is None:
            if mixed:
                Console(stderr=True).print(f"note: {which}", soft_wrap=True, highlight=False)
            for estimate in result.ranked:
                typer.echo(f"{estimate.route.id}\t{estimate.cost_usd:f}")
        else:
            console = _console()
            ratio = settings.routing.default_expected_output_ratio
            console.print(
                f"job [bold]{escape(job.id)}[/]: {which}; catalog {escape(catalog.version)}\n"
                f"estimated input {estimate_input_tokens(job):,} tokens (offline estimate); expected output "
                f"{ratio:g} × max_tokens {job.params.max_tokens:,}; costs assume no cache hits",
                soft_wrap=True,
            )
            console.print(_table(result, show_active=mixed))
            if result.ranked:
                first = result.ranked[0]
                console.print(
                    f"{len(result.ranked)} of {len(result.verdicts)} routes eligible; first choice "
                    f"[bold]{escape(first.route.id)}[/] at about {usd(first.cost_usd)}",
                    soft_wrap=True,
                )
        if not result.ranked:
            raise _fail(f"no eligible route for job {job.id} among {which}", EXIT_NO_ROUTE)
