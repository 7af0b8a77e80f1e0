"""The demo's pure parts: passages, the batch, the generated worker config, the summary, process stops."""

from __future__ import annotations

import base64
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qroute.catalog.types import ModelSpec
from qroute.codec import DecodeFailure, decode_job
from qroute.config import Settings, load_settings
from qroute.demo.batch import INSTRUCTION, broken_records, nightly_batch
from qroute.demo.collect import Tally
from qroute.demo.passages import MIN_PASSAGE_CHARS, chapters, load_text, spread, windows
from qroute.demo.processes import WorkerProcess, stop_workers
from qroute.demo.summary import count_failovers, percentile, spend_by_route, summarize
from qroute.demo.world import demo_settings, demo_topics, worker_environment, write_worker_config
from qroute.sim import default_config
from qroute.testing import sim_routes_settings
from qroute.tomlfile import dumps

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


class TestPassages:
    def test_the_bundled_book_has_twelve_chapters(self) -> None:
        """The shipped text loads from the package and splits into chapters I..XII."""
        found = [numeral for numeral, _ in chapters(load_text())]
        assert found == ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]

    def test_windows_are_long_enough_and_stay_in_their_chapter(self) -> None:
        """Windows reach the minimum length except at a chapter's end; there are enough for 500 jobs."""
        passages = windows(load_text())
        assert len(passages) >= 500
        short = [p for p in passages if len(p.text) < MIN_PASSAGE_CHARS]
        assert len(short) <= 12, "only a chapter's last window may be short"
        assert all("CHAPTER" not in p.text for p in passages)

    def test_spread_takes_evenly_and_cycles_past_the_end(self) -> None:
        """A small batch spans the whole book; a batch larger than the book reuses passages in order."""
        passages = windows(load_text())
        sample = spread(passages, 12)
        assert len(sample) == 12
        assert len({p.chapter for p in sample}) >= 10
        assert spread(passages, len(passages) + 3)[-3:] == passages[:3]
        assert spread(passages, 0) == []


class TestBatch:
    def test_jobs_carry_the_instruction_deadline_and_budget(self) -> None:
        """Each job asks for two sentences, has max_tokens 120 and the batch deadline, and a unique id."""
        deadline = T0 + timedelta(seconds=60)
        jobs = nightly_batch(
            spread(windows(load_text()), 25), run_id="r1", batch_id="b1", deadline=deadline, created_at=T0
        )
        assert len({job.id for job in jobs}) == 25
        assert all(job.messages[0].content.startswith(INSTRUCTION) for job in jobs)
        assert {job.params.max_tokens for job in jobs} == {120}
        assert {job.constraints.deadline for job in jobs} == {deadline}
        assert {job.batch_id for job in jobs} == {"b1"}

    def test_broken_records_are_rejected_by_the_decoder(self) -> None:
        """Both deliberate bad lines fail decoding, so the worker dead-letters them."""
        failures = [decode_job(record.value) for record in broken_records("r1")]
        assert all(isinstance(f, DecodeFailure) for f in failures)
        assert [f.reason for f in failures if isinstance(f, DecodeFailure)] == [
            "invalid_json",
            "schema_violation",
        ]


class TestWorkerConfig:
    def test_generated_config_loads_back_into_the_same_settings(self, tmp_path: Path) -> None:
        """The TOML the workers get, read by the real loader, equals the demo's settings (sim catalog included)."""

        class Sim:
            config = default_config()

            def base_url(self, provider: str) -> str:
                return f"http://127.0.0.1:9/{provider}/v1"

        base = demo_settings(Settings(), bootstrap="127.0.0.1:9092", prefix="p.", run_id="r1", embedded=True)
        settings = sim_routes_settings(base, Sim())
        path = write_worker_config(settings, tmp_path / "worker.toml")
        assert load_settings(path, env={}) == settings

    def test_topics_are_prefixed_and_demo_sized(self) -> None:
        """Every topic name carries the prefix; delay tiers fit a one-minute deadline."""
        topics = demo_topics("x.")
        names = [
            topics.jobs,
            topics.results,
            topics.costs,
            topics.dlq,
            topics.delay_prefix,
            *topics.reply_prefixes,
        ]
        assert all(name.startswith("x.qroute.") for name in names)
        assert max(topics.delay_tiers_s) <= 60

    def test_embedded_broker_gets_a_short_session(self) -> None:
        """Tansu holds joins for half a session, so the embedded broker gets 3 s; Kafka's floor is 6 s."""
        embedded = demo_settings(Settings(), bootstrap="h:1", prefix="", run_id="r", embedded=True)
        external = demo_settings(Settings(), bootstrap="h:1", prefix="", run_id="r", embedded=False)
        assert embedded.kafka.session_timeout_ms == 3000
        assert external.kafka.session_timeout_ms == 6000
        assert embedded.worker.metrics_host == "127.0.0.1"

    def test_worker_environment_drops_qroute_variables(self) -> None:
        """QROUTE_* would override the generated file, so workers do not inherit them; keys stay."""
        env = worker_environment(
            {"QROUTE_KAFKA__BOOTSTRAP_SERVERS": "x:1", "OPENAI_API_KEY": "k", "PATH": "/b"}
        )
        assert env == {"OPENAI_API_KEY": "k", "PATH": "/b"}


