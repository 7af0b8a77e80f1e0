"""Results files: qroute and OpenAI Batch output lines; input and arrival order; scanning input files."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from openai.types.chat import ChatCompletion

from qroute.batchfile import LineOptions, ResultsWriter, iter_jobs, openai_batch_record, scan_file
from qroute.batchfile.output import RENDERERS, qroute_line
from qroute.batchfile.reader import FileChanged
from qroute.models import ErrorInfo, Result, Timings, Usage

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def result(
    job_id: str, *, failed: bool = False, custom_id: str | None = None, finish: str = "stop"
) -> Result:
    timings = Timings(created_at=NOW, started_at=NOW, finished_at=NOW, queue_ms=1, run_ms=2)
    metadata = {"custom_id": custom_id} if custom_id else {}
    if failed:
        return Result(
            job_id=job_id,
            tenant="t",
            status="failed",
            error=ErrorInfo(type="deadline_exceeded", message="too late"),
            timings=timings,
            metadata=metadata,
        )
    return Result(
        job_id=job_id,
        tenant="t",
        status="succeeded",
        output=f"summary of {job_id}",
        finish_reason=finish,
        provider="sim",
        model="gpt-4o-mini",
        usage=Usage(input_tokens=100, cached_input_tokens=20, output_tokens=30, reasoning_tokens=5),
        cost_usd=Decimal("0.0000123"),
        timings=timings,
        metadata=metadata,
    )


class TestOpenAIBatchOutput:
    def test_succeeded_result_is_a_chat_completion(self) -> None:
        """The response body is a chat.completion that the official SDK type accepts."""
        record = openai_batch_record(result("j1", custom_id="request-1"))
        assert record["custom_id"] == "request-1"
        assert record["error"] is None
        assert record["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(record["response"]["body"])
        assert completion.choices[0].message.content == "summary of j1"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (100, 30)
        assert completion.usage.total_tokens == 130
        assert completion.usage.prompt_tokens_details is not None
        assert completion.usage.prompt_tokens_details.cached_tokens == 20
        assert completion.created == int(NOW.timestamp())

    def test_failed_result_carries_an_error(self) -> None:
        """A failed job has no response and an error with qroute's failure type as its code."""
        record = openai_batch_record(result("j2", failed=True))
        assert record["response"] is None
        assert record["error"] == {"code": "deadline_exceeded", "message": "too late"}
        assert record["custom_id"] == "j2"

    def test_unknown_finish_reason_maps_to_stop(self) -> None:
        """Finish reasons outside OpenAI's set become "stop" so SDK types still validate."""
        body = openai_batch_record(result("j3", finish="weird"))["response"]["body"]
        assert ChatCompletion.model_validate(body).choices[0].finish_reason == "stop"

    def test_rendering_is_deterministic(self) -> None:
        """The same result renders to the same line (ids derive from the job id)."""
        line = RENDERERS["openai-batch"](result("j4"))
        assert line == RENDERERS["openai-batch"](result("j4"))
        assert line.endswith(b"\n")
        assert json.loads(line)["id"].startswith("batch_req_")

    def test_qroute_line_round_trips(self) -> None:
        """qroute format is the Result's own JSON."""
        original = result("j5")
        assert Result.model_validate_json(qroute_line(original)) == original


def ids_in(out: io.BytesIO) -> list[str]:
    return [json.loads(line)["job_id"] for line in out.getvalue().splitlines()]


class TestResultsWriter:
    positions: ClassVar[dict[str, int]] = {"a": 0, "b": 1, "c": 2, "d": 3}

    def test_input_order(self) -> None:
        """Results arriving out of order are written in input order."""
        out = io.BytesIO()
        writer = ResultsWriter(out, self.positions, order="input", render=qroute_line)
        for job_id in ["c", "a", "d", "b"]:
            assert writer.add(result(job_id))
        writer.close()
        assert ids_in(out) == ["a", "b", "c", "d"]

    def test_in_order_results_are_written_at_once(self) -> None:
        """A result whose turn has come does not wait for close()."""
        out = io.BytesIO()
        with ResultsWriter(out, self.positions, order="input", render=qroute_line) as writer:
            writer.add(result("b"))
            assert ids_in(out) == []
            writer.add(result("a"))
            assert ids_in(out) == ["a", "b"]

    def test_arrival_order(self) -> None:
        """In arrival order each result is written as it comes."""
        out = io.BytesIO()
        writer = ResultsWriter(out, self.positions, order="arrival", render=qroute_line)
        for job_id in ["c", "a"]:
            writer.add(result(job_id))
        assert ids_in(out) == ["c", "a"]

    def test_duplicates_and_strangers_are_ignored(self) -> None:
        """A second result for a job, or one for a job not in the file, is not written."""
        out = io.BytesIO()
        writer = ResultsWriter(out, self.positions, order="input", render=qroute_line)
        assert writer.add(result("a"))
        assert not writer.add(result("a", failed=True))
        assert not writer.add(result("zzz"))
        writer.close()
        assert ids_in(out) == ["a"]
        assert writer.written == 1

    def test_gaps_are_skipped_at_close(self) -> None:
        """Missing results leave gaps; what arrived is still written in input order."""
        out = io.BytesIO()
        writer = ResultsWriter(out, self.positions, order="input", render=qroute_line)
        writer.add(result("d"))
        writer.add(result("b"))
        assert writer.missing() == ["a", "c"]
        writer.close()
        assert ids_in(out) == ["b", "d"]


class TestScanFile:
    def write(self, tmp_path: Path, lines: list[str]) -> Path:
        path = tmp_path / "jobs.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return path

    def test_mixed_file(self, tmp_path: Path) -> None:
        """Formats are counted, errors keep their line numbers, valid ids keep their order."""
        job = '{"id": "%s", "messages": [{"role": "user", "content": "x"}]}'
        openai = (
            '{"custom_id": "o1", "method": "POST", "url": "/v1/chat/completions", '
            '"body": {"model": "m", "messages": [{"role": "user", "content": "y"}]}}'
        )
        path = self.write(tmp_path, [job % "a", "{broken", "", openai, job % "a", job % "b"])
        report = scan_file(path, LineOptions())
        assert report.lines == 6
        assert report.blank == 1
        assert dict(report.formats) == {"qroute": 2, "openai-batch": 1}
        assert [(e.number, e.reason.split(":")[0]) for e in report.errors] == [
            (2, "invalid JSON"),
            (5, "job id 'a' is already used on line 1"),
        ]
        assert report.positions == {"a": 0, "o1": 1, "b": 2}
        assert [line.job.id for line in iter_jobs(report, LineOptions())] == ["a", "o1", "b"]
        assert report.describe() == "read 6 lines: 1 openai-batch, 2 qroute; 2 rejected"

    def test_changed_file_is_not_sent(self, tmp_path: Path) -> None:
        """If the file changes between the check and the send, nothing is yielded."""
        path = self.write(tmp_path, ['{"id": "a", "messages": [{"role": "user", "content": "x"}]}'])
        report = scan_file(path, LineOptions())
        path.write_text(path.read_text() + '{"id": "b", "messages": [{"role": "user", "content": "x"}]}\n')
        with pytest.raises(FileChanged):
            list(iter_jobs(report, LineOptions()))
