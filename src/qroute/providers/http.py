"""The worker's one HTTP client, and one provider call through it.

Adapters describe requests and read responses as httpx objects (`httpx.Request`
in, `httpx.Response` out); what carries them is chosen by measurement. The
default, `AiohttpClient`, sends them on aiohttp's connection pool directly.
History (scripts/bench_transport.py, numbers in docs/provider-errors.md, "HTTP
transport"): httpx's own transport cost 4.7–5.7 ms of client CPU per call at
concurrency 50 (its cost grows with concurrency), aiohttp under httpx's client
(`httpx-aiohttp`) 0.42–0.54 ms, and dropping httpx's client layer (auth, redirect,
cookie and event-hook machinery, a streamed body) saves a further share; see
docs/benchmarks.md. `transport="httpx"` keeps httpx's client as a fallback and
for comparison. Either satisfies `HttpClient`, the seam `send()` uses.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol, Self
from urllib.request import getproxies

import aiohttp
import httpx
from yarl import URL

from qroute.catalog.types import ProviderSpec, Route
from qroute.models import Job
from qroute.providers.base import Adapter, ProviderOutcome
from qroute.providers.classify import outcome_for_transport_error

KEEPALIVE_EXPIRY_S = 30.0
"""Idle connections are closed after this; providers' load balancers drop them around 60 s."""


class HttpClient(Protocol):
    """What `send()` needs: send one request, read the whole answer; close the pool at the end."""

    async def send(self, request: httpx.Request) -> httpx.Response: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class AiohttpClient:
    """httpx requests sent over one aiohttp connection pool, answers read whole into `httpx.Response`.

    No redirects, no retries, no cookies (provider APIs need none). The body is
    not decompressed here: the response keeps its content-encoding header and
    httpx decodes it, as it would on its own transport. Errors are aiohttp's
    (`aiohttp.ClientError`, `TimeoutError`); `classify.outcome_for_transport_error`
    reads them. The session is made on first use, inside the running loop.
    """

    def __init__(self, *, max_connections: int = 1000) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=KEEPALIVE_EXPIRY_S,
            ssl=httpx.create_ssl_context(),
        )
        # Proxy variables are honoured like httpx does, but aiohttp's trust_env
        # re-reads them (and ~/.netrc) on every request, doubling client CPU:
        # only pay when one is set.
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=bool(getproxies()),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def send(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = _client_timeout(_timeout_key(request.extensions.get("timeout")))
        async with session.request(
            request.method,
            _yarl(str(request.url)),
            headers=request.headers.multi_items(),
            data=request.content or None,
            allow_redirects=False,
            timeout=timeout,
        ) as answer:
            body = await answer.read()
        return httpx.Response(answer.status, headers=answer.raw_headers, content=body, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _timeout_key(timeout: object) -> tuple[float | None, float | None, float | None]:
    if not isinstance(timeout, Mapping):
        return None, None, None
    return timeout.get("connect"), timeout.get("read"), timeout.get("pool")


@functools.lru_cache(maxsize=256)
def _client_timeout(key: tuple[float | None, float | None, float | None]) -> aiohttp.ClientTimeout:
    """httpx's connect/read/pool timeouts in aiohttp's terms (one object per provider, reused)."""
    connect, read, pool = key
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read, connect=pool)


@functools.lru_cache(maxsize=1024)
def _yarl(url: str) -> URL:
    """Parse each endpoint once; the string httpx gives is already percent-encoded."""
    return URL(url, encoded=True)


def make_http_client(*, max_connections: int = 1000, transport: str = "aiohttp") -> HttpClient:
    """The shared client: one connection pool for every provider, no redirects, no retries.

    Timeouts are set per request from the provider's spec (`timeout_for`);
    retries belong to the attempt loop, which knows the job's deadline.
    """
    if transport == "aiohttp":
        return AiohttpClient(max_connections=max_connections)
    if transport == "httpx":
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
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
    client: HttpClient,
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
