"""`qroute sim`: run the provider simulator in the foreground."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from qroute.config_errors import ConfigError
from qroute.sim.config import default_config, default_config_text, load_sim_config
from qroute.sim.run import serve
from qroute.sim.server import SimServer

DEFAULT_PORT = 8900


def register(app: typer.Typer) -> None:
    @app.command()
    def sim(
        config_path: Annotated[
            Path | None,
            typer.Option(
                "--config", "-c", exists=True, dir_okay=False, help="Simulator TOML (or JSON) config."
            ),
        ] = None,
        host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = DEFAULT_PORT,
        print_default: Annotated[
            bool, typer.Option("--print-default-config", help="Print the built-in config as TOML and exit.")
        ] = False,
    ) -> None:
        """Serve simulated OpenAI/Anthropic providers (built-in: cheap, mid, premium, flaky) until Ctrl-C."""
        if print_default:
            typer.echo(default_config_text(), nl=False)
            return
        try:
            config = load_sim_config(config_path) if config_path else default_config()
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

        def ready(server: SimServer) -> None:
            typer.echo(f"qroute sim serving on {server.url} (ledger: {server.url}/_sim/ledger)")
            for provider in config.providers:
                models = ", ".join(m.name for m in provider.models)
                typer.echo(
                    f"  {provider.name:<10} {provider.family:<9} {server.base_url(provider.name)}  [{models}]"
                )
            typer.echo("Ctrl-C to stop.")

        try:
            asyncio.run(serve(config, host, port, ready))
        except OSError as exc:
            typer.echo(f"error: cannot serve on {host}:{port}: {exc}", err=True)
            raise typer.Exit(1) from None
