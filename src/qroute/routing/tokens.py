"""Offline token estimate for chat jobs: no network, no tokenizer files.

Placeholder calibration (4 characters per token); refined by
scripts/token_estimate_error.py.
"""

from __future__ import annotations

import math

from qroute.models import Job

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3


def estimate_text_tokens(text: str) -> int:
    """Tokens in `text` alone (no chat framing)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_input_tokens(job: Job) -> int:
    """Prompt tokens for the whole job: every message (and the system prompt) plus chat framing."""
    total = REPLY_PRIMING_TOKENS
    if job.system:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(job.system)
    for message in job.messages:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(message.content)
    return total


def expected_output_tokens(job: Job, ratio: float) -> int:
    """Output tokens to budget for: `ratio` of `max_tokens`, at least one."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"expected output ratio must be in (0, 1], got {ratio}")
    return max(1, math.ceil(job.params.max_tokens * ratio))
