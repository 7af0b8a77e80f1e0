"""The bundled public-domain text, cut into passages worth summarising.

A nightly summarisation job rarely gets tidy, disjoint documents; it gets chunks
that overlap so no sentence loses its context. The demo does the same: every
paragraph starts a window of consecutive paragraphs (within one chapter) that is
at least `min_chars` long, and a batch of N jobs takes N windows spread evenly
over the book. The book is about 140 kB, which gives about 800 windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

TEXT_RESOURCE = "data/alice.txt"
SOURCE = "Lewis Carroll, Alice's Adventures in Wonderland (1865), public domain"

MIN_PASSAGE_CHARS = 420
"""About 110 tokens: long enough for a two-sentence summary to mean something."""

_CHAPTER = re.compile(r"^CHAPTER ([IVXLC]+)\.")
_BLANK_LINES = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Passage:
    """A window of the book: where it is, and its text with whitespace collapsed."""

    chapter: str
    index: int
    text: str


def load_text() -> str:
    """The bundled book (UTF-8 plain text shipped inside the package)."""
    return resources.files("qroute.demo").joinpath(TEXT_RESOURCE).read_text(encoding="utf-8")


def chapters(text: str) -> list[tuple[str, list[str]]]:
    """(roman numeral, paragraphs) per chapter; the title block before chapter I is dropped."""
    out: list[tuple[str, list[str]]] = []
    for block in _BLANK_LINES.split(text):
        paragraph = _SPACES.sub(" ", block).strip()
        if not paragraph:
            continue
        heading = _CHAPTER.match(paragraph)
        if heading:
            out.append((heading.group(1), []))
        elif out:
            out[-1][1].append(paragraph)
    return out


def windows(text: str, *, min_chars: int = MIN_PASSAGE_CHARS) -> list[Passage]:
    """Every window of consecutive paragraphs of at least `min_chars`, one per starting paragraph.

    A window stops at the end of its chapter, so the last windows of a chapter may be
    shorter; a chapter's final paragraphs always appear in some window.
    """
    out: list[Passage] = []
    for numeral, paragraphs in chapters(text):
        for start in range(len(paragraphs)):
            taken: list[str] = []
            size = 0
            for paragraph in paragraphs[start:]:
                taken.append(paragraph)
                size += len(paragraph) + 1
                if size >= min_chars:
                    break
            if size < min_chars and start > 0 and out and out[-1].chapter == numeral:
                break  # the rest of the chapter is already inside the previous window
            out.append(Passage(numeral, len(out), "\n\n".join(taken)))
    return out


def spread(passages: list[Passage], count: int) -> list[Passage]:
    """`count` passages spread evenly over the book; cycles through it again when count exceeds it."""
    if count <= 0 or not passages:
        return []
    total = len(passages)
    if count >= total:
        return [passages[i % total] for i in range(count)]
    return [passages[i * total // count] for i in range(count)]
