"""`qroute submit` against a real broker: per-line errors, nothing half-sent, --wait and results files."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion
from typer.testing import CliRunner

from qroute.cli import app
from qroute.config import Settings
from qroute.models import CostRecord, Result
from qroute.sim import SimServer
from qroute.testing import sim_routes_settings, worker_in_process

from .test_client_sdk import FAIL_MARK, FakeWorker, one_provider_sim, topic_count


def config_file(settings: Settings, path: Path) -> Path:
    """A qroute.toml naming the test's broker and topics (the CLI reads nothing else from tests)."""
    topics = settings.topics
    path.write_text(
        "[kafka]\n"
        f'bootstrap_servers = "{settings.kafka.bootstrap_servers}"\n'
        "[topics]\n"
        f'jobs = "{topics.jobs}"\nresults = "{topics.results}"\ncosts = "{topics.costs}"\n'
        f'dlq = "{topics.dlq}"\ndelay_prefix = "{topics.delay_prefix}"\n'
        f"reply_prefixes = {json.dumps(topics.reply_prefixes)}\n"
    )
    return path


async def invoke(*args: str | Path) -> tuple[int, str]:
    # In a thread: the command calls asyncio.run, which cannot nest in the test's loop.
    result = await asyncio.to_thread(CliRunner().invoke, app, [str(a) for a in args])
    return result.exit_code, result.output


def qroute_job(job_id: str, text: str = "Summarise the report.") -> dict[str, Any]:
    return {"id": job_id, "messages": [{"role": "user", "content": text}], "params": {"max_tokens": 32}}


def openai_request(custom_id: str, model: str = "gpt-4o-mini", text: str = "Say hello.") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32},
    }


def mixed_lines() -> list[str]:
    """Valid qroute jobs and OpenAI lines, with broken lines at 3, 5 and 7."""
    return [
        json.dumps(qroute_job("q-1")),
        json.dumps(openai_request("o-1")),
        '{"id": "q-broken", "messages": [',
        json.dumps(qroute_job("q-2", FAIL_MARK)),
        json.dumps(openai_request("o-bad", model="no-such-model")),
        json.dumps(openai_request("o-2")),
        json.dumps({**openai_request("o-3"), "url": "/v1/embeddings"}),
        json.dumps(qroute_job("q-3")),
    ]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


class TestSubmitRejects:
    async def test_broken_lines_reported_by_number_and_nothing_sent(
        self, unique_settings: Settings, tmp_path: Path
    ) -> None:
        """Any rejected line: each is reported with its number and reason, exit 1, jobs topic untouched."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        jobs = write_lines(tmp_path / "jobs.jsonl", mixed_lines())
        code, output = await invoke("submit", jobs, "--config", config)
        assert code == 1, output
        assert "line 3: invalid JSON" in output
        assert "line 5 (openai-batch): unknown model 'no-such-model'" in output
        assert "line 7 (openai-batch): url:" in output
        assert "nothing sent" in output
        assert "read 8 lines: 2 openai-batch, 3 qroute; 3 rejected" in output
        assert await topic_count(unique_settings, unique_settings.topics.jobs) == 0


class TestSubmitWait:
    async def test_skip_invalid_then_openai_batch_results_in_input_order(
        self, unique_settings: Settings, tmp_path: Path
    ) -> None:
        """--skip-invalid sends the 5 valid lines; --wait writes their results as OpenAI Batch output."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        jobs = write_lines(tmp_path / "jobs.jsonl", mixed_lines())
        out = tmp_path / "out.jsonl"
        async with FakeWorker(unique_settings) as worker:
            code, output = await invoke(
                "submit", jobs, "--config", config, "--skip-invalid", "--wait",
                "--format", "openai-batch", "--output", out, "--batch-id", "nightly", "--timeout", "60",
            )  # fmt: skip
        assert code == 1, output  # rejected lines still make the exit code non-zero
        assert "sent 5 jobs" in output
        assert "results: 4 succeeded, 1 failed (1 provider_rejected)" in output
        spend = sum((c.total_cost_usd for c in worker.costs), start=Decimal(0))
        assert f"spend ${format(spend.normalize(), 'f')}" in output
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["custom_id"] for line in lines] == ["q-1", "o-1", "q-2", "o-2", "q-3"]
        failed = lines[2]
        assert failed["response"] is None
        assert failed["error"]["code"] == "provider_rejected"
        completion = ChatCompletion.model_validate(lines[1]["response"]["body"])
        assert completion.choices[0].message.content == "answer to o-1"
        assert completion.model == "gpt-4o-mini"
        assert {c.batch_id for c in worker.costs} == {"nightly"}

    async def test_clean_file_qroute_results_in_arrival_order(
        self, unique_settings: Settings, tmp_path: Path
    ) -> None:
        """A clean file exits 0; every result is written once, as qroute Results."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        ids = [f"c-{i}" for i in range(30)]
        jobs = write_lines(tmp_path / "clean.jsonl", [json.dumps(qroute_job(i)) for i in ids])
        async with FakeWorker(unique_settings):
            code, output = await invoke(
                "submit", jobs, "--config", config, "--wait", "--order", "arrival", "--tenant", "acme",
            )  # fmt: skip
        assert code == 0, output
        results = [
            Result.model_validate_json(line)
            for line in (tmp_path / "clean.results.jsonl").read_bytes().splitlines()
        ]
        assert sorted(r.job_id for r in results) == sorted(ids)
        assert {r.tenant for r in results} == {"acme"}
        assert all(r.batch_id and r.batch_id.startswith("clean-") for r in results)

    async def test_timeout_reports_missing_results(self, unique_settings: Settings, tmp_path: Path) -> None:
        """With no worker, --wait --timeout gives up with exit 3 and names the jobs without results."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        jobs = write_lines(tmp_path / "jobs.jsonl", [json.dumps(qroute_job("w-1"))])
        code, output = await invoke("submit", jobs, "--config", config, "--wait", "--timeout", "0.5")
        assert code == 3, output
        assert "no result yet for 1 jobs: w-1" in output

    async def test_without_wait_only_sends(self, unique_settings: Settings, tmp_path: Path) -> None:
        """Without --wait the command returns once every job is acknowledged."""
        config = config_file(unique_settings, tmp_path / "qroute.toml")
        jobs = write_lines(tmp_path / "jobs.jsonl", [json.dumps(qroute_job(f"n-{i}")) for i in range(10)])
        code, output = await invoke(
            "submit", jobs, "--config", config, "--deadline", "8h", "--max-cost", "0.01"
        )
        assert code == 0, output
        assert await topic_count(unique_settings, unique_settings.topics.jobs) == 10


