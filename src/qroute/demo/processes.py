"""Worker subprocesses for the demo: start `qroute worker`, wait until ready, always stop them.

Workers run in their own session so that the demo alone decides when they stop
(a Ctrl-C in the terminal reaches the demo, which then stops them in order:
SIGTERM, a drain, SIGKILL after a grace period). On Linux each worker also asks
the kernel for SIGTERM should the demo die without cleaning up, so not even a
`kill -9` of the demo leaves workers behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from qroute.childproc import die_with_parent

# `python -c` rather than the `qroute` script: works wherever the package imports (venv or not).
_WORKER_COMMAND = ("-c", "from qroute.cli import main; main()", "worker", "--log-format", "json")
_POLL_S = 0.1
_TAIL_BYTES = 3000


class WorkerStartError(RuntimeError):
    """A worker exited or did not become ready; the message ends with its log."""


@dataclass
class WorkerProcess:
    """One `qroute worker` child, its log file and its health endpoint."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - _TAIL_BYTES))
                return log.read().decode("utf-8", "replace").strip() or "(empty log)"
        except OSError:
            return "(no log)"


def spawn_worker(
    name: str, *, config: Path, log_path: Path, health_port: int, env: Mapping[str, str]
) -> WorkerProcess:
    """Start one worker with `config`; its metrics/health port comes from the environment."""
    child_env = {**env, "QROUTE_WORKER__METRICS_PORT": str(health_port)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *_WORKER_COMMAND, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    return WorkerProcess(name, process, log_path, f"http://127.0.0.1:{health_port}/readyz")


def wait_ready(workers: Sequence[WorkerProcess], timeout_s: float) -> None:
    """Block until every worker answers /readyz with 200 at the same time (all partitions assigned).

    Submitting before the group has settled would make the first worker take every
    partition and then hand half of them back in a rebalance mid-run.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while True:
            for worker in workers:
                if not worker.alive():
                    raise WorkerStartError(
                        f"worker {worker.name} exited with code {worker.process.returncode}:\n"
                        f"{worker.log_tail()}"
                    )
            if all(_ready(client, worker) for worker in workers):
                return
            if time.monotonic() > deadline:
                late = [w.name for w in workers if not _ready(client, w)]
                raise WorkerStartError(
                    f"workers {', '.join(late)} not ready within {timeout_s:g} s:\n{workers[0].log_tail()}"
                )
            time.sleep(_POLL_S)


def _ready(client: httpx.Client, worker: WorkerProcess) -> bool:
    try:
        return client.get(worker.health_url).status_code == 200
    except httpx.HTTPError:
        return False


def stop_workers(workers: Sequence[WorkerProcess], *, grace_s: float) -> dict[str, int]:
    """SIGTERM every worker (they drain and commit), SIGKILL any still running after `grace_s`.

    Returns each worker's exit code. Safe to call twice and with exited workers.
    """
    for worker in workers:
        if worker.alive():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    codes: dict[str, int] = {}
    for worker in workers:
        try:
            codes[worker.name] = worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            codes[worker.name] = worker.process.wait()
    return codes