class TestTomlWriter:
    def test_round_trip_through_tomllib(self) -> None:
        """Nested tables, arrays of tables, lists, escapes and floats read back equal; None is left out."""
        data: dict[str, Any] = {
            "name": 'quote " backslash \\ tab \t newline \n del \x7f é',
            "flag": True,
            "n": 3,
            "x": 0.25,
            "tiny": 1e-05,
            "tiers": [5, 15],
            "empty": [],
            "skip": None,
            "spaced key": "v",
            "table": {"inner": {"deep": 1}, "list": ["a", "b"]},
            "rows": [{"a": 1}, {"a": 2, "sub": {"b": "c"}}],
        }
        expected = {k: v for k, v in data.items() if v is not None}
        assert tomllib.loads(dumps(data)) == expected

    def test_unsupported_values_are_refused(self) -> None:
        """A value TOML cannot hold as written raises instead of producing a wrong file."""
        with pytest.raises(TypeError):
            dumps({"when": datetime(2026, 1, 1, tzinfo=UTC)})


def _model(route: str, input_per_m: str, output_per_m: str) -> ModelSpec:
    provider, model = route.split("/")
    return ModelSpec(
        provider=provider,
        model=model,
        tier=2,
        input_per_m=Decimal(input_per_m),
        output_per_m=Decimal(output_per_m),
        context_window=100_000,
        max_output_tokens=4096,
        price_source="test",
        price_date=T0.date(),
    )


def _attempt(route: str, outcome: str, cost: str = "0", billed: bool = False) -> dict[str, Any]:
    provider, model = route.split("/")
    return {"provider": provider, "model": model, "outcome": outcome, "billed": billed, "cost_usd": cost}


def _result(job_id: str, route: str | None, *, seconds: float, error: str | None = None) -> dict[str, Any]:
    provider, model = route.split("/") if route else (None, None)
    return {
        "job_id": job_id,
        "status": "failed" if error else "succeeded",
        "provider": provider,
        "model": model,
        "usage": None if error else {"input_tokens": 1000, "output_tokens": 100},
        "error": {"type": error, "message": "x"} if error else None,
        "timings": {
            "created_at": T0.isoformat(),
            "finished_at": (T0 + timedelta(seconds=seconds)).isoformat(),
        },
    }


