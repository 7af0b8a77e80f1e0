"""Batch input lines: format detection, conversion of OpenAI/Anthropic requests, per-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.batchfile import JobOverrides, LineError, LineOptions, ParsedLine, detect_format, parse_line
from qroute.codec import encode
from qroute.models import Job, Message, Params

OPTIONS = LineOptions()

QROUTE = {"id": "job-1", "messages": [{"role": "user", "content": "Summarise this."}]}


def openai_line(**body: Any) -> dict[str, Any]:
    return {
        "custom_id": "request-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], **body},
    }


def anthropic_line(**params: Any) -> dict[str, Any]:
    return {
        "custom_id": "msg-1",
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 300,
            "messages": [{"role": "user", "content": "Hello"}],
            **params,
        },
    }


def parsed(data: Any, options: LineOptions = OPTIONS) -> ParsedLine:
    outcome = parse_line(json.dumps(data), 7, options)
    assert isinstance(outcome, ParsedLine), outcome
    return outcome


def rejected(data: Any, options: LineOptions = OPTIONS) -> LineError:
    outcome = parse_line(data if isinstance(data, str) else json.dumps(data), 7, options)
    assert isinstance(outcome, LineError), outcome
    return outcome


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (QROUTE, "qroute"),
            (openai_line(), "openai-batch"),
            (anthropic_line(), "anthropic-batch"),
            ({"custom_id": "x"}, "openai-batch"),
        ],
    )
    def test_shape_decides(self, data: dict[str, Any], expected: str) -> None:
        """The keys of a line say which API's request it is."""
        assert detect_format(data) == expected

    def test_forced_format_rejects_other_shapes(self) -> None:
        """With a pinned input format, a line of another shape is an error naming both."""
        error = rejected(openai_line(), LineOptions(force="qroute"))
        assert error.format == "openai-batch"
        assert "input format is qroute" in error.reason


class TestQrouteLines:
    def test_valid_job(self) -> None:
        """A qroute line becomes the job it describes."""
        line = parsed(QROUTE)
        assert line.format == "qroute"
        assert line.job.id == "job-1"
        assert line.number == 7

    def test_blank_line_is_skipped(self) -> None:
        """Blank lines are neither jobs nor errors."""
        assert parse_line("   ", 3, OPTIONS) is None

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            ("{not json", "invalid JSON"),
            ("[1, 2]", "got an array"),
            ('"text"', "got a string"),
            (json.dumps({**QROUTE, "messages": []}), "messages:"),
            (json.dumps({**QROUTE, "id": "has space"}), "id:"),
            (json.dumps({"messages": QROUTE["messages"]}), "id: Field required"),
        ],
    )
    def test_errors_name_the_problem(self, raw: str, fragment: str) -> None:
        """A broken line is reported with its number and what is wrong with it."""
        error = rejected(raw)
        assert error.number == 7
        assert fragment in error.reason
        assert str(error).startswith("line 7")

    def test_invalid_utf8(self) -> None:
        """Bytes that are not UTF-8 are an error, not a crash."""
        outcome = parse_line(b'{"id": "\xff"}', 2, OPTIONS)
        assert isinstance(outcome, LineError)
        assert "UTF-8" in outcome.reason


