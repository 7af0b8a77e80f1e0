"""Structured logs: one JSON object per line, job context on every line, no secrets.

qroute code logs with `structlog.get_logger(__name__)` and binds job context
once per job (`job_context(job)`, or `structlog.contextvars.bound_contextvars`).
Contextvars are copied per asyncio task, so concurrent jobs never see each
other's ids. Libraries that log through the standard `logging` module
(aiokafka, aiohttp, httpx) go through the same formatter, so every line on the
stream has one shape.

Never log prompts, outputs or keys. `drop_forbidden_keys` is a safety net that
removes such keys from every event (nested dicts included); it cannot see
inside a free-text message, so do not format payloads into messages either.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, TextIO

import structlog
from structlog.contextvars import bind_contextvars, reset_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

from qroute.models import Job

FORBIDDEN_KEYS: Final[frozenset[str]] = frozenset(
    {
        "prompt",
        "messages",
        "content",
        "output",
        "text",
        "system",
        "api_key",
        "authorization",
        "key",
        "password",
        "secret",
    }
)
"""Keys dropped from every log event (compared lower-cased, `-` read as `_`)."""

FORBIDDEN_SUFFIXES: Final = ("_api_key", "_password", "_secret")
"""Key endings dropped too: `x_api_key`, `sasl_password`, `client_secret`…"""

_HANDLER_MARK = "_qroute_handler"

PER_REQUEST_LOGGERS: Final = ("httpx", "httpcore")
"""Libraries that log a line per HTTP call at INFO: quiet unless the level is DEBUG.

httpx's "HTTP Request: POST …" line cost 7.7% of the worker's CPU (py-spy on
`qroute bench --scenario cpu`) and repeats what `job_finished` already says."""


def _forbidden(key: str) -> bool:
    norm = key.lower().replace("-", "_")
    return norm in FORBIDDEN_KEYS or norm.endswith(FORBIDDEN_SUFFIXES)


def _scrub(value: Any) -> Any:
    """A copy of `value` without forbidden keys in any nested dict."""
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items() if not (isinstance(k, str) and _forbidden(k))}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def drop_forbidden_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: remove prompt/output/secret-bearing keys from the event, at any depth."""
    for key in [k for k in event_dict if _forbidden(k)]:
        del event_dict[key]
    for key, value in event_dict.items():
        if isinstance(value, Mapping | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def _json_default(value: object) -> object:
    """Exact forms for the types qroute logs that json cannot encode; repr for the rest."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value)


def _shared_processors() -> list[Processor]:
    """What every event gets, whether from structlog or from a stdlib logger."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_forbidden_keys,
    ]


def _renderers(json: bool) -> list[Processor]:
    # Both traceback renderers default to printing frame locals, which may hold
    # prompts or keys: turn that off explicitly.
    if json:
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        return [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.ExceptionRenderer(transformer),
            structlog.processors.JSONRenderer(default=_json_default),
        ]
    return [
        structlog.dev.ConsoleRenderer(
            colors=False,
            exception_formatter=structlog.dev.plain_traceback,
        )
    ]


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that knows its name, so `add_logger_name` works without stdlib logging."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


def configure_logging(*, json: bool = True, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send qroute's structlog events and stdlib logging to `stream` (default stderr) in one format.

    JSON lines by default (for collectors); `json=False` gives a plain console
    format for people at a terminal. stderr keeps stdout free for command
    output such as `qroute submit`.

    qroute's own loggers write straight to the stream (about half the cost of
    going through stdlib logging); libraries' stdlib records get the same
    processors through a root handler. Safe to call again: it replaces the
    handler it installed before and leaves other handlers (pytest's) alone.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    out = stream if stream is not None else sys.stderr
    shared = _shared_processors()
    renderers = _renderers(json)

    def factory(*args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(out, str(args[0]) if args else "qroute")

    # Loggers are not cached: caching would pin the processor chain at first
    # use and defeat reconfiguration (and structlog.testing.capture_logs).
    structlog.configure(
        processors=[*shared, *renderers],
        logger_factory=factory,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), drop_forbidden_keys],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind `values` to every log line inside the block, then restore what was bound before.

    Same effect as structlog's `bound_contextvars`, at a fraction of its cost
    (which snapshots the whole context on entry): the block is entered twice per
    job, and that snapshot was 4–5% of the worker's CPU (py-spy, cpu bench).
    """
    tokens = bind_contextvars(**values)
    try:
        yield
    finally:
        reset_contextvars(**tokens)


def job_context(job: Job) -> AbstractContextManager[None]:
    """Bind the job's ids (never its content) to every log line inside the block."""
    return bound(job_id=job.id, tenant=job.tenant, batch_id=job.batch_id)
