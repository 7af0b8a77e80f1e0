"""Every attempt in a cost record carries the provider's request id (docs/provider-errors.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from qroute.catalog.types import ApiFamily
from qroute.models import Attempt
from qroute.providers.classify import MAX_REQUEST_ID_CHARS, outcome_for_transport_error
from qroute.providers.registry import adapter_for
from tests.unit.test_adapters_common import NOW
from tests.unit.test_classify import anthropic_error, classify, gemini_error, openai_error
from tests.unit.test_execute import FakeClock, Script, error, executor, finish, job, ok

SUCCESS: dict[ApiFamily, dict[str, Any]] = {
    "openai": {
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    },
    "anthropic": {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 19, "output_tokens": 10},
    },
    "gemini": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 19, "candidatesTokenCount": 10, "totalTokenCount": 29},
    },
}
"""A minimal good 2xx body per API family."""


def with_id(response: httpx.Response, request_id: str) -> httpx.Response:
    """The same scripted answer, now naming its call the way OpenAI does."""
    response.headers["x-request-id"] = request_id
    return response


class TestHeaderNames:
    """Which header gives the id, and what is kept of it."""

    @pytest.mark.parametrize(
        ("family", "header", "value"),
        [
            ("openai", "x-request-id", "req_7f3a9c1e2b"),
            ("anthropic", "request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
            ("gemini", "x-goog-request-id", "5e1b0c2d9a7f4e31"),
        ],
    )
    def test_each_family_header_gives_the_id(self, family: ApiFamily, header: str, value: str) -> None:
        """OpenAI x-request-id, Anthropic request-id, Google x-goog-request-id: a success carries it."""
        result = classify(family, 200, SUCCESS[family], {header: value})
        assert result.outcome == "success"
        assert result.request_id == value

    def test_header_names_are_case_insensitive(self) -> None:
        """HTTP header names are case-insensitive; a proxy that capitalises them changes nothing."""
        result = classify("openai", 200, SUCCESS["openai"], {"X-Request-ID": "req_upper"})
        assert result.request_id == "req_upper"

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"request-id": "req_anthropic", "x-request-id": "req_openai"}, "req_openai"),
            ({"x-goog-request-id": "goog", "request-id": "req_anthropic"}, "req_anthropic"),
            ({"x-goog-request-id": "goog", "x-request-id": "req_openai"}, "req_openai"),
        ],
    )
    def test_precedence_when_two_are_present(self, headers: dict[str, str], expected: str) -> None:
        """x-request-id, then request-id, then x-goog-request-id, whatever order they arrive in."""
        assert classify("openai", 200, SUCCESS["openai"], headers).request_id == expected

    @pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
    def test_no_header_gives_none(self, family: ApiFamily) -> None:
        """No id header (Gemini usually sends none): the outcome is unchanged and has no id."""
        result = classify(family, 200, SUCCESS[family], {"x-ratelimit-remaining-requests": "59"})
        assert result.outcome == "success"
        assert result.request_id is None

    @pytest.mark.parametrize("blank", ["", " ", "\t  "])
    def test_empty_or_whitespace_gives_none(self, blank: str) -> None:
        """A header with nothing in it is no id."""
        assert classify("openai", 200, SUCCESS["openai"], {"x-request-id": blank}).request_id is None

    def test_a_blank_header_does_not_hide_a_later_one(self) -> None:
        """An empty x-request-id (a compatible host's placeholder) falls through to request-id."""
        headers = {"x-request-id": "  ", "request-id": "req_real"}
        assert classify("openai", 200, SUCCESS["openai"], headers).request_id == "req_real"

    def test_surrounding_whitespace_is_stripped(self) -> None:
        """Padding around the id is not part of it."""
        result = classify("anthropic", 200, SUCCESS["anthropic"], {"request-id": "  req_padded \t"})
        assert result.request_id == "req_padded"

    def test_an_over_long_value_is_capped(self) -> None:
        """A misbehaving host's huge header is cut to MAX_REQUEST_ID_CHARS, keeping its start."""
        value = "r" * 150 + "s" * 150
        result = classify("openai", 200, SUCCESS["openai"], {"x-request-id": value})
        assert result.request_id == value[:MAX_REQUEST_ID_CHARS]
        assert MAX_REQUEST_ID_CHARS == 200

    def test_the_attempt_contract_refuses_longer_ids(self) -> None:
        """The cost record schema says maxLength 200, and pydantic enforces it."""
        with pytest.raises(ValidationError):
            Attempt.model_validate(
                {
                    "n": 1,
                    "provider": "p",
                    "model": "m",
                    "outcome": "success",
                    "action": "done",
                    "provider_request_id": "x" * (MAX_REQUEST_ID_CHARS + 1),
                    "billed": False,
                    "started_at": "2026-11-22T08:00:00Z",
                    "duration_ms": 1.0,
                }
            )


class TestEveryAnsweredOutcome:
    """Errors, garbage and filtered answers carry the id too: they are what support gets asked about."""

    @pytest.mark.parametrize(
        ("family", "status", "body", "header", "outcome"),
        [
            (
                "openai",
                429,
                openai_error("rate_limit_exceeded", kind="requests"),
                "x-request-id",
                "rate_limited",
            ),
            ("openai", 500, openai_error(None, kind="server_error"), "x-request-id", "server_error"),
            ("anthropic", 429, anthropic_error("rate_limit_error"), "request-id", "rate_limited"),
            ("anthropic", 500, anthropic_error("api_error"), "request-id", "server_error"),
            ("gemini", 429, gemini_error(429, "RESOURCE_EXHAUSTED"), "x-goog-request-id", "rate_limited"),
            ("openai", 400, openai_error("invalid_value"), "x-request-id", "bad_request"),
        ],
    )
    def test_error_responses_carry_it(
        self, family: ApiFamily, status: int, body: dict[str, Any], header: str, outcome: str
    ) -> None:
        """429, 500 and 400 answers: classified as before, and the id is kept."""
        result = classify(family, status, body, {header: "req_err"})
        assert (result.outcome, result.status_code) == (outcome, status)
        assert result.request_id == "req_err"

    def test_non_json_body_carries_it(self) -> None:
        """A 200 whose body is not JSON is malformed, with the id of the call that sent it."""
        result = classify("openai", 200, headers={"x-request-id": "req_garbage"}, content=b"<html>")
        assert result.outcome == "malformed_response"
        assert result.request_id == "req_garbage"

    def test_html_error_page_carries_it(self) -> None:
        """A 502 HTML page from an edge proxy is classified by status, and keeps the id."""
        result = classify("anthropic", 502, headers={"request-id": "req_edge"}, content=b"<html>bad</html>")
        assert (result.outcome, result.request_id) == ("server_error", "req_edge")

    def test_content_filter_stop_carries_it(self) -> None:
        """A billed content-filter stop keeps the id (it will appear on the bill)."""
        body = {
            "choices": [{"finish_reason": "content_filter", "message": {"content": None}}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 2},
        }
        result = classify("openai", 200, body, {"x-request-id": "req_filtered"})
        assert (result.outcome, result.billed, result.request_id) == ("content_filter", True, "req_filtered")

    def test_error_inside_200_carries_it(self) -> None:
        """An error body after HTTP 200 (OpenRouter) keeps the id of the call."""
        body = {"error": {"code": 502, "message": "Provider returned error", "metadata": {}}}
        result = classify("openai", 200, body, {"x-request-id": "req_embedded"})
        assert (result.outcome, result.status_code, result.request_id) == (
            "server_error",
            502,
            "req_embedded",
        )

    def test_unread_body_carries_it(self) -> None:
        """A response whose body was never read is malformed; its headers still name the call."""

        async def stream() -> Any:
            yield b"{}"

        response = httpx.Response(200, content=stream(), headers={"x-request-id": "req_unread"})
        result = adapter_for("openai").parse_response(response, NOW)
        assert (result.outcome, result.request_id) == ("malformed_response", "req_unread")

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ReadTimeout("timed out"),
            httpx.ConnectError("refused"),
            TimeoutError(),
        ],
    )
    def test_transport_error_has_none(self, exc: BaseException) -> None:
        """No HTTP answer, no id."""
        result = outcome_for_transport_error(exc)
        assert result.status_code is None
        assert result.request_id is None


