"""Options and settings loading shared by the commands that talk to a broker.

`--config` and `--bootstrap` mean the same to `qroute worker`, `topics`, `submit` and the report
commands; one definition keeps their help text and behaviour identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qroute.config import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", exists=True, dir_okay=False, help="qroute.toml to read."),
]
BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="host:port of the broker; overrides kafka.bootstrap_servers."),
]


def fail(message: str) -> typer.Exit:
    """Print `error: message` to stderr; raise the returned Exit (status 1)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def settings_for(path: Path | None, bootstrap: str | None) -> Settings:
    """Settings from the file and environment, with `--bootstrap` applied on top."""
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if bootstrap:
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
        settings = settings.model_copy(update={"kafka": kafka})
    return settings
