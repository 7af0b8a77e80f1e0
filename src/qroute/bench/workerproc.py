"""A `qroute worker` in a child process: the thing being measured, isolated from the bench.

The bench writes the worker's settings to a TOML file, starts the real command
(`qroute worker --config FILE`), waits for its `/readyz`, reads its CPU and memory
from /proc while it runs and stops it with SIGTERM (graceful drain), escalating to
SIGKILL. Its JSON logs go to a file, whose tail explains a worker that died.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from qroute.bench.procfs import cpu_seconds, peak_rss_bytes
from qroute.childproc import die_with_parent
from qroute.config import Settings
from qroute.embedded.ports import free_port
from qroute.tomlfile import write_settings

READY_TIMEOUT_S = 60.0
_POLL_S = 0.1
_KILL_GRACE_S = 10.0
_LOG_TAIL_BYTES = 3000
_LAUNCH = "from qroute.cli import main; main()"


class WorkerStartError(RuntimeError):
    """The worker exited or never became ready; the message carries the end of its log."""


def child_environment() -> dict[str, str]:
    """This process's environment without `QROUTE_*`: the config file alone decides the settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("QROUTE_")}


class WorkerProcess:
    """One worker subprocess; use `async with`, which stops it on the way out whatever happened."""

    def __init__(self, settings: Settings, folder: Path, *, name: str, log_level: str = "INFO") -> None:
        port = free_port("127.0.0.1")
        worker = settings.worker.model_copy(update={"metrics_host": "127.0.0.1", "metrics_port": port})
        self.settings = settings.model_copy(update={"worker": worker})
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self._config = folder / f"{name}.toml"
        self._log_path = folder / f"{name}.log"
        self._log_level = log_level
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("worker not started")
        return self._proc.pid

    def start(self) -> None:
        write_settings(self.settings, self._config)
        command = [sys.executable, "-c", _LAUNCH, "worker", "--config", str(self._config)]
        command += ["--log-level", self._log_level]
        self._log = self._log_path.open("wb")
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            preexec_fn=die_with_parent(),
        )
        atexit.register(self.kill)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Block until /readyz answers 200 (partitions assigned); returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    code = None if self._proc is None else self._proc.returncode
                    raise WorkerStartError(f"worker {self.name} exited (rc={code}).{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass  # not listening yet
                await asyncio.sleep(_POLL_S)
        raise WorkerStartError(f"worker {self.name} not ready after {timeout_s:g}s.{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_bytes(self) -> int:
        return peak_rss_bytes(self.pid)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (drain, commit, leave the group), then SIGKILL after the drain timeout."""
        proc = self._proc
        if proc is None:
            return None
        wait_s = timeout_s if timeout_s is not None else self.settings.worker.drain_timeout_s + _KILL_GRACE_S
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, wait_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self._close()
        return proc.returncode

    def kill(self) -> None:
        """Last resort (interpreter exit): never leave a worker behind."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close()

    def log_tail(self) -> str:
        try:
            data = self._log_path.read_bytes()[-_LOG_TAIL_BYTES:]
        except OSError:
            return ""
        text = data.decode("utf-8", "replace").strip()
        return f"\nworker log ({self._log_path}):\n{text}" if text else ""

    def _close(self) -> None:
        atexit.unregister(self.kill)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
