"""The simulator's decisions: what one request gets, independent of the HTTP server.

`SimEngine.handle` turns a request into a `Plan` (a reply, possibly delayed or
cut short, or a dropped connection) and does all bookkeeping (rate-limit
buckets, fault draws, the ledger) at decision time. The order of checks is:
unknown path → outage (503) → unreadable body / invalid request (400) →
unknown model (404) → `[sim:400]` → context window (400) → rate limits (429;
nothing before this point consumes budget) → injected fault or success after
the drawn latency. A request that passed admission is billed when it is
answered successfully, even if the client has gone by then (as providers do).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count

from qroute.sim.anthropic_api import AnthropicWire
from qroute.sim.config import (
    FAILURE_KINDS,
    FailureKind,
    LognormalLatency,
    SimConfig,
    SimModel,
    SimProvider,
    UniformLatency,
)
from qroute.sim.directives import Directives, Forced, parse_directives
from qroute.sim.ledger import Ledger, LedgerBook, LedgerEntry, price
from qroute.sim.limits import ProviderLimits, Refusal
from qroute.sim.openai_api import OpenAIWire
from qroute.sim.text import answer, count_tokens, prompt_tokens
from qroute.sim.wire import (
    DEFAULT_MAX_OUTPUT,
    Answer,
    Finish,
    ParsedRequest,
    SimError,
    UsageCounts,
    Wire,
    dumps,
)

CACHE_MIN_PROMPT_TOKENS = 1024
"""Prompts at or below this size never report cache reads (providers' minimum cacheable prefix)."""

FORCED_RETRY_AFTER_S = 1.0
"""Wait announced by a `[sim:429]` directive."""

_WIRES: dict[str, Wire] = {"openai": OpenAIWire(), "anthropic": AnthropicWire()}
_HTTP_FAULTS: dict[str, SimError] = {
    "500": SimError(
        500, "server_error", "The server had an error while processing your request (simulated)."
    ),
    "503": SimError(503, "unavailable", "The server is overloaded or not ready yet (simulated)."),
    "529": SimError(529, "overloaded", "Overloaded (simulated)."),
}
_BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"
_FAULT_NAMES = frozenset(FAILURE_KINDS)


@dataclass(frozen=True, slots=True)
class Reply:
    """Send this response after `delay_s`; with `truncate`, send half the body and drop the connection."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"
    truncate: bool = False


@dataclass(frozen=True, slots=True)
class Drop:
    """Send nothing: hold the request for `after_s` then close (`hang`), or reset it after `after_s`."""

    after_s: float
    hang: bool


Plan = Reply | Drop


@dataclass(frozen=True, slots=True)
class _Admitted:
    """What the checks decided for a request that passed admission."""

    input_tokens: int
    output_cap: int
    forced: Forced | None
    fault: Forced | None
    delay_s: float


class ProviderRuntime:
    """Mutable per-provider state: buckets, counters, outage switch and seeded generators."""

    def __init__(self, spec: SimProvider, seed: int, now: float) -> None:
        self.spec = spec
        self.wire = _WIRES[spec.family]
        self.limits = ProviderLimits(spec.rpm, spec.tpm, now)
        self.arrivals = 0
        self.manual_down = False
        self.repeats: dict[tuple[str, str], int] = {}
        # Separate streams, so turning faults on does not change the latency sequence.
        self._latency_rng = random.Random(f"{seed}:{spec.name}:latency")
        self._fault_rng = random.Random(f"{seed}:{spec.name}:faults")
        self._rates = [
            (kind, spec.failure_rates[kind]) for kind in FAILURE_KINDS if kind in spec.failure_rates
        ]

    def down(self, elapsed_s: float) -> bool:
        return self.manual_down or any(o.start_s <= elapsed_s < o.end_s for o in self.spec.outages)

    def draw_fault(self, arrival: int) -> FailureKind | None:
        """The scheduled fault for this request number, else a seeded draw from the rates."""
        for scheduled in self.spec.failure_schedule:
            if scheduled.first <= arrival <= scheduled.last:
                return scheduled.kind
        if not self._rates:
            return None
        point = self._fault_rng.random()
        for kind, rate in self._rates:
            if point < rate:
                return kind
            point -= rate
        return None

    def latency(self) -> float:
        spec = self.spec.latency
        if isinstance(spec, UniformLatency):
            return self._latency_rng.uniform(spec.lo, spec.hi)
        if isinstance(spec, LognormalLatency):
            return self._latency_rng.lognormvariate(math.log(spec.median), spec.sigma)
        return spec.seconds


class SimEngine:
    """All simulated providers of one server, their ledger, and the request decision procedure."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall = wall_clock
        self._run = f"{random.getrandbits(32):08x}"
        self._ids = count(1)
        self._book = LedgerBook()
        self.reset()

    def reset(self) -> None:
        """Back to the state at start: empty ledger, full buckets, outage clock at zero."""
        now = self._clock()
        self._start = now
        self._book.clear()
        self._runtimes = {p.name: ProviderRuntime(p, self.config.seed, now) for p in self.config.providers}

    def set_outage(self, provider: str, down: bool) -> bool:
        """Switch a provider's manual outage; False if there is no such provider.

        A configured outage window still applies while the switch is off.
        """
        runtime = self._runtimes.get(provider)
        if runtime is None:
            return False
        runtime.manual_down = down
        return True

    def ledger(self, *, entries: bool = True) -> Ledger:
        return self._book.snapshot(entries=entries)

    def health(self) -> dict[str, object]:
        elapsed = self._clock() - self._start
        return {
            "status": "ok",
            "providers": {
                name: {
                    "family": rt.spec.family,
                    "down": rt.down(elapsed),
                    "models": [m.name for m in rt.spec.models],
                }
                for name, rt in self._runtimes.items()
            },
        }

    def handle(self, provider: str, tail: str, method: str, body: bytes, headers: Mapping[str, str]) -> Plan:
        """Decide the answer to `method /{provider}/v1/{tail}` (headers lower-cased or case-insensitive)."""
        rt = self._runtimes.get(provider)
        if rt is None:
            message = f"no simulated provider named {provider!r}"
            return Reply(404, dumps({"error": {"message": message, "type": "not_found_error"}}))
        rid = f"req_{self._run}{next(self._ids):08x}"
        wire = rt.wire
        if method != "POST" or tail != wire.endpoint:
            return self._error(
                rt, rid, SimError(404, "not_found", f"Not found: {method} /{provider}/v1/{tail}")
            )
        rt.arrivals += 1
        now = self._clock()
        if rt.down(now - self._start):
            self._book.count_fault(provider, "outage")
            return self._error(rt, rid, _HTTP_FAULTS["503"])
        try:
            data = json.loads(body)
        except ValueError:
            return self._error(
                rt, rid, SimError(400, "invalid_request", "We could not parse the JSON body of your request.")
            )
        parsed = wire.parse(data, headers)
        if isinstance(parsed, SimError):
            return self._error(rt, rid, parsed)
        model = rt.spec.model(parsed.model)
        if model is None:
            served = ", ".join(m.name for m in rt.spec.models)
            message = f"model: {parsed.model} does not exist on this provider (it serves: {served})"
            return self._error(rt, rid, SimError(404, "not_found", message, param="model"))
        directives = parse_directives(parsed.prompt, provider)
        forced = self._forced(rt, directives, parsed.prompt)
        if forced == "400":
            return self._error(
                rt, rid, SimError(400, "invalid_request", "Invalid request (forced by [sim:400]).")
            )
        input_tokens = prompt_tokens(parsed.prompt, parsed.messages)
        window = model.context_window
        if input_tokens + (parsed.max_tokens or 0) > window:
            return self._error(rt, rid, _context_error(rt, input_tokens, parsed.max_tokens, window))
        if forced == "429":
            return self._rate_limited(rt, rid, Refusal("requests", FORCED_RETRY_AFTER_S))
        output_cap = parsed.max_tokens or min(DEFAULT_MAX_OUTPUT, window - input_tokens)
        refusal = rt.limits.admit(input_tokens + output_cap, now)
        if refusal is not None:
            return self._rate_limited(rt, rid, refusal)
        fault = forced if forced in _FAULT_NAMES else rt.draw_fault(rt.arrivals)
        delay = directives.latency_s if directives.latency_s is not None else rt.latency()
        if fault is not None:
            self._book.count_fault(provider, fault)
            failed = self._fail(rt, rid, fault, delay)
            if failed is not None:
                return failed
        return self._serve(rt, rid, model, parsed, _Admitted(input_tokens, output_cap, forced, fault, delay))

    def _fail(self, rt: ProviderRuntime, rid: str, fault: Forced, delay: float) -> Plan | None:
        """The plan for a fault that replaces the answer; None for faults that damage the answer."""
        name = rt.spec.name
        if fault in ("timeout", "reset"):
            self._book.count_status(name, fault)
            return Drop(rt.spec.hang_s, hang=True) if fault == "timeout" else Drop(delay, hang=False)
        if fault == "502":
            self._book.count_status(name, "502")
            return Reply(502, _BAD_GATEWAY, rt.wire.id_headers(rid), delay, content_type="text/html")
        if fault in _HTTP_FAULTS:
            return self._error(rt, rid, _HTTP_FAULTS[fault], delay)
        return None

    def _serve(
        self, rt: ProviderRuntime, rid: str, model: SimModel, parsed: ParsedRequest, admitted: _Admitted
    ) -> Reply:
        """The 200 answer, damaged as the fault says (malformed, truncated, no usage), billed if intact."""
        forced, fault, cap = admitted.forced, admitted.fault, admitted.output_cap
        reasoning = min(model.reasoning_tokens, cap)
        text, cut = answer(parsed.prompt, admitted.input_tokens, cap - reasoning, json_mode=parsed.json_mode)
        if forced == "content-filter":
            text, cut = "", False
        output_tokens = max(1, reasoning + count_tokens(text))
        input_tokens = admitted.input_tokens
        cached = int(input_tokens * model.cached_ratio) if input_tokens > CACHE_MIN_PROMPT_TOKENS else 0
        usage = UsageCounts(input_tokens, cached, output_tokens, reasoning)
        finish: Finish = "content_filter" if forced == "content-filter" else "length" if cut else "stop"
        wire = rt.wire
        wall = self._wall()
        payload = dumps(
            wire.success(
                Answer(rid, model.name, text, finish, None if fault == "no-usage" else usage), int(wall)
            )
        )
        headers = {**wire.id_headers(rid), **wire.limit_headers(rt.limits.state(self._clock()), wall)}
        self._book.count_status(rt.spec.name, "200")
        if fault == "malformed":
            # A complete HTTP response whose body is not JSON (cut in half, Content-Length matching).
            return Reply(200, payload[: len(payload) // 2], headers, admitted.delay_s)
        if fault == "truncated":
            return Reply(200, payload, headers, admitted.delay_s, truncate=True)
        if fault is None:
            self._book.bill(
                LedgerEntry(
                    provider=rt.spec.name,
                    model=model.name,
                    request_id=rid,
                    input_tokens=input_tokens,
                    cached_input_tokens=cached,
                    output_tokens=output_tokens,
                    reasoning_tokens=reasoning,
                    cost=price(model, input_tokens, cached, output_tokens),
                )
            )
        return Reply(200, payload, headers, admitted.delay_s)

    def _forced(self, rt: ProviderRuntime, directives: Directives, prompt: str) -> Forced | None:
        """The directive's outcome, honouring `*N` (first N identical prompts on this provider)."""
        if directives.forced is None or directives.times is None:
            return directives.forced
        key = (directives.forced, prompt)
        seen = rt.repeats.get(key, 0)
        rt.repeats[key] = seen + 1
        return directives.forced if seen < directives.times else None

    def _error(self, rt: ProviderRuntime, rid: str, error: SimError, delay: float = 0.0) -> Reply:
        self._book.count_status(rt.spec.name, str(error.status))
        headers = {
            **rt.wire.id_headers(rid),
            **rt.wire.limit_headers(rt.limits.state(self._clock()), self._wall()),
        }
        return Reply(error.status, dumps(rt.wire.error(error, rid)), headers, delay)

    def _rate_limited(self, rt: ProviderRuntime, rid: str, refusal: Refusal) -> Reply:
        bucket = refusal.bucket
        if math.isinf(refusal.wait_s):
            message = (
                f"Request too large for {rt.spec.name} on {bucket} per min: the request needs more "
                "than the whole per-minute limit. Reduce the input or max output tokens."
            )
            wait = 60.0
        else:
            message = f"Rate limit reached for {rt.spec.name} on {bucket} per min. Please try again in {refusal.wait_s:.3f}s."
            wait = refusal.wait_s
        error = SimError(429, "rate_limit", message, bucket=bucket)
        reply = self._error(rt, rid, error)
        reply.headers.update(rt.wire.retry_headers(wait))
        return reply


def _context_error(rt: ProviderRuntime, input_tokens: int, max_tokens: int | None, window: int) -> SimError:
    if rt.spec.family == "anthropic":
        message = f"prompt is too long: {input_tokens} tokens + {max_tokens} max_tokens > {window} maximum"
    else:
        message = (
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{input_tokens + (max_tokens or 0)} tokens ({input_tokens} in the messages, "
            f"{max_tokens or 0} in the completion). Please reduce the length of the messages or completion."
        )
    return SimError(400, "context_length", message, param="messages")
