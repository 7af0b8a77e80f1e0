"""Structured logging: JSON shape, bound job context, and no secrets ever reaching the stream."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog

from qroute.models import Job, Message
from qroute.observability.logging import (
    FORBIDDEN_KEYS,
    bound,
    configure_logging,
    drop_forbidden_keys,
    job_context,
)

SECRET = "sk-SENTINEL-do-not-log"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Configure logging onto a buffer, then restore structlog and the root logger."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    yield buffer
    for handler in root.handlers:
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    structlog.configure(**saved_config)
    structlog.contextvars.clear_contextvars()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


class TestForbiddenKeys:
    """Prompts, outputs and credentials never reach the output, whatever the caller passes."""

    @pytest.mark.parametrize("key", sorted(FORBIDDEN_KEYS))
    def test_top_level_key_is_dropped(self, stream: io.StringIO, key: str) -> None:
        """A forbidden key passed to a log call is absent from the written line."""
        structlog.get_logger("qroute.test").info("event", **{key: SECRET}, route="p/m")
        (line,) = lines(stream)
        assert SECRET not in stream.getvalue()
        assert key not in line
        assert line["route"] == "p/m"

    def test_nested_and_variant_keys_are_dropped(self, stream: io.StringIO) -> None:
        """Nested dicts, lists of dicts, other casings and *_api_key variants are scrubbed too."""
        structlog.get_logger("qroute.test").info(
            "event",
            job={"id": "j1", "messages": [{"role": "user", "content": SECRET}]},
            headers=[{"Authorization": SECRET, "x-request-id": "r1"}],
            X_Api_Key=SECRET,
            sasl_password=SECRET,
        )
        (line,) = lines(stream)
        assert SECRET not in stream.getvalue()
        assert line["job"] == {"id": "j1"}
        assert line["headers"] == [{"x-request-id": "r1"}]

    def test_bound_context_is_scrubbed(self, stream: io.StringIO) -> None:
        """A forbidden key bound into the context is dropped from every line."""
        with structlog.contextvars.bound_contextvars(prompt=SECRET, job_id="j1"):
            structlog.get_logger("qroute.test").info("event")
        (line,) = lines(stream)
        assert SECRET not in stream.getvalue()
        assert line["job_id"] == "j1"

    def test_stdlib_extra_is_scrubbed(self, stream: io.StringIO) -> None:
        """Third-party stdlib logging with extra= goes through the same net."""
        logging.getLogger("aiokafka").warning("fetch %s", "slow", extra={"api_key": SECRET, "partition": 3})
        (line,) = lines(stream)
        assert SECRET not in stream.getvalue()
        assert (line["event"], line["partition"], line["logger"]) == ("fetch slow", 3, "aiokafka")

    def test_console_renderer_is_scrubbed(self, stream: io.StringIO) -> None:
        """The human format drops forbidden keys as well."""
        buffer = io.StringIO()
        configure_logging(json=False, stream=buffer)
        structlog.get_logger("qroute.test").info("event", output=SECRET, route="p/m")
        assert SECRET not in buffer.getvalue()
        assert "route=p/m" in buffer.getvalue()

    def test_exception_locals_are_not_rendered(self, stream: io.StringIO) -> None:
        """Tracebacks carry frames but not local variable values."""
        api_token = SECRET
        try:
            raise RuntimeError("provider exploded")
        except RuntimeError:
            structlog.get_logger("qroute.test").exception("failed", n=len(api_token))
        (line,) = lines(stream)
        assert SECRET not in stream.getvalue()
        assert line["exception"][0]["exc_type"] == "RuntimeError"

    def test_processor_leaves_other_keys(self) -> None:
        """The processor removes only forbidden keys and keeps the rest untouched."""
        event = {"event": "x", "key": "k", "job_id": "j", "usage": {"input_tokens": 3, "text": "t"}}
        assert drop_forbidden_keys(None, "info", event) == {
            "event": "x",
            "job_id": "j",
            "usage": {"input_tokens": 3},
        }


class TestJsonShape:
    """Every line is one JSON object with timestamp, level, logger and event."""

    def test_standard_fields(self, stream: io.StringIO) -> None:
        """The line carries an ISO UTC timestamp, the level and the logger name."""
        structlog.get_logger("qroute.worker").warning("partition paused", partition=2)
        (line,) = lines(stream)
        stamp = datetime.fromisoformat(line["timestamp"])
        assert stamp.utcoffset() == UTC.utcoffset(None)
        assert (line["level"], line["logger"], line["event"], line["partition"]) == (
            "warning",
            "qroute.worker",
            "partition paused",
            2,
        )

    def test_decimal_is_exact(self, stream: io.StringIO) -> None:
        """Money renders as its exact decimal string, not a float or a repr."""
        structlog.get_logger("qroute.test").info("cost", cost_usd=Decimal("0.000123"))
        (line,) = lines(stream)
        assert line["cost_usd"] == "0.000123"

    def test_level_filters(self) -> None:
        """Below the configured level nothing is written; unknown levels are refused."""
        buffer = io.StringIO()
        saved = structlog.get_config()
        try:
            configure_logging(level="warning", stream=buffer)
            structlog.get_logger("qroute.test").info("quiet")
            structlog.get_logger("qroute.test").error("loud")
            assert [line["event"] for line in lines(buffer)] == ["loud"]
            with pytest.raises(ValueError, match="unknown log level"):
                configure_logging(level="chatty")
        finally:
            configure_logging(stream=io.StringIO())
            structlog.configure(**saved)

    def test_per_request_library_lines_only_at_debug(self, stream: io.StringIO) -> None:
        """httpx's INFO line per call is dropped at INFO (it cost 7.7% of worker CPU) and kept at DEBUG."""
        logging.getLogger("httpx").info("HTTP Request: POST http://x/ 200 OK")
        logging.getLogger("httpx").warning("pool exhausted")
        assert [line["event"] for line in lines(stream)] == ["pool exhausted"]
        configure_logging(level="debug", stream=stream)
        try:
            logging.getLogger("httpx").info("HTTP Request: POST http://x/ 200 OK")
            assert lines(stream)[-1]["event"] == "HTTP Request: POST http://x/ 200 OK"
        finally:
            configure_logging(stream=stream)

    def test_reconfiguring_does_not_duplicate_lines(self, stream: io.StringIO) -> None:
        """Calling configure_logging again replaces its handler instead of adding one."""
        configure_logging(stream=stream)
        structlog.get_logger("qroute.test").info("once")
        assert len(lines(stream)) == 1