class TestOpenAIBatchLines:
    def test_conversion(self) -> None:
        """custom_id → id and metadata; model → allowed_models; sampling and limits → params."""
        job = parsed(
            openai_line(
                messages=[
                    {"role": "developer", "content": "Be brief."},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
                    },
                ],
                max_completion_tokens=50,
                temperature=0.2,
                stop="END",
                response_format={"type": "json_object"},
                seed=4,
            )
        ).job
        assert job.id == "request-1"
        assert job.metadata == {"custom_id": "request-1"}
        assert job.constraints.allowed_models == ["gpt-4o-mini"]
        assert job.messages == [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hello"),
        ]
        assert job.params.max_tokens == 50
        assert job.params.temperature == 0.2
        assert job.params.stop == ["END"]
        assert job.params.response_format == "json_object"

    def test_max_tokens_default_is_qroutes(self) -> None:
        """Without max_tokens the job gets qroute's default limit."""
        assert parsed(openai_line()).job.params.max_tokens == Params().max_tokens

    @pytest.mark.parametrize(
        ("line", "fragment"),
        [
            ({**openai_line(), "url": "/v1/embeddings"}, "url:"),
            ({**openai_line(), "method": "GET"}, "method:"),
            ({**openai_line(), "custom_id": "a b"}, "custom_id: Value error, must be usable as a job id"),
            (openai_line(tools=[]), "body.tools: tool calling is not supported"),
            (openai_line(n=2), "body.n:"),
            (openai_line(stream=True), "body.stream:"),
            (openai_line(frobnicate=1), "body.frobnicate: unknown field"),
            (
                openai_line(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
                "only text parts are supported",
            ),
            (openai_line(messages=[{"role": "tool", "content": "x"}]), "body.messages.0.role:"),
            (openai_line(messages=[{"role": "user", "content": ""}]), "must not be empty"),
            (openai_line(response_format={"type": "json_schema"}), "body.response_format.type:"),
            (openai_line(stop=["a", "b", "c", "d", "e"]), "body.stop:"),
            ({k: v for k, v in openai_line().items() if k != "body"}, "body: Field required"),
        ],
    )
    def test_errors_use_the_lines_own_field_names(self, line: dict[str, Any], fragment: str) -> None:
        """Errors name fields as the OpenAI line spells them."""
        error = rejected(line)
        assert error.format == "openai-batch"
        assert fragment in error.reason


class TestAnthropicBatchLines:
    def test_conversion(self) -> None:
        """custom_id → id, system blocks → system prompt, stop_sequences → stop, model → allowed_models."""
        job = parsed(
            anthropic_line(
                system=[{"type": "text", "text": "You summarise.", "cache_control": {"type": "ephemeral"}}],
                stop_sequences=["\n\n"],
                temperature=0.5,
                top_k=5,
            )
        ).job
        assert job.id == "msg-1"
        assert job.system == "You summarise."
        assert job.params.max_tokens == 300
        assert job.params.stop == ["\n\n"]
        assert job.constraints.allowed_models == ["claude-haiku-4-5"]
        assert job.metadata["custom_id"] == "msg-1"

    @pytest.mark.parametrize(
        ("line", "fragment"),
        [
            (
                {"custom_id": "m", "params": {"model": "x", "messages": []}},
                "params.max_tokens: Field required",
            ),
            (anthropic_line(tools=[]), "params.tools: tool use is not supported"),
            (anthropic_line(temperature=1.5), "params.temperature:"),
            (anthropic_line(messages=[{"role": "system", "content": "x"}]), "params.messages.0.role:"),
        ],
    )
    def test_errors(self, line: dict[str, Any], fragment: str) -> None:
        """Anthropic lines are checked against their own shape."""
        error = rejected(line)
        assert error.format == "anthropic-batch"
        assert fragment in error.reason


class TestOverridesAndChecks:
    def test_overrides_replace_line_values(self) -> None:
        """--batch-id, --tenant, --deadline and --max-cost win over what the line says."""
        deadline = datetime(2030, 1, 1, 6, tzinfo=UTC)
        options = LineOptions(
            overrides=JobOverrides(batch_id="b", tenant="t", deadline=deadline, max_cost_usd=Decimal("0.01"))
        )
        line = {
            **QROUTE,
            "batch_id": "old",
            "tenant": "x",
            "constraints": {"max_cost_usd": "5", "min_tier": 2},
        }
        job = parsed(line, options).job
        assert (job.batch_id, job.tenant) == ("b", "t")
        assert job.constraints.deadline == deadline
        assert job.constraints.max_cost_usd == Decimal("0.01")
        assert job.constraints.min_tier == 2

    def test_default_batch_id_only_fills_gaps(self) -> None:
        """A generated batch id goes only on lines that have none."""
        options = LineOptions(overrides=JobOverrides(default_batch_id="gen"))
        assert parsed(QROUTE, options).job.batch_id == "gen"
        assert parsed({**QROUTE, "batch_id": "mine"}, options).job.batch_id == "mine"

    def test_unknown_model_is_rejected(self) -> None:
        """A model the catalog does not know is caught before sending, as the worker would dead-letter it."""
        options = LineOptions(known_model={"gpt-4o-mini"}.__contains__, catalog_name="catalog v1")
        assert parsed(openai_line(), options).job.constraints.allowed_models == ["gpt-4o-mini"]
        error = rejected(openai_line(model="gpt-9"), options)
        assert error.reason == "unknown model 'gpt-9': not in catalog v1"

    def test_size_cap(self) -> None:
        """A job larger than the workers' cap is rejected with its size."""
        big = {**QROUTE, "messages": [{"role": "user", "content": "x" * 2000}]}
        assert "larger than the 1000-byte cap" in rejected(big, LineOptions(max_bytes=1000)).reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=10),
        "custom_id": st.text(max_size=10),
        "method": st.sampled_from(["POST", "GET"]),
        "url": st.sampled_from(["/v1/chat/completions", "/x"]),
        "body": json_values,
        "params": json_values,
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "tool"]), "content": json_values}),
            max_size=2,
        ),
    },
)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True)
texts = st.text(min_size=1, max_size=40)


class TestLineParserProperties:
    @given(st.text(max_size=200))
    def test_any_text_gives_a_verdict(self, text: str) -> None:
        """Arbitrary text never raises: it is a job, an error or blank."""
        outcome = parse_line(text, 1, OPTIONS)
        assert outcome is None or isinstance(outcome, ParsedLine | LineError)

    @given(st.one_of(json_values, shaped))
    def test_any_json_gives_a_verdict(self, value: Any) -> None:
        """Arbitrary JSON, including half-right request shapes, never raises."""
        outcome = parse_line(json.dumps(value), 1, OPTIONS)
        assert isinstance(outcome, ParsedLine | LineError)

    @given(ids, st.lists(texts, min_size=1, max_size=3), st.integers(1, 4096))
    def test_qroute_jobs_round_trip(self, job_id: str, contents: list[str], max_tokens: int) -> None:
        """A job written by `encode` is read back unchanged."""
        job = Job(
            id=job_id,
            messages=[Message(role="user", content=c) for c in contents],
            params=Params(max_tokens=max_tokens),
        )
        outcome = parse_line(encode(job), 1, OPTIONS)
        assert isinstance(outcome, ParsedLine)
        assert outcome.job == job

    @given(ids, st.text(min_size=1, max_size=30), st.lists(texts, min_size=1, max_size=3))
    def test_openai_lines_keep_id_model_and_text(
        self, custom_id: str, model: str, contents: list[str]
    ) -> None:
        """Every valid OpenAI line keeps its custom_id as the job id, its model and its message texts."""
        line = {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": c} for c in contents]},
        }
        job = parsed(line).job
        assert job.id == custom_id
        assert job.constraints.allowed_models == [model]
        assert [m.content for m in job.messages] == contents
