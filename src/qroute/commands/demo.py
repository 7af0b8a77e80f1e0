"""`qroute demo`: the one-command tour (placeholder until the demo issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo() -> None:
        """Run the whole flow on an embedded broker and simulated providers."""
        typer.echo(
            "qroute demo is not built yet: it arrives with the demo issue. "
            "Meanwhile `qroute config check` shows the route table."
        )
