"""The worker's one HTTP client, and one provider call through it.

Transport: httpx's API over aiohttp's connection pool (`httpx-aiohttp`), chosen by
measurement (scripts/bench_transport.py; numbers in docs/provider-errors.md,
"HTTP transport"): at concurrency 50 on loopback, a whole call through `send()`
cost 0.42–0.54 ms of client CPU with aiohttp against 4.7–5.7 ms with httpx's
default transport, whose cost per call grows with concurrency (0.84 ms at 1).
`transport="httpx"` keeps the default for comparison and as a fallback.

Caveat of httpx-aiohttp 0.2: it reports refused, reset and dropped connections
as `httpx.ConnectTimeout`; `classify.outcome_for_transport_error` reads the
aiohttp cause to call them connection errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.request import getproxies

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from qroute.catalog.types import ProviderSpec, Route
from qroute.models import Job
from qroute.providers.base import Adapter, ProviderOutcome
from qroute.providers.classify import outcome_for_transport_error

KEEPALIVE_EXPIRY_S = 30.0
"""Idle connections are closed after this; providers' load balancers drop them around 60 s."""


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: provider APIs need no cookies, and httpx's jar
    parsing cost ~0.1-0.18 ms of CPU per call (measured with scripts/bench_attempt.py)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _cookieless(client: httpx.AsyncClient) -> httpx.AsyncClient:
    client._cookies = _NoCookies()  # httpx has no switch for this; its setter would copy the jar
    return client


def make_http_client(*, max_connections: int = 1000, transport: str = "aiohttp") -> httpx.AsyncClient:
    """The shared client: one connection pool for every provider, no redirects, no retries.

    Timeouts are set per request from the provider's spec (`timeout_for`);
    retries belong to the attempt loop, which knows the job's deadline.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    if transport == "aiohttp":

        def session() -> aiohttp.ClientSession:
            # Built lazily inside the running loop on first use. Proxy variables are
            # honoured like httpx does, but aiohttp's trust_env re-reads them (and
            # ~/.netrc) on every request, doubling client CPU: only pay when set.
            connector = aiohttp.TCPConnector(
                limit=max_connections, keepalive_timeout=KEEPALIVE_EXPIRY_S, ssl=httpx.create_ssl_context()
            )
            return aiohttp.ClientSession(connector=connector, trust_env=bool(getproxies()))

        return _cookieless(
            httpx.AsyncClient(transport=AiohttpTransport(client=session), follow_redirects=False)
        )
    if transport == "httpx":
        return httpx.AsyncClient(limits=limits, follow_redirects=False)
    raise ValueError(f"unknown transport {transport!r}: use 'aiohttp' or 'httpx'")


def timeout_for(provider: ProviderSpec) -> httpx.Timeout:
    """Connect and read (per chunk) timeouts from the spec; waiting for a pooled connection counts as connect."""
    return httpx.Timeout(
        connect=provider.connect_timeout_s,
        read=provider.read_timeout_s,
        write=provider.connect_timeout_s,
        pool=provider.connect_timeout_s,
    )


async def send(
    client: httpx.AsyncClient,
    adapter: Adapter,
    job: Job,
    route: Route,
    api_key: str | None,
    *,
    now: Callable[[], float] = time.time,
) -> tuple[ProviderOutcome, float]:
    """Build, send, parse: the classified outcome and the call's latency in seconds.

    Never raises for provider trouble (HTTP errors, timeouts, resets, garbage);
    `total_timeout_s` bounds the whole call including a slow trickle of bytes.
    Cancellation propagates, so a worker can still shut down mid-call.
    """
    try:
        request = adapter.build_request(job, route, api_key)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return outcome_for_transport_error(exc), 0.0
    request.extensions["timeout"] = timeout_for(route.provider).as_dict()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(route.provider.total_timeout_s):
            response = await client.send(request)
    except (httpx.RequestError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return outcome_for_transport_error(exc), time.perf_counter() - started
    latency = time.perf_counter() - started
    return adapter.parse_response(response, now()), latency
