"""`qroute schemas export|check`: the JSON Schema files of the wire contracts and the AsyncAPI documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qroute.schemas_export import DEFAULT_OUT, export, stale

OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", file_okay=False, help="Directory of the schema files."),
]


def register(app: typer.Typer) -> None:
    schemas_app = typer.Typer(
        help=(
            "JSON Schemas of Job, Result, CostRecord and DeadLetter, and the AsyncAPI "
            "documents of the producer client and the worker."
        ),
        no_args_is_help=True,
    )
    app.add_typer(schemas_app, name="schemas")

    @schemas_app.command("export")
    def export_command(out: OutOption = DEFAULT_OUT) -> None:
        """Write the JSON Schemas and the AsyncAPI documents from the models.

        job.json, result.json, cost_record.json, dead_letter.json, and
        asyncapi-client.json and asyncapi-worker.json (default settings: default topic names).
        """
        for path in export(out):
            typer.echo(f"wrote {path}")

    @schemas_app.command("check")
    def check_command(out: OutOption = DEFAULT_OUT) -> None:
        """Exit 1 when a schema or AsyncAPI file is missing or differs from what export writes."""
        names = stale(out)
        for name in names:
            typer.echo(f"stale: {out / name}.json (run `make schemas` or `qroute schemas export`)", err=True)
        if names:
            raise typer.Exit(1)
        typer.echo(f"schemas in {out} are up to date")
