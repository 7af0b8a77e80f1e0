"""Run a simulator in the foreground until SIGINT/SIGTERM (`qroute sim`, `python -m qroute.sim`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

from qroute.sim.config import SimConfig
from qroute.sim.server import SimServer


async def serve(config: SimConfig, host: str, port: int, on_ready: Callable[[SimServer], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready` runs once the port is bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SimServer(config, host=host, port=port) as sim:
            on_ready(sim)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def write_ready_file(path: Path, sim: SimServer) -> None:
    """Tell a parent process the bound port: written whole, then renamed into place."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"port": sim.port, "pid": os.getpid(), "url": sim.url}), encoding="utf-8")
    partial.replace(path)