class TestSummary:
    def test_failovers_count_route_switches_after_failures(self) -> None:
        """Retrying the same route is not a failover; moving on after a failure is; success ends it."""
        attempts = [
            _attempt("cheap/a", "rate_limited"),
            _attempt("cheap/a", "rate_limited"),
            _attempt("flaky/b", "overloaded"),
            _attempt("mid/c", "success"),
        ]
        assert count_failovers(attempts) == 2
        assert count_failovers([_attempt("cheap/a", "success")]) == 0

    def test_percentile_is_nearest_rank(self) -> None:
        """p50 and p95 of 1..20 are 10 and 19; no values give None."""
        values = [float(v) for v in range(20, 0, -1)]
        assert percentile(values, 0.5) == 10.0
        assert percentile(values, 0.95) == 19.0
        assert percentile([], 0.5) is None

    def test_spend_by_route_uses_billed_attempts_only(self) -> None:
        """Unbilled failures cost nothing; jobs are credited to the route that answered."""
        costs = [
            {"attempts": [_attempt("flaky/b", "overloaded"), _attempt("cheap/a", "success", "0.001", True)]}
        ]
        rows = spend_by_route([_result("j1", "cheap/a", seconds=1)], costs)
        assert [(r.route, r.jobs_finished, r.billed_attempts, r.spend_usd) for r in rows] == [
            ("cheap/a", 1, 1, Decimal("0.001"))
        ]

    def test_summary_totals_are_exact_and_baselines_reprice_the_same_usage(self) -> None:
        """Spend is the sum of cost records; a baseline prices each succeeded job's usage at its route."""
        results = {
            "j1": _result("j1", "cheap/a", seconds=2),
            "j2": _result("j2", "mid/c", seconds=4),
            "j3": _result("j3", None, seconds=9, error="deadline_exceeded"),
        }
        costs = {
            "j1": {"total_cost_usd": "0.0001", "attempts": [_attempt("cheap/a", "success", "0.0001", True)]},
            "j2": {
                "total_cost_usd": "0.0003",
                "attempts": [
                    _attempt("cheap/a", "rate_limited"),
                    _attempt("mid/c", "success", "0.0003", True),
                ],
            },
            "j3": {"total_cost_usd": "0", "attempts": [_attempt("flaky/b", "timeout")]},
        }
        premium = _model("premium/p", "3", "15")
        summary = summarize(
            simulated=True,
            run_id="r",
            batch_id="b",
            job_ids=["j1", "j2", "j3", "j4"],
            broken_records_sent=2,
            results=results,
            costs=costs,
            duplicate_results=0,
            dead_letters=2,
            parked=(3, 2),
            baselines=[("premium only", premium, "d")],
            ledger_total=Decimal("0.0004"),
            results_file="r.jsonl",
            costs_file="c.jsonl",
            out_dir="/tmp/x",
            wall_time_s=1.234,
        )
        assert (summary.succeeded, summary.failed, summary.missing) == (2, 1, 1)
        assert summary.failure_reasons == {"deadline_exceeded": 1}
        assert summary.spend_usd == Decimal("0.0004")
        assert summary.rate_limited == 1
        assert summary.failovers == 1
        assert (summary.deferrals, summary.jobs_deferred) == (3, 2)
        # two succeeded jobs × (1000 input × $3 + 100 output × $15) / 1M = 2 × 0.0045
        assert summary.baselines[0].cost_usd == Decimal("0.009")
        assert summary.latency_p50_s == 4.0


class TestTally:
    def test_only_this_runs_records_are_counted(self) -> None:
        """Results of other runs are ignored, repeats are counted once, and dead letters need the run id."""
        tally = Tally(expected=frozenset({"run1-00000", "run1-00001"}), run_id="run1")
        tally.add_result({"job_id": "run1-00000", "status": "succeeded", "cost_usd": "0.25"})
        tally.add_result({"job_id": "run1-00000", "status": "succeeded", "cost_usd": "0.25"})
        tally.add_result({"job_id": "run0-00000", "status": "failed", "cost_usd": "9"})
        tally.add_cost({"job_id": "run1-00000"})
        for record in broken_records("run1") + broken_records("run0"):
            tally.add_dead_letter({"job_id": None, "payload_b64": base64.b64encode(record.value).decode()})
        assert (tally.done, tally.failed, tally.spend, tally.duplicate_results) == (1, 0, Decimal("0.25"), 1)
        assert len(tally.dead_letters) == 2
        assert not tally.complete(2)
        tally.add_result({"job_id": "run1-00001", "status": "failed", "cost_usd": "0"})
        tally.add_cost({"job_id": "run1-00001"})
        assert tally.complete(2)


class TestStopWorkers:
    def test_a_worker_ignoring_sigterm_is_killed_after_the_grace(self, tmp_path: Path) -> None:
        """stop_workers never leaves a process behind: SIGTERM first, SIGKILL when the grace runs out."""
        stubborn = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
        )
        assert stubborn.stdout is not None
        stubborn.stdout.readline()  # the handler is installed
        worker = WorkerProcess("w", stubborn, tmp_path / "log", "http://127.0.0.1:9/readyz")
        codes = stop_workers([worker], grace_s=0.5)
        stubborn.stdout.close()
        assert codes == {"w": -9}
        assert not worker.alive()
