"""`qroute demo` as a user runs it (a subprocess), checked against what the topics really hold."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qroute.config import Settings
from qroute.demo.world import demo_topics
from qroute.testing import consume_json

pytestmark = [pytest.mark.broker, pytest.mark.slow]

JOBS = 60
BROKEN = 2
DEMO_TIMEOUT_S = 240


async def run_demo(*args: str) -> tuple[int, str]:
    """`qroute demo ARGS` in a child process; (exit code, combined output)."""
    process = await start_demo(*args)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEMO_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, output.decode("utf-8", "replace")


async def start_demo(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from qroute.cli import main; main()",
        "demo",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def job_ids_in(path: str) -> list[str]:
    """Job ids of a JSONL results file, sorted."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return sorted(json.loads(line)["job_id"] for line in lines)


def latest_by_job(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["job_id"]): r for r in records}


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmdline:
                pids.append(int(entry.name))
    return pids


class TestDemoCommand:
    async def test_summary_numbers_match_the_result_cost_and_dlq_topics(
        self, kafka_settings: Settings, tmp_path: Path
    ) -> None:
        """60 jobs through two worker processes: every summary number is what the topics hold, exactly."""
        prefix = f"t{uuid.uuid4().hex[:10]}."
        out_dir = tmp_path / "out"
        summary_path = tmp_path / "summary.json"
        code, output = await run_demo(
            "--jobs",
            str(JOBS),
            "--deadline-s",
            "45",
            "--bootstrap",
            str(kafka_settings.kafka.bootstrap_servers),
            "--topic-prefix",
            prefix,
            "--out",
            str(out_dir),
            "--json-summary",
            str(summary_path),
        )
        assert code == 0, output
        assert "SIMULATED" in output
        summary = json.loads(summary_path.read_bytes())

        settings = kafka_settings.model_copy(update={"topics": demo_topics(prefix)})
        results = latest_by_job(await consume_json(settings, settings.topics.results, JOBS))
        costs = latest_by_job(await consume_json(settings, settings.topics.costs, JOBS))
        dead = await consume_json(settings, settings.topics.dlq, BROKEN)

        assert summary["jobs_submitted"] == len(results) == len(costs) == JOBS
        statuses = Counter(r["status"] for r in results.values())
        assert (summary["succeeded"], summary["failed"], summary["missing"]) == (
            statuses["succeeded"],
            statuses["failed"],
            0,
        )
        total = sum((Decimal(c["total_cost_usd"]) for c in costs.values()), Decimal(0))
        assert Decimal(summary["spend_usd"]) == total > 0
        assert Decimal(summary["ledger_total_usd"]) == total, "the simulator billed what the cost topic says"

        by_route: defaultdict[str, Decimal] = defaultdict(Decimal)
        for record in costs.values():
            for attempt in record["attempts"]:
                by_route[f"{attempt['provider']}/{attempt['model']}"] += Decimal(attempt["cost_usd"])
        assert {r["route"]: Decimal(r["spend_usd"]) for r in summary["spend_by_route"]} == {
            route: spend for route, spend in by_route.items() if spend
        }
        attempts = [a for record in costs.values() for a in record["attempts"]]
        assert summary["attempts"] == len(attempts)
        assert summary["rate_limited"] == sum(a["outcome"] == "rate_limited" for a in attempts)
        assert summary["dead_letters"] == len(dead) == BROKEN

        assert job_ids_in(summary["results_file"]) == sorted(results)
        assert processes_mentioning(str(out_dir)) == [], "a worker outlived the demo"

    async def test_sigint_mid_run_stops_broker_simulator_and_workers(self, tmp_path: Path) -> None:
        """Ctrl-C while jobs are running: exit code 130, and every process the demo started is gone."""
        process = await start_demo("--jobs", "400", "--out", str(tmp_path / "out"))
        assert process.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(120):
            while not any(line.startswith("Batch ") for line in seen):
                line = (await process.stdout.readline()).decode("utf-8", "replace")
                assert line, "the demo ended before submitting:\n" + "".join(seen)
                seen.append(line)
            await asyncio.sleep(1.0)
            process.send_signal(signal.SIGINT)
            rest, _ = await process.communicate()
        output = "".join(seen) + rest.decode("utf-8", "replace")
        assert process.returncode == 130, output
        pids = [int(pid) for group in re.findall(r"\bpids? ([\d, ]+\d)", output) for pid in group.split(", ")]
        assert len(pids) == 4, output  # broker, simulator, two workers
        # The demo waited for each of them before exiting, so none may be running now.
        assert [pid for pid in pids if alive(pid)] == [], output
