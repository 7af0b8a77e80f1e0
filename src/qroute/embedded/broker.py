"""`EmbeddedBroker`: one Tansu process on a loopback port, memory storage, for the demo and tests.

Facts this relies on are in the Tansu notes (shared/reference/tansu.md): the port opens in
about 15 ms, SIGTERM exits at once, data lives in memory only, and a port clash exits rc=0
after a panic instead of failing loudly.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from qroute.childproc import die_with_parent
from qroute.embedded.binary import find_tansu_binary
from qroute.embedded.ports import free_port, port_answers, port_is_free, process_listens_on

# Variables Tansu reads that would change the broker behind our back (schema validation).
_SCRUBBED_ENV = ("SCHEMA_REGISTRY",)
_AUTO_PORT_ATTEMPTS = 3
_POLL_S = 0.01
_STDERR_TAIL_BYTES = 2048


class BrokerStartError(RuntimeError):
    """The broker process did not come up (port taken, exited early, or too slow)."""


class _PortLost(BrokerStartError):
    """The process exited after spawning: with an automatic port, try another one."""


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 with in-memory storage; data is gone when it stops.

    Use as a context manager or call `start()` / `stop()`. Without `port`, a free one is
    picked (and retried if another process grabs it first).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        binary: Path | None = None,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self._requested_port = port
        self._host = host
        self._binary = binary
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for Kafka clients; only valid while running."""
        if self._port is None or not self.running:
            raise RuntimeError("EmbeddedBroker is not running; call start() first.")
        return f"{self._host}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Spawn the broker, wait until it listens, and return the bootstrap address."""
        if self.running:
            return self.bootstrap
        binary = self._binary or find_tansu_binary()
        attempts = 1 if self._requested_port is not None else _AUTO_PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port(self._host)
            if not port_is_free(self._host, port):
                if self._requested_port is not None:
                    raise BrokerStartError(f"Port {port} on {self._host} is already in use.")
                continue
            try:
                self._spawn(binary, port)
                self._wait_ready(port)
            except _PortLost:
                self._discard()
                if attempt == attempts:
                    raise
                continue
            except BaseException:
                self._discard()
                raise
            self._port = port
            atexit.register(self.stop)
            return self.bootstrap
        raise BrokerStartError(f"No free port found on {self._host} after {attempts} attempts.")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout_s`. Idempotent; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_stderr()
        self._proc = None
        return proc.returncode

    def wait(self) -> int:
        """Block until the broker process exits on its own; returns its exit code."""
        if self._proc is None:
            raise RuntimeError("EmbeddedBroker is not running; call start() first.")
        return self._proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, binary: Path, port: int) -> None:
        url = f"tcp://{self._host}:{port}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; closed in stop()
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
            preexec_fn=die_with_parent(),
        )

    def _wait_ready(self, port: int) -> None:
        """Return once *our* process listens on the port; raise if it exits or times out."""
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            rc = self._proc.poll()
            if rc is not None:
                error = _PortLost if self._requested_port is None else BrokerStartError
                raise error(
                    f"Tansu exited with rc={rc} before listening on {self._host}:{port} "
                    f"(a port clash exits with rc=0).{self._stderr_tail()}"
                )
            if port_answers(self._host, port):
                owns = process_listens_on(self._proc.pid, port)
                if owns or (owns is None and self._proc.poll() is None):
                    return
                # Someone else answers on the port: Tansu is about to panic with AddrInUse.
            time.sleep(_POLL_S)
        raise BrokerStartError(
            f"Tansu did not listen on {self._host}:{port} within {self._start_timeout_s:g}s."
            f"{self._stderr_tail()}"
        )

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
        tail = self._stderr.read().decode("utf-8", "replace").strip()
        return f"\nTansu stderr:\n{tail}" if tail else ""

    def _discard(self) -> None:
        """Kill a process that failed to start and forget it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
