"""`qroute config`: check a configuration, show the effective settings, print the reference."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from qroute.catalog.load import active_routes, build_catalog, provider_inactive_reason
from qroute.catalog.types import Catalog, ModelSpec
from qroute.config import ConfigError, Settings, load_settings, validate_runtime
from qroute.config_reference import render_reference, splice_reference

EXIT_BAD_CONFIG = 2

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        dir_okay=False,
        help="qroute.toml to read (default: $QROUTE_CONFIG, else ./qroute.toml if present).",
    ),
]


def _console() -> Console:
    """Wide output when piped, so the table stays one row per route."""
    console = Console()
    return console if console.is_terminal else Console(width=220)


def _price(value: object) -> str:
    return "—" if value is None else f"{value}"


def _status(catalog: Catalog, spec: ModelSpec, env: Mapping[str, str]) -> str:
    if not spec.enabled:
        return "[yellow]model disabled[/]"
    reason = provider_inactive_reason(catalog.providers[spec.provider], env)
    return "[green]active[/]" if reason is None else f"[yellow]{reason}[/]"


def route_table(catalog: Catalog, env: Mapping[str, str]) -> Table:
    """One row per route: prices, limits, capabilities, and whether it is active (or why not)."""
    table = Table(title=f"routes (catalog {catalog.version})", caption=catalog.source)
    for header in ("provider", "model", "family", "tier"):
        table.add_column(header)
    for header in ("in $/1M", "cached $/1M", "out $/1M", "context", "max out"):
        table.add_column(header, justify="right")
    for header in ("capabilities", "rpm/tpm", "status"):
        table.add_column(header)
    for spec in catalog.models:
        provider = catalog.providers[spec.provider]
        limits = f"{provider.rpm or '—'}/{provider.tpm or '—'}"
        table.add_row(
            spec.provider,
            spec.model,
            provider.family,
            str(spec.tier),
            _price(spec.input_per_m),
            _price(spec.cached_input_price),
            _price(spec.output_per_m),
            f"{spec.context_window:,}",
            f"{spec.max_output_tokens:,}",
            ",".join(sorted(spec.capabilities)) or "—",
            limits,
            _status(catalog, spec, env),
        )
    return table


def _load(path: Path | None, env: Mapping[str, str]) -> tuple[Settings, Catalog]:
    settings = load_settings(path, env=env)
    return settings, build_catalog(settings, env=env)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Check and explain qroute configuration.", no_args_is_help=True)
    app.add_typer(group, name="config")

    @group.command("check")
    def check(config: ConfigOption = None) -> None:
        """Load and validate the configuration, print the route table; exit 2 when it cannot work."""
        env = dict(os.environ)
        console = _console()
        try:
            settings, catalog = _load(config, env)
            console.print(route_table(catalog, env))
            validate_runtime(settings, catalog, env)
        except ConfigError as exc:
            typer.echo(f"configuration error:\n{exc}", err=True)
            raise typer.Exit(EXIT_BAD_CONFIG) from None
        active = len(active_routes(catalog, env=env))
        console.print(f"OK: {active} active route(s) of {len(catalog.models)}.")

    @group.command("show")
    def show(config: ConfigOption = None) -> None:
        """Print the effective settings (file + environment + defaults) as JSON. Keys are never shown."""
        try:
            settings = load_settings(config)
        except ConfigError as exc:
            typer.echo(f"configuration error:\n{exc}", err=True)
            raise typer.Exit(EXIT_BAD_CONFIG) from None
        typer.echo(settings.model_dump_json(indent=2))

    @group.command("reference")
    def reference(
        update: Annotated[
            Path | None,
            typer.Option(help="Rewrite the generated block of this Markdown file instead of printing."),
        ] = None,
    ) -> None:
        """Print every setting with its type, default, limits and environment variable (Markdown)."""
        if update is None:
            typer.echo(render_reference(), nl=False)
            return
        try:
            update.write_text(splice_reference(update.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as exc:
            typer.echo(f"cannot update {update}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"updated {update}")
