"""`qroute worker` as a real child process: config written as TOML, JSON logs read back, killed by group.

Each child runs in its own session (process group), so a kill reaches everything it
started and nothing else; `worker_processes()` kills whatever is still alive when the
test ends, passed or failed, so no worker outlives its test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from qroute.config import Settings

QROUTE = Path(sys.executable).with_name("qroute")
"""The installed `qroute` entry point of this interpreter's environment."""

_SECTIONS = ("kafka", "topics", "worker", "routing")


def _toml_value(value: Any) -> str:
    """A TOML literal for JSON data: a JSON string is a valid TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _table(header: str, fields: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{key} = {_toml_value(value)}" for key, value in fields.items()), ""]


def settings_toml(settings: Settings) -> str:
    """`settings` as a qroute.toml that `load_settings` reads back to the same settings."""
    data = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    lines = [f"{key} = {_toml_value(data[key])}" for key in ("use_default_catalog",) if key in data]
    lines.append("")
    for section in _SECTIONS:
        lines += _table(f"[{section}]", data.get(section, {}))
    for name, provider in data.get("providers", {}).items():
        lines += _table(f"[providers.{name}]", provider)
    for model in data.get("models", []):
        lines += _table("[[models]]", model)
    return "\n".join(lines)


def child_environment() -> dict[str, str]:
    """This environment without `QROUTE_*` variables: the config file alone decides the settings."""
    return {key: value for key, value in os.environ.items() if not key.startswith("QROUTE_")}


class WorkerProcess:
    """One `qroute worker --config FILE` child with its JSON log in a file."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(QROUTE), "worker", "--config", str(config), "--log-format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=child_environment(),
            start_new_session=True,  # its own process group: signals reach it and its children only
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the child's process group (it leads the group, so pgid == pid)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    async def wait(self, timeout_s: float) -> int:
        """The exit code, polling without blocking the event loop (the simulator runs in it)."""
        deadline = time.monotonic() + timeout_s
        while (code := self.proc.poll()) is None:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.log_path.stem} still running after {timeout_s}s")
            await asyncio.sleep(0.05)
        return code

    def close(self) -> None:
        """Kill the group if still running, reap the child, close the log."""
        if self.alive:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def events(self, name: str) -> list[dict[str, Any]]:
        """Log events called `name`, in order (a line cut by a kill is skipped)."""
        found: list[dict[str, Any]] = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if f'"{name}"' not in line:
                continue
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    def assigned(self, topic: str) -> set[int]:
        """Partitions of `topic` in the child's latest assignment (empty before its first)."""
        latest = self.events("partitions_assigned")[-1:]
        names = latest[0]["partitions"] if latest else []
        return {int(n.rsplit("/", 1)[1]) for n in names if n.rsplit("/", 1)[0] == topic}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]


@contextlib.contextmanager
def worker_processes(settings: Settings, folder: Path) -> Iterator[Callable[[str], WorkerProcess]]:
    """`spawn(name)` starts a worker on `settings`; every child is killed (if alive) on exit."""
    config = folder / "qroute.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    children: list[WorkerProcess] = []

    def spawn(name: str) -> WorkerProcess:
        child = WorkerProcess(config, folder / f"{name}.log")
        children.append(child)
        return child

    try:
        yield spawn
    finally:
        for child in children:
            child.close()