class TestSubmitWithTheRealWorker:
    async def test_mixed_file_through_worker_and_simulator(
        self, unique_settings: Settings, tmp_path: Path
    ) -> None:
        """Real worker + simulator: broken lines reported, results file complete, `costs` equals the ledger."""
        lines = [
            json.dumps(qroute_job("rq-1")),
            json.dumps(openai_request("ro-1", model="small")),
            "not json at all",
            json.dumps(qroute_job("rq-2")),
            json.dumps(openai_request("ro-2", model="small")),
        ]
        jobs = write_lines(tmp_path / "mixed.jsonl", lines)
        out = tmp_path / "mixed.out.jsonl"
        async with SimServer(one_provider_sim()) as sim:
            settings = sim_routes_settings(unique_settings, sim)
            config = config_file(settings, tmp_path / "qroute.toml")
            async with worker_in_process(settings):
                code, output = await invoke(
                    "submit", jobs, "--config", config, "--skip-invalid", "--wait", "--no-model-check",
                    "--batch-id", "sim-batch", "--output", out, "--timeout", "60",
                )  # fmt: skip
            ledger = await sim.ledger()
            code_costs, costs_json = await invoke(
                "costs", "--config", config, "--batch-id", "sim-batch", "--json"
            )
        assert code == 1, output
        assert "line 3: invalid JSON" in output
        results = [Result.model_validate_json(line) for line in out.read_bytes().splitlines()]
        assert [r.job_id for r in results] == ["rq-1", "ro-1", "rq-2", "ro-2"]
        assert all(r.status == "succeeded" for r in results)
        assert code_costs == 0, costs_json
        totals = json.loads(costs_json)
        assert Decimal(totals["total"]["cost_usd"]) == ledger.total_cost
        assert totals["total"]["jobs"] == 4
        records = await read_costs(settings)
        assert sum((r.total_cost_usd for r in records), start=Decimal(0)) == ledger.total_cost


async def read_costs(settings: Settings) -> list[CostRecord]:
    from qroute.client.tail import TopicTail

    tail = await TopicTail.open(settings.kafka, settings.topics.costs, start="beginning")
    records: list[CostRecord] = []
    try:
        while True:
            records.extend(CostRecord.model_validate_json(r.value) for r in await tail.read(timeout_ms=100))
            if await tail.caught_up():
                return records
    finally:
        await tail.close()
