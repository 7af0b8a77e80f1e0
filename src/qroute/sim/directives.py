"""Per-request test directives written into the prompt text, e.g. `[sim:fail=503]`.

Grammar: `[sim:WHAT]`, `[sim:WHAT*N]` (only the first N requests carrying this
exact prompt, per provider; later ones are served normally) and
`[sim:WHAT@PROVIDER]` (only when the request reaches that provider), combinable
as `[sim:WHAT*N@PROVIDER]`. WHAT is one of the outcomes listed in `qroute.sim`,
or `latency=SECONDS`. The first outcome directive that applies wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from qroute.sim.config import FAILURE_KINDS, FailureKind

Forced = Literal["400", "429", "content-filter"] | FailureKind
"""An outcome a directive can force."""

_FORCED_NAMES: tuple[Forced, ...] = ("400", "429", "content-filter", *FAILURE_KINDS)
_BY_NAME: dict[str, Forced] = {name: name for name in _FORCED_NAMES}
_HTTP_FAULTS = frozenset({"500", "502", "503", "529"})

_PATTERN = re.compile(r"\[sim:([a-z0-9-]+)(?:=([0-9.]+))?(?:\*(\d+))?(?:@([a-z0-9_.-]+))?\]")


@dataclass(frozen=True, slots=True)
class Directives:
    """What a prompt asks the simulator to do; `times` None means every time."""

    forced: Forced | None = None
    times: int | None = None
    latency_s: float | None = None


NONE = Directives()


def parse_directives(text: str, provider: str) -> Directives:
    """The directives in `text` that apply to `provider`; unknown ones are ignored."""
    if "[sim:" not in text:
        return NONE
    forced: Forced | None = None
    times: int | None = None
    latency: float | None = None
    for what, value, count, scope in _PATTERN.findall(text):
        if scope and scope != provider:
            continue
        if what == "latency" and value:
            latency = float(value) if latency is None else latency
            continue
        outcome = _outcome(what, value)
        if outcome is not None and forced is None:
            forced = outcome
            times = int(count) if count else None
    return Directives(forced=forced, times=times, latency_s=latency)


def _outcome(what: str, value: str) -> Forced | None:
    """`fail=503` and a bare `503` both force a 503; other names force themselves."""
    if what == "fail":
        return _BY_NAME[value] if value in _HTTP_FAULTS else None
    return None if value else _BY_NAME.get(what)
