"""`qroute demo`: the one-command tour on an embedded broker and simulated providers.

Ctrl-C or SIGTERM stops the tour at any point; the workers, the simulator and
the broker it started are stopped before the command exits (exit code 130).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.console import Console

from qroute.config import ConfigError
from qroute.demo.processes import WorkerStartError
from qroute.demo.render import summary_panel
from qroute.demo.run import DemoOptions, run_demo
from qroute.demo.summary import DemoSummary
from qroute.demo.world import DemoError
from qroute.embedded import BrokerBinaryNotFoundError, BrokerStartError
from qroute.sim import SimStartError
from qroute.worker.topics import TopicAdminError

INTERRUPTED = 130
_FAILURES = (
    DemoError,
    ConfigError,
    WorkerStartError,
    BrokerBinaryNotFoundError,
    BrokerStartError,
    SimStartError,
    TopicAdminError,
    KafkaError,
    OSError,
)


async def _interruptible(options: DemoOptions, console: Console) -> DemoSummary | None:
    """Run the demo; the first SIGINT/SIGTERM cancels it (cleanup runs), later ones are ignored."""
    loop = asyncio.get_running_loop()
    body = asyncio.create_task(run_demo(options, console))
    stopping = False

    def stop(name: str) -> None:
        nonlocal stopping
        if stopping:
            console.print(f"{name}: still stopping, please wait…")
            return
        stopping = True
        console.print(f"\n{name}: stopping the workers, the simulator and the broker…")
        body.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        return await body
    except asyncio.CancelledError:
        if not stopping:
            raise
        return None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        jobs: Annotated[int, typer.Option(min=1, max=10_000, help="Jobs in the batch.")] = 500,
        workers: Annotated[int, typer.Option(min=1, max=8, help="Worker processes to run.")] = 2,
        deadline_s: Annotated[
            float, typer.Option("--deadline-s", min=5, help="Every job's deadline, seconds from submission.")
        ] = 60.0,
        real: Annotated[
            bool,
            typer.Option("--real", help="Use the providers configured with real API keys (costs money)."),
        ] = False,
        config: Annotated[
            Path | None,
            typer.Option("--config", "-c", exists=True, dir_okay=False, help="qroute.toml for --real."),
        ] = None,
        bootstrap: Annotated[
            str | None, typer.Option("--bootstrap", "-b", help="Use this broker instead of starting one.")
        ] = None,
        topic_prefix: Annotated[
            str | None,
            typer.Option(
                help="Prefix for every topic name (default: none on the embedded broker, a run id otherwise)."
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", file_okay=False, help="Where results, costs and logs go (default: a new temp dir)."
            ),
        ] = None,
        json_summary: Annotated[
            Path | None,
            typer.Option("--json-summary", dir_okay=False, help="Also write the summary as JSON here."),
        ] = None,
    ) -> None:
        """Run the whole flow on an embedded broker and simulated providers, then print the bill."""
        console = Console(highlight=False)
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # reconnect chatter at shutdown
        options = DemoOptions(
            jobs=jobs,
            workers=workers,
            deadline_s=deadline_s,
            real=real,
            config=config,
            bootstrap=bootstrap,
            topic_prefix=topic_prefix,
            out_dir=out,
        )
        try:
            summary = asyncio.run(_interruptible(options, console))
        except _FAILURES as exc:
            console.print(f"[bold red]error:[/] {exc or type(exc).__name__}")
            raise typer.Exit(1) from None
        if summary is None:
            console.print("Interrupted: everything the demo started has been stopped.")
            raise typer.Exit(INTERRUPTED)
        console.print(summary_panel(summary))
        if json_summary is not None:
            json_summary.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
            console.print(f"Summary JSON: {json_summary}")
        if summary.missing:
            console.print(f"[bold red]{summary.missing} jobs had no result in time.[/]")
            raise typer.Exit(1)