class TestContext:
    """Context bound once flows into every line, per task."""

    def test_job_context_binds_ids_not_content(self, stream: io.StringIO) -> None:
        """job_context adds job_id, tenant and batch_id to each line and nothing of the prompt."""
        job = Job(id="job-1", tenant="acme", batch_id="b7", messages=[Message(role="user", content=SECRET)])
        log = structlog.get_logger("qroute.test")
        with job_context(job), structlog.contextvars.bound_contextvars(route="p/m", attempt=1):
            log.info("attempt started")
            log.info("attempt finished", outcome="success")
        log.info("after")
        first, second, after = lines(stream)
        for line in (first, second):
            assert {k: line[k] for k in ("job_id", "tenant", "batch_id", "route", "attempt")} == {
                "job_id": "job-1",
                "tenant": "acme",
                "batch_id": "b7",
                "route": "p/m",
                "attempt": 1,
            }
        assert second["outcome"] == "success"
        assert "job_id" not in after
        assert SECRET not in stream.getvalue()

    def test_bound_restores_what_was_bound_before(self, stream: io.StringIO) -> None:
        """A nested `bound` block shadows a key and gives the outer value back on exit, even on error."""
        log = structlog.get_logger("qroute.test")

        def inner() -> None:
            with bound(offset=2, route="p/m"):
                log.info("inner")
                raise RuntimeError("boom")

        with bound(topic="jobs", offset=1):
            with pytest.raises(RuntimeError):
                inner()
            log.info("outer")
        log.info("after")
        inner, outer, after = lines(stream)
        assert (inner["topic"], inner["offset"], inner["route"]) == ("jobs", 2, "p/m")
        assert (outer["topic"], outer["offset"]) == ("jobs", 1)
        assert "route" not in outer
        assert not {"topic", "offset", "route"} & after.keys()

    async def test_concurrent_tasks_keep_their_own_ids(self, stream: io.StringIO) -> None:
        """Two jobs running as concurrent tasks never log each other's ids."""
        log = structlog.get_logger("qroute.test")

        async def run(job_id: str) -> None:
            with structlog.contextvars.bound_contextvars(job_id=job_id):
                await asyncio.sleep(0)
                log.info("step", mine=job_id)
                await asyncio.sleep(0)
                log.info("step", mine=job_id)

        await asyncio.gather(run("a"), run("b"), run("c"))
        written = lines(stream)
        assert len(written) == 6
        assert all(line["job_id"] == line["mine"] for line in written)
