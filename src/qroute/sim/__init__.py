"""A local provider simulator: a real HTTP server speaking OpenAI and Anthropic formats.

One server hosts several simulated providers by path prefix: provider NAME is
`http://127.0.0.1:PORT/NAME/v1/chat/completions` (OpenAI family; SDK base_url
`…/NAME/v1`) or `http://127.0.0.1:PORT/NAME/v1/messages` (Anthropic family; SDK
base_url `…/NAME`). Each provider has its own models and prices, latency
distribution, rpm/tpm token buckets (429 with the family's real headers),
fault rates and schedules, outage windows and a seed; see `SimConfig` and
`default.toml`. Everything it charges goes to a ledger with exact Decimal costs.

Control endpoints:
    GET  /_sim/health                    providers, families, models, outage state
    GET  /_sim/ledger                    billed entries, exact totals, status and fault counts
                                         (?entries=false: totals and counts only)
    POST /_sim/reset                     empty ledger, full buckets, outage clock restarted
    POST /_sim/providers/NAME/outage     body {"down": true|false}: manual outage switch (503s)

Test directives, written anywhere in the prompt text (system or messages):
    [sim:400]             400 invalid_request_error
    [sim:429]             429 rate limit (family headers, retry-after 1 s), consumes no budget
    [sim:fail=500]        500 (also fail=502: an HTML "Bad Gateway" page, fail=503, fail=529)
    [sim:timeout]         hold the request for the provider's `hang_s`, then drop the connection
    [sim:reset]           close the connection abruptly (TCP RST) without a response
    [sim:malformed]       200 whose body is not valid JSON
    [sim:truncated]       200 announcing the full Content-Length, then half the body and a cut
    [sim:no-usage]        a valid 200 without `usage` (not billed)
    [sim:content-filter]  200 with finish_reason content_filter / stop_reason refusal (billed)
    [sim:latency=0.5]     this request's latency in seconds instead of a draw
Suffixes: `*N` applies the directive only to the first N requests with this
exact prompt on a provider (`[sim:fail=503*2]` fails twice, then succeeds);
`@NAME` applies it only on provider NAME (`[sim:fail=503@cheap]`).

Billing: only a 200 carrying usage is billed; cost =
((input - cached)·input_per_m + cached·cached_input_per_m + output·output_per_m) / 1e6,
with the simulator's own token counts (ceil(chars/4) + 3 per message; the
answer is a deterministic "summary" of the prompt within max_tokens).
"""

from qroute.sim.config import (
    FailureKind,
    FixedLatency,
    LognormalLatency,
    Outage,
    ScheduledFailure,
    SimConfig,
    SimModel,
    SimProvider,
    UniformLatency,
    default_config,
    load_sim_config,
)
from qroute.sim.ledger import Ledger, LedgerEntry
from qroute.sim.process import RemoteSim, SimStartError, run_in_subprocess
from qroute.sim.server import SimServer

__all__ = [
    "FailureKind",
    "FixedLatency",
    "Ledger",
    "LedgerEntry",
    "LognormalLatency",
    "Outage",
    "RemoteSim",
    "ScheduledFailure",
    "SimConfig",
    "SimModel",
    "SimProvider",
    "SimServer",
    "SimStartError",
    "UniformLatency",
    "default_config",
    "load_sim_config",
    "run_in_subprocess",
]
