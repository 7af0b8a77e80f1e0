"""Writing a results file in arrival order or in input order, with flat memory.

Results arrive in any order (partitions, retries, deferrals). In input order, a
result whose turn has come is written at once; the others wait in an anonymous
spool file (only their offsets stay in memory) until the gap before them closes.
Each job is written once: later duplicates (at-least-once delivery) are ignored.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from typing import BinaryIO, Literal, Self

from qroute.models import Result

ResultOrder = Literal["input", "arrival"]


class ResultsWriter:
    """Writes the first result of each expected job to `out`; `close()` writes what is still held."""

    def __init__(
        self,
        out: BinaryIO,
        positions: Mapping[str, int],
        *,
        order: ResultOrder,
        render: Callable[[Result], bytes],
    ) -> None:
        self._out = out
        self._positions = positions
        self._order = order
        self._render = render
        self._seen: set[int] = set()
        self._next = 0
        self._held: dict[int, tuple[int, int]] = {}
        self._spool: BinaryIO | None = None
        self.written = 0

    def add(self, result: Result) -> bool:
        """Take a result; False when it is not for an expected job or is a duplicate."""
        position = self._positions.get(result.job_id)
        if position is None or position in self._seen:
            return False
        self._seen.add(position)
        line = self._render(result)
        if self._order == "arrival" or position == self._next:
            self._write(line)
            if self._order == "input":
                self._next += 1
                self._release()
        else:
            self._hold(position, line)
        return True

    @property
    def received(self) -> int:
        return len(self._seen)

    def missing(self) -> list[str]:
        """Expected job ids with no result yet, in input order."""
        return [
            job_id
            for job_id, pos in sorted(self._positions.items(), key=lambda i: i[1])
            if pos not in self._seen
        ]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Write every held result in input order (skipping gaps), flush, drop the spool."""
        for position in sorted(self._held):
            self._write(self._read_held(position))
        self._held.clear()
        self._out.flush()
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _write(self, line: bytes) -> None:
        self._out.write(line)
        self.written += 1

    def _hold(self, position: int, line: bytes) -> None:
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._spool.seek(0, 2)
        self._held[position] = (self._spool.tell(), len(line))
        self._spool.write(line)

    def _read_held(self, position: int) -> bytes:
        offset, length = self._held[position]
        assert self._spool is not None
        self._spool.seek(offset)
        return self._spool.read(length)

    def _release(self) -> None:
        while self._next in self._held:
            self._write(self._read_held(self._next))
            del self._held[self._next]
            self._next += 1
