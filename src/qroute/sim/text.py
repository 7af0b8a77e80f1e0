"""The simulator's own token counting and its deterministic answers.

Deliberately independent of `qroute.routing`: the simulator plays a provider
whose tokenizer qroute does not know, so qroute's estimates must be reconciled
with what the "provider" reports, as they would be in production.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

MESSAGE_OVERHEAD_TOKENS = 3
"""Framing tokens billed per message (role markers), as chat formats do."""

WORD_SOURCE_CHARS = 4096
"""Answers reuse words from the start of the prompt only: enough variety, bounded cost."""

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_DIRECTIVE = re.compile(r"\[sim:[^\]]*\]")
_FALLBACK_WORDS = ("the", "request", "was", "processed", "and", "summarised", "briefly")


def count_tokens(text: str) -> int:
    """ceil(characters / 4): the classic English rule of thumb, exact and cheap."""
    return (len(text) + 3) // 4


def prompt_tokens(text: str, messages: int) -> int:
    """Billed input tokens of a prompt whose message texts total `text`."""
    return count_tokens(text) + MESSAGE_OVERHEAD_TOKENS * messages


def answer(prompt: str, input_tokens: int, budget: int, *, json_mode: bool) -> tuple[str, bool]:
    """A deterministic "summary" of the prompt in at most `budget` tokens; True when cut short.

    The words and the intended length come from a generator seeded by the
    prompt's hash, so the same prompt always gets the same answer, and a
    smaller budget gets a prefix of it.
    """
    seed = int.from_bytes(hashlib.blake2b(prompt.encode("utf-8", "replace"), digest_size=8).digest(), "big")
    rng = random.Random(seed)
    source = prompt[:WORD_SOURCE_CHARS].lower()
    if "[sim:" in source:
        source = _DIRECTIVE.sub(" ", source)
    words = _WORD.findall(source) or list(_FALLBACK_WORDS)
    wanted = max(8, min(input_tokens // 4, 256))
    wanted = rng.randint(max(4, wanted * 3 // 4), wanted * 5 // 4)
    chars = wanted * 4
    # Each pick costs at least (shortest word + 1 space) characters, so this many always fills `chars`.
    picks = chars // (min(map(len, words)) + 1) + 1
    text = " ".join(rng.choices(words, k=picks))
    cut = text.rfind(" ", 0, chars + 1)
    text = text[: cut if cut > 0 else chars]
    text = text[:1].upper() + text[1:] + "."
    if json_mode:
        text = json.dumps({"summary": text}, ensure_ascii=False)
    if count_tokens(text) <= budget:
        return text, False
    # Cut like a model that ran out of tokens: mid-sentence, and mid-JSON in JSON mode.
    limit = max(budget, 0) * 4
    if not json_mode and limit:
        space = text.rfind(" ", 0, limit + 1)
        limit = space if space > 0 else limit
    return text[:limit], True
