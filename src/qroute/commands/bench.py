"""`qroute bench`: measure the worker on this machine (embedded broker, simulator, worker subprocess)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from qroute.bench.report import ScenarioReport, render, render_summary, report_json
from qroute.bench.runner import SCENARIOS, BenchOptions, Progress, ScenarioName, environment, run_bench

MIN_WIDTH = 120


async def _run(options: BenchOptions, progress: Progress) -> list[ScenarioReport]:
    """`run_bench`, cancelled by SIGTERM as by Ctrl-C, so its processes are stopped either way."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_bench(options, progress)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        scenario: Annotated[
            str, typer.Option("--scenario", help="all, or one of: cpu, throughput, ratelimit.")
        ] = "all",
        jobs: Annotated[
            int | None,
            typer.Option(
                "--jobs",
                min=10,
                help="Jobs per run, overriding each scenario's default (cpu 3000, throughput 4000, ratelimit 2000).",
            ),
        ] = None,
        as_json: Annotated[
            bool,
            typer.Option("--json", help="Print the results as JSON on stdout (progress goes to stderr)."),
        ] = False,
        workdir: Annotated[
            Path | None,
            typer.Option(
                "--workdir", help="Keep worker configs and logs here (default: a temporary folder)."
            ),
        ] = None,
        worker_log_level: Annotated[
            str,
            typer.Option(
                "--worker-log-level", help="Log level of the measured workers (INFO logs one line per job)."
            ),
        ] = "INFO",
    ) -> None:
        """Benchmark a worker process: CPU per job, throughput vs. the serial baseline, rate-limit routing.

        Everything runs locally: an embedded broker, the provider simulator and the
        worker each in their own process. Exit code 0 when every target passes, 1 otherwise,
        130 when interrupted.
        """
        if scenario != "all" and scenario not in SCENARIOS:
            typer.echo(f"error: --scenario must be all, {', '.join(SCENARIOS)}; got {scenario!r}", err=True)
            raise typer.Exit(2)
        chosen = SCENARIOS if scenario == "all" else (cast(ScenarioName, scenario),)
        err = Console(stderr=True)
        out = Console()
        for console in (err, out):
            console.width = max(console.width, MIN_WIDTH)  # not a terminal: rich assumes 80 columns
        env = environment()
        options = BenchOptions(
            scenarios=chosen, jobs=jobs, workdir=workdir, worker_log_level=worker_log_level
        )
        try:
            reports = asyncio.run(_run(options, lambda line: err.print(f"[dim]bench:[/dim] {line}")))
        except (KeyboardInterrupt, asyncio.CancelledError):
            err.print("bench: interrupted; the broker, simulator and worker processes it started are stopped")
            raise typer.Exit(130) from None
        shown = err if as_json else out
        for report in reports:
            shown.print(render(report))
        shown.print(render_summary(reports))
        if as_json:
            out.print_json(json.dumps(report_json(reports, env)))
        raise typer.Exit(0 if all(r.passed for r in reports) else 1)
