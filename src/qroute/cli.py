"""The `qroute` command. Each command group lives in `qroute.commands.<name>`."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="qroute",
    help="Cost-first routing worker for asynchronous LLM jobs on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Cost-first routing worker for asynchronous LLM jobs on Kafka."""


# Each module exposes `register(app)`; kept in one list so the command surface is visible here.
_COMMAND_MODULES = (
    "config",
    "route",
    "schemas",
    "sim",
    "broker",
    "topics",
    "worker",
    "submit",
    "reports",
    "demo",
    "bench",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"qroute.commands.{_name}")
    except ModuleNotFoundError as exc:  # a command group not built yet
        if exc.name != f"qroute.commands.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m qroute.cli ...` behaves like the `qroute` entry point
    main()
