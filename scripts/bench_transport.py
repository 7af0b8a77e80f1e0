"""Client CPU per provider call: httpx's default transport vs qroute's aiohttp client.

A tiny aiohttp server in a SUBPROCESS answers every POST with a fixed OpenAI
Chat Completions body (with rate-limit headers), so its CPU is not counted.
The client runs qroute's real call path, `qroute.providers.http.send()` (build
the request, send it, classify the response), at a fixed concurrency, and
reports client CPU per call (`time.process_time`) and throughput. Rounds
alternate transports to spread noise from other processes; medians are shown.

    .venv/bin/python scripts/bench_transport.py --requests 5000 --concurrency 50 --rounds 3

The budget this checks: at most 1 ms of client CPU per whole job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

RESPONSE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1763770000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "A short summary of the text. " * 8, "refusal": None},
        }
    ],
    "usage": {
        "prompt_tokens": 812,
        "completion_tokens": 64,
        "total_tokens": 876,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
HEADERS = {
    "x-request-id": "req_bench",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "10000000",
    "x-ratelimit-remaining-tokens": "9999000",
    "x-ratelimit-reset-tokens": "1.574s",
}


def serve() -> None:
    """Server mode (run in the subprocess): print the port, then answer forever."""
    from aiohttp import web

    body = json.dumps(RESPONSE).encode()

    async def completions(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json", headers=HEADERS)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class RoundResult:
    transport: str
    cpu_ms_per_call: float
    calls_per_s: float
    ok: int


async def run_round(transport: str, port: int, requests: int, concurrency: int, warmup: int) -> RoundResult:
    from qroute.catalog.types import ModelSpec, ProviderSpec, Route
    from qroute.models import Job
    from qroute.providers.http import make_http_client, send
    from qroute.providers.registry import adapter_for

    route = Route(
        provider=ProviderSpec(name="bench", family="openai", base_url=f"http://127.0.0.1:{port}/v1"),
        model=ModelSpec(
            provider="bench",
            model="gpt-4o-mini",
            tier=1,
            input_per_m=Decimal("0.15"),
            output_per_m=Decimal("0.60"),
            context_window=128_000,
            max_output_tokens=16_384,
            price_source="bench",
            price_date=date(2026, 10, 29),
        ),
    )
    job = Job(
        id="bench-1",
        system="Summarise the text in two sentences.",
        messages=[{"role": "user", "content": "Lorem ipsum dolor sit amet. " * 120}],
        params={"max_tokens": 256, "temperature": 0.2},
    )
    adapter = adapter_for("openai")
    ok = 0

    async with make_http_client(transport=transport) as client:

        async def worker(n: int) -> None:
            nonlocal ok
            for _ in range(n):
                outcome, _ = await send(client, adapter, job, route, "sk-bench")
                ok += outcome.outcome == "success"

        async def batch(total: int) -> None:
            per, extra = divmod(total, concurrency)
            await asyncio.gather(*(worker(per + (i < extra)) for i in range(concurrency)))

        await batch(warmup)
        ok = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await batch(requests)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return RoundResult(transport, cpu / requests * 1000, requests / wall, ok)


def adapter_only_cpu_us(n: int = 20_000) -> float:
    """Client CPU of build_request + parse_response alone (no network), per call, in µs."""
    import httpx

    from qroute.catalog.types import ModelSpec, ProviderSpec, Route
    from qroute.models import Job
    from qroute.providers.registry import adapter_for

    route = Route(
        provider=ProviderSpec(name="bench", family="openai", base_url="http://127.0.0.1:1/v1"),
        model=ModelSpec(
            provider="bench",
            model="gpt-4o-mini",
            tier=1,
            input_per_m=Decimal("0.15"),
            output_per_m=Decimal("0.60"),
            context_window=128_000,
            max_output_tokens=16_384,
            price_source="bench",
            price_date=date(2026, 10, 29),
        ),
    )
    job = Job(id="bench-1", messages=[{"role": "user", "content": "Lorem ipsum dolor sit amet. " * 120}])
    adapter = adapter_for("openai")
    body = json.dumps(RESPONSE).encode()
    start = time.process_time()
    for _ in range(n):
        adapter.build_request(job, route, "sk-bench")
        adapter.parse_response(httpx.Response(200, headers=HEADERS, content=body), 1_763_800_000.0)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--transports", default="httpx,aiohttp")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        transports = args.transports.split(",")
        results: dict[str, list[RoundResult]] = {t: [] for t in transports}
        for _ in range(args.rounds):
            for transport in transports:
                result = asyncio.run(run_round(transport, port, args.requests, args.concurrency, args.warmup))
                results[transport].append(result)
    finally:
        server.terminate()
        server.wait(timeout=10)

    adapter_us = adapter_only_cpu_us()
    summary = {
        t: {
            "cpu_ms_per_call_median": round(statistics.median(r.cpu_ms_per_call for r in rs), 4),
            "cpu_ms_per_call_rounds": [round(r.cpu_ms_per_call, 4) for r in rs],
            "calls_per_s_median": round(statistics.median(r.calls_per_s for r in rs), 1),
            "ok": [r.ok for r in rs],
        }
        for t, rs in results.items()
    }
    if args.json:
        print(
            json.dumps({"args": vars(args), "adapter_only_us": round(adapter_us, 1), "transports": summary})
        )
        return
    print(f"requests/round={args.requests} concurrency={args.concurrency} rounds={args.rounds}")
    print(f"adapter only (build + classify, no network): {adapter_us:.1f} µs/call")
    print(f"{'transport':<10} {'client CPU ms/call (median)':>28} {'calls/s (median)':>18}  rounds (ms/call)")
    for t, s in summary.items():
        print(
            f"{t:<10} {s['cpu_ms_per_call_median']:>28.3f} {s['calls_per_s_median']:>18.0f}  {s['cpu_ms_per_call_rounds']}"
        )
    for t, rs in results.items():
        if any(r.ok != args.requests for r in rs):
            print(f"WARNING: {t} had non-success calls: {[r.ok for r in rs]}", file=sys.stderr)


if __name__ == "__main__":
    main()
