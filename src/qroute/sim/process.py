"""A simulator in its own process, so benchmarks measure the worker's CPU and not the simulator's.

`with run_in_subprocess(config) as sim:` starts `python -m qroute.sim` on a free
port (the child binds port 0 and reports it through a ready file, so there is
no port race), waits until `/_sim/health` answers, and stops the child on exit.
The handle mirrors `SimServer`: `url`, `port`, `base_url(name)`,
`await ledger()`, `set_outage(name, down)`, `reset()`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from qroute.childproc import die_with_parent
from qroute.sim.config import SimConfig, default_config
from qroute.sim.ledger import Ledger
from qroute.sim.server import provider_base_url

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_POLL_S = 0.02


class SimStartError(RuntimeError):
    """The simulator process did not come up; the message carries the end of its stderr."""


class RemoteSim:
    """Client-side handle to a simulator running elsewhere (control calls go over HTTP)."""

    def __init__(self, config: SimConfig, url: str, port: int, pid: int | None = None) -> None:
        self.config = config
        self.url = url
        self.port = port
        self.pid = pid

    def base_url(self, provider: str) -> str:
        spec = self.config.provider(provider)
        if spec is None:
            raise KeyError(f"no simulated provider named {provider!r}")
        return provider_base_url(self.url, provider, spec.family)

    async def ledger(self, *, entries: bool = True) -> Ledger:
        """The bill so far; `entries=False` fetches totals and counts only."""
        async with httpx.AsyncClient(timeout=30.0) as client:
            response = await client.get(f"{self.url}/_sim/ledger", params={"entries": str(entries).lower()})
        response.raise_for_status()
        return Ledger.model_validate_json(response.content)

    def set_outage(self, provider: str, down: bool) -> None:
        response = httpx.post(
            f"{self.url}/_sim/providers/{provider}/outage", json={"down": down}, timeout=10.0
        )
        if response.status_code == 404:
            raise KeyError(f"no simulated provider named {provider!r}")
        response.raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sim/reset", timeout=10.0).raise_for_status()

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_sim/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def run_in_subprocess(
    config: SimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[RemoteSim]:
    """Start a simulator process serving `config` (default: the built-in one) and stop it afterwards."""
    config = config or default_config()
    with tempfile.TemporaryDirectory(prefix="qroute-sim-") as tmp:
        folder = Path(tmp)
        config_file = folder / "sim.json"
        config_file.write_text(config.model_dump_json(), encoding="utf-8")
        ready_file = folder / "ready.json"
        log_file = folder / "stderr.log"
        command = [sys.executable, "-m", "qroute.sim", "--config", str(config_file), "--host", host]
        command += ["--port", "0", "--ready-file", str(ready_file)]
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
            )
        try:
            sim = _wait_until_up(process, config, ready_file, log_file, startup_timeout_s)
            yield sim
        finally:
            _stop(process)


def _wait_until_up(
    process: subprocess.Popen[bytes], config: SimConfig, ready_file: Path, log_file: Path, timeout_s: float
) -> RemoteSim:
    deadline = time.monotonic() + timeout_s
    sim: RemoteSim | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimStartError(f"the simulator exited with {process.returncode}: {_tail(log_file)}")
        if sim is None and ready_file.exists():
            info = json.loads(ready_file.read_text(encoding="utf-8"))
            sim = RemoteSim(config, info["url"], int(info["port"]), int(info["pid"]))
        if sim is not None and sim.healthy():
            return sim
        time.sleep(_POLL_S)
    raise SimStartError(f"the simulator did not answer /_sim/health within {timeout_s:g}s: {_tail(log_file)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log_file: Path, limit: int = 2000) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no stderr)"
    return text[-limit:].strip() or "(no stderr)"
