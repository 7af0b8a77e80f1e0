"""`qroute worker`: consume jobs, route them, publish results and costs until SIGTERM."""

from __future__ import annotations

import asyncio

import typer
from aiokafka.errors import KafkaError

from qroute.commands.options import BootstrapOption, ConfigOption, settings_for
from qroute.config import ConfigError
from qroute.kafka import KafkaConfigError
from qroute.observability.logging import configure_logging
from qroute.runtime import run_worker, tune_gc
from qroute.worker.topics import MissingTopicsError


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        config_path: ConfigOption = None,
        bootstrap: BootstrapOption = None,
        log_format: str = typer.Option("json", "--log-format", help="json (default) or console."),
        log_level: str = typer.Option("INFO", "--log-level"),
    ) -> None:
        """Run a worker: many jobs in flight, at-least-once, graceful drain on SIGTERM."""
        configure_logging(json=log_format != "console", level=log_level)
        settings = settings_for(config_path, bootstrap)
        if not settings.kafka.bootstrap_servers:
            typer.echo(
                "error: kafka.bootstrap_servers is not set: pass --bootstrap HOST:PORT, set "
                "QROUTE_KAFKA__BOOTSTRAP_SERVERS, or start a local broker with `qroute broker`.",
                err=True,
            )
            raise typer.Exit(2)
        tune_gc()
        try:
            asyncio.run(run_worker(settings))
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (MissingTopicsError, KafkaConfigError, KafkaError) as exc:
            typer.echo(f"error: {exc or type(exc).__name__}", err=True)
            raise typer.Exit(1) from None
