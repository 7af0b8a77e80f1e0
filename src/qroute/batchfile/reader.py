"""Reading a JSONL file of jobs in two passes: check everything, then send.

`scan_file` reads the whole file once and keeps only what is small: the errors (the
first `MAX_KEPT_ERRORS`), counts, and each valid job id with its position. Nothing
is sent unless the whole file is clean (or the caller chose to skip bad lines).
`iter_jobs` then reads the file again and yields the valid jobs in order, so memory
stays flat for a file of a million jobs. The file must not change in between.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qroute.batchfile.lines import InputFormat, LineError, LineOptions, ParsedLine, parse_line

MAX_KEPT_ERRORS = 1000
"""Errors kept for the report; the count covers all of them."""


class FileChanged(RuntimeError):
    """The input file changed between the check and the send."""


@dataclass
class ScanReport:
    """What the first pass found."""

    path: Path
    lines: int = 0
    blank: int = 0
    formats: Counter[InputFormat] = field(default_factory=Counter)
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    """Valid job id → its position among the valid jobs (0-based, input order)."""
    stamp: tuple[int, int] = (0, 0)

    @property
    def valid(self) -> int:
        return len(self.positions)

    def describe(self) -> str:
        """One line for people: `read 12 lines: 8 qroute, 2 openai-batch; 2 rejected`."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.formats.items()))
        text = f"read {self.lines} lines: {kinds or 'no jobs'}"
        if self.error_count:
            text += f"; {self.error_count} rejected"
        return text


def _stamp(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _results(path: Path, options: LineOptions) -> Iterator[ParsedLine | LineError | None]:
    """Every line's outcome; a repeated job id is an error on the later line."""
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            parsed = parse_line(raw.rstrip(b"\r\n"), number, options)
            if isinstance(parsed, ParsedLine):
                earlier = first_line.setdefault(parsed.job.id, number)
                if earlier != number:
                    parsed = LineError(
                        number, parsed.format, f"job id {parsed.job.id!r} is already used on line {earlier}"
                    )
            yield parsed


def scan_file(path: Path, options: LineOptions) -> ScanReport:
    """Check every line; raises OSError when the file cannot be read."""
    report = ScanReport(path, stamp=_stamp(path))
    for outcome in _results(path, options):
        report.lines += 1
        if outcome is None:
            report.blank += 1
        elif isinstance(outcome, LineError):
            report.error_count += 1
            if len(report.errors) < MAX_KEPT_ERRORS:
                report.errors.append(outcome)
        else:
            report.formats[outcome.format] += 1
            report.positions[outcome.job.id] = len(report.positions)
    return report


def iter_jobs(report: ScanReport, options: LineOptions) -> Iterator[ParsedLine]:
    """The valid lines again, in order; raises `FileChanged` if the file is not the one scanned."""
    if _stamp(report.path) != report.stamp:
        raise FileChanged(f"{report.path} changed after it was checked; nothing more is sent")
    for outcome in _results(report.path, options):
        if isinstance(outcome, ParsedLine):
            yield outcome