class TestExecutorCopiesIt:
    """The attempt loop puts each call's id into its Attempt; the short result form stays small."""

    async def test_success_attempt_has_the_id(self) -> None:
        """One successful call: its Attempt names the provider's request id."""
        script, clock = Script(cheap=[with_id(ok(), "req_ok_1")]), FakeClock()
        out = await finish(executor(script, clock), job())
        (attempt,) = out.cost.attempts
        assert attempt.provider_request_id == "req_ok_1"

    async def test_each_attempt_keeps_its_own_id(self) -> None:
        """A retried 503 then a success: two attempts, two ids, in order."""
        first = with_id(error(503, "server_is_overloaded", "busy"), "req_busy")
        script, clock = Script(cheap=[first, with_id(ok(), "req_served")]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert [(a.outcome, a.provider_request_id) for a in out.cost.attempts] == [
            ("overloaded", "req_busy"),
            ("success", "req_served"),
        ]

    async def test_an_answer_without_an_id_gives_none(self) -> None:
        """No id header: the attempt says null rather than inventing one."""
        script, clock = Script(cheap=[ok()]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert [a.provider_request_id for a in out.cost.attempts] == [None]

    async def test_the_cost_record_carries_it_and_the_result_does_not(self) -> None:
        """On the wire: in CostRecord.attempts, not in the Result's attempt briefs."""
        script, clock = Script(cheap=[with_id(ok(), "req_wire")]), FakeClock()
        out = await finish(executor(script, clock), job())
        assert out.cost.model_dump(mode="json")["attempts"][0]["provider_request_id"] == "req_wire"
        (brief,) = out.result.model_dump(mode="json")["attempts"]
        assert "provider_request_id" not in brief
