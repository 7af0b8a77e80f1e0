"""Crash recovery with real `qroute worker` processes: SIGKILL mid-run, restart, nothing lost.

Why duplicates are bounded by the killed worker's `max_in_flight`: its jobs still
running at the kill had published nothing, so the next owner's answer to them is the
first. Duplicates are the jobs it had published but not yet committed. Every provider
call takes 0.5 s here; as long as the gap between two commits (`commit_interval_s`
0.1 s plus the commit's round trip) stays under that, each in-flight slot finishes at
most one job within the gap, so at most `max_in_flight` are uncommitted at the kill.
Without a short timer, `worker.commit_every_records` (default 100) bounds the gap by
count instead: a commit starts as soon as the done prefix moved that far.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from qroute.config import Settings, load_settings
from qroute.sim import SimServer
from qroute.testing import produce_jobs, sim_routes_settings

from .processes import WorkerProcess, child_environment, settings_toml, worker_processes
from .support import TopicTail, extra_copies, job_ids, make_jobs, read_json, two_routes, with_knobs

pytestmark = pytest.mark.broker

KILLED_MAX_IN_FLIGHT = 24
LATENCY_S = 0.5
COMMIT_INTERVAL_S = 0.1


async def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll `condition` (log files, process state) without blocking the simulator's event loop."""
    for _ in range(round(timeout_s / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def share_the_topic(topic: str, partitions: int, *workers: WorkerProcess) -> Callable[[], bool]:
    """True once every worker holds part of `topic` and together they hold all of it, disjointly."""

    def settled() -> bool:
        held = [w.assigned(topic) for w in workers]
        union = set().union(*held)
        return all(held) and sum(map(len, held)) == len(union) == partitions

    return settled


class TestConfigFile:
    """The config file handed to worker processes says exactly what the test built."""

    def test_settings_round_trip_through_toml(self, tmp_path: Path) -> None:
        """Settings written as TOML load back equal, simulator catalog and knobs included."""

        class Endpoint:
            config = two_routes(latency_s=LATENCY_S)

            def base_url(self, provider: str) -> str:
                return f"http://127.0.0.1:9/{provider}/v1"

        settings = with_knobs(
            sim_routes_settings(Settings(), Endpoint()),
            kafka={"bootstrap_servers": "127.0.0.1:9", "session_timeout_ms": 1500},
            worker={"max_in_flight": 7, "metrics_port": 0},
            topics={"delay_tiers_s": [1, 5]},
        )
        path = tmp_path / "qroute.toml"
        path.write_text(settings_toml(settings), encoding="utf-8")
        assert load_settings(path, env={}) == settings


class TestLaunch:
    """`python -m qroute.cli` is the same command line as the `qroute` entry point."""

    def test_module_invocation_runs_the_cli(self) -> None:
        """`python -m qroute.cli worker --help` prints the worker's help instead of silently exiting."""
        shown = subprocess.run(
            [sys.executable, "-m", "qroute.cli", "worker", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=child_environment(),
        )
        assert shown.returncode == 0, shown.stderr
        assert "--config" in shown.stdout


class TestCrash:
    """A worker process killed mid-run loses no job; its duplicates stay within its in-flight cap."""

    @pytest.mark.slow
    async def test_sigkill_mid_run_then_restart(
        self, unique_settings: Settings, tmp_path: Path, record_property: Callable[[str, object], None]
    ) -> None:
        """Two workers; one is SIGKILLed mid-run and restarted → every job answered, duplicates ≤ max_in_flight."""
        jobs = make_jobs(600, "crash")
        ids = [job.id for job in jobs]
        jobs_topic = unique_settings.topics.jobs
        async with SimServer(two_routes(latency_s=LATENCY_S)) as sim:
            settings = with_knobs(
                sim_routes_settings(unique_settings, sim),
                worker={
                    "max_in_flight": KILLED_MAX_IN_FLIGHT,
                    "commit_interval_s": COMMIT_INTERVAL_S,
                    "metrics_port": 0,
                },
            )
            with worker_processes(settings, tmp_path) as spawn:
                victim, survivor = spawn("victim"), spawn("survivor")
                partitions = settings.topics.partitions
                await wait_for(
                    share_the_topic(jobs_topic, partitions, victim, survivor),
                    timeout_s=60,
                    what="both workers to share the jobs topic",
                )
                async with TopicTail.running(settings, settings.topics.results) as results:
                    await produce_jobs(settings, jobs)
                    await results.wait_until(
                        lambda: len(results.ids) >= len(jobs) // 4 and bool(victim.events("job_finished")),
                        timeout_s=60,
                        what="a quarter of the results, some from the victim",
                    )
                    victim.signal(signal.SIGKILL)
                    assert await victim.wait(10) == -signal.SIGKILL
                    answered_at_kill = len(results.ids)
                    restarted = spawn("restarted")
                    await results.wait_for_ids(ids, timeout_s=120)
                for worker in (survivor, restarted):
                    worker.signal(signal.SIGTERM)
                for worker in (survivor, restarted):
                    assert await worker.wait(60) == 0, worker.log_tail()
            ledger = await sim.ledger(entries=False)

        results_by_id = job_ids(await read_json(settings, settings.topics.results))
        cost_records = await read_json(settings, settings.topics.costs)
        costs_by_id = job_ids(cost_records)
        recorded_calls = sum(a["billed"] for c in cost_records for a in c["attempts"])
        recorded_cost = sum((Decimal(c["total_cost_usd"]) for c in cost_records), start=Decimal(0))
        lost_calls = ledger.billed_count - recorded_calls
        duplicates = extra_copies(results_by_id)
        repeated = {job_id for job_id, n in results_by_id.items() if n > 1}
        finished_by_victim = {event["job_id"] for event in victim.events("job_finished")}
        record_property("duplicates", duplicates)
        print(
            f"\nSIGKILL test: {duplicates} duplicate results and {extra_copies(costs_by_id)} duplicate cost "
            f"records (bound {KILLED_MAX_IN_FLIGHT}); {len(repeated & finished_by_victim)} of the "
            f"{len(repeated)} repeated jobs were logged finished by the killed worker, which finished "
            f"{len(finished_by_victim)} jobs; {answered_at_kill} of {len(jobs)} answered at the kill; "
            f"{lost_calls} billed calls died with it (USD {ledger.total_cost - recorded_cost} unrecorded)"
        )
        assert set(results_by_id) == set(costs_by_id) == set(ids), "every job answered, with a cost record"
        assert answered_at_kill < len(jobs), "the kill landed mid-run"
        assert restarted.events("partitions_assigned"), "the restarted worker rejoined the group"
        assert duplicates <= KILLED_MAX_IN_FLIGHT
        assert extra_copies(costs_by_id) <= KILLED_MAX_IN_FLIGHT
        # a call the provider billed while its worker died is in no cost record: one per in-flight slot at most
        assert 0 <= lost_calls <= KILLED_MAX_IN_FLIGHT
        assert recorded_cost <= ledger.total_cost
        for worker in (survivor, restarted):
            (summary,) = worker.events("worker_stopped")
            assert summary["handed_back"] == 0, "graceful stops and rebalances hand back nothing"
