"""Typed errors of the producer SDK: a caller can tell a bad job from a slow worker from a dead broker."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base class of every error the qroute client raises."""


class JobRejected(ClientError):
    """The job is invalid; nothing was sent. `message` names each field at fault.

    In `submit_many`, `index` is the position of the rejected job: every job before it
    was sent and acknowledged, nothing from it on was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        index: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.index = index
        self.details = list(details or [])

    def __str__(self) -> str:
        where = f"job {self.job_id!r}" if self.job_id else "job"
        if self.index is not None:
            where = f"{where} at index {self.index}"
        return f"{where} rejected: {self.message}"


class SubmitFailed(ClientError):
    """The broker did not acknowledge the job (after the producer's own retries)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id!r} was not acknowledged by the broker: {reason}")
        self.job_id = job_id
        self.reason = reason


class ResultTimeout(ClientError, TimeoutError):
    """No result for the job arrived in time. The job may still finish later."""

    def __init__(self, job_id: str, timeout_s: float) -> None:
        super().__init__(f"no result for job {job_id!r} within {timeout_s:g} s")
        self.job_id = job_id
        self.timeout_s = timeout_s


class TopicMissing(ClientError):
    """A topic the client reads (the reply topic, say) does not exist, so nothing could ever arrive."""

    def __init__(self, topic: str) -> None:
        super().__init__(
            f"topic {topic!r} does not exist: create it (`qroute topics create`) or name another one"
        )
        self.topic = topic


class ClientClosed(ClientError):
    """The client is not running (never started, or closed), or its result reader stopped."""
