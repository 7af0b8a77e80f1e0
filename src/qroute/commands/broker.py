"""`qroute broker`: run the embedded Tansu broker in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated, NoReturn

import typer

from qroute.embedded import BrokerBinaryNotFoundError, BrokerStartError, EmbeddedBroker


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM stops the broker the same way Ctrl-C does."""
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command()
    def broker(
        port: Annotated[
            int | None,
            typer.Option("--port", "-p", min=1, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
        ] = None,
    ) -> None:
        """Run a local Kafka-compatible broker (Tansu, memory only) and print its bootstrap address.

        Data lives in memory and is gone when the broker stops.
        """
        embedded = EmbeddedBroker(port=port)
        previous = signal.signal(signal.SIGTERM, _interrupt)  # before start: no orphan on an early SIGTERM
        rc: int | None = None
        try:
            embedded.start()
            typer.echo(embedded.bootstrap)  # alone on stdout so scripts can read it
            typer.echo("Embedded broker running (memory only). Ctrl-C to stop.", err=True)
            rc = embedded.wait()
        except (BrokerBinaryNotFoundError, BrokerStartError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            embedded.stop()
        if rc is not None:
            typer.echo(f"error: the broker exited by itself with rc={rc}.", err=True)
            raise typer.Exit(1)
