"""Measure the provider simulator's capacity (requests/s) on this machine.

Starts the simulator in its own process (zero latency, no limits, no faults),
drives it with an aiohttp client at a fixed concurrency for a bounded number of
requests, and prints throughput plus the simulator process's CPU time per
request, read from /proc (so the number is honest even when the client, on the
same machine, competes for the cores).

    .venv/bin/python scripts/bench_sim.py [--requests 20000] [--concurrency 50] [--family openai|anthropic|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from qroute.sim import RemoteSim, run_in_subprocess
from qroute.sim.testing import ANTHROPIC_HEADERS, chat_request, messages_request, sim_config, sim_provider

PROMPT = "Summarise the attached quarterly report in three sentences for the board. " * 4


@dataclass
class Run:
    requests: int
    seconds: float
    statuses: dict[int, int]
    server_cpu_s: float


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def _drive(sim: RemoteSim, total: int, concurrency: int, family: str) -> Run:
    targets = []
    if family in ("openai", "both"):
        body = json.dumps(chat_request("sim-small", PROMPT, max_tokens=128)).encode()
        targets.append((f"{sim.base_url('oa')}/chat/completions", body, {"content-type": "application/json"}))
    if family in ("anthropic", "both"):
        body = json.dumps(messages_request("sim-small", PROMPT, max_tokens=128)).encode()
        targets.append((f"{sim.base_url('an')}/v1/messages", body, ANTHROPIC_HEADERS))
    statuses: dict[int, int] = {}
    issued = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        while issued < total:
            url, body, headers = targets[issued % len(targets)]
            issued += 1
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm up connections and code paths before timing.
        await asyncio.gather(*(session.post(t[0], data=t[1], headers=t[2]) for t in targets * 10))
        assert sim.pid is not None
        cpu_before = _cpu_seconds(sim.pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(sim.pid) - cpu_before
    return Run(total, elapsed, statuses, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--family", choices=("openai", "anthropic", "both"), default="both")
    args = parser.parse_args()
    config = sim_config(sim_provider("oa", "openai"), sim_provider("an", "anthropic"))
    with run_in_subprocess(config) as sim:
        run = asyncio.run(_drive(sim, args.requests, args.concurrency, args.family))
    rate = run.requests / run.seconds
    per_cpu = run.requests / run.server_cpu_s if run.server_cpu_s else float("inf")
    print(
        f"simulator: {run.requests} requests ({args.family}) at concurrency {args.concurrency} "
        f"in {run.seconds:.2f}s = {rate:,.0f} req/s; server CPU {run.server_cpu_s:.2f}s "
        f"= {per_cpu:,.0f} req per CPU-second ({1e6 / per_cpu:.0f} µs/request); statuses {run.statuses}"
    )


if __name__ == "__main__":
    main()
