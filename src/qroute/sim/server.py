"""The simulator's HTTP server (aiohttp): carries out the engine's plans on real sockets.

Provider routes are `/{provider}/v1/{endpoint}`; control routes live under
`/_sim/` (a provider name cannot start with `_`). Handlers are cancelled when
the client goes away, so a hung `timeout` request costs nothing once the client
has given up; stopping the server releases any request still hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType
from typing import Any

from aiohttp import web

from qroute.sim.config import SimConfig
from qroute.sim.engine import Drop, Plan, Reply, SimEngine
from qroute.sim.ledger import Ledger
from qroute.sim.wire import dumps

SHUTDOWN_TIMEOUT_S = 2.0
"""Grace for in-flight requests on stop; hung requests are released at once anyway."""

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


class SimServer:
    """A running simulator on `host:port` (port 0 = a free one), for `async with`.

    `sim.base_url(name)` is what a client (SDK or qroute's catalog) uses as that
    provider's base URL; `await sim.ledger()` returns the bill so far.
    """

    def __init__(self, config: SimConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.engine = SimEngine(config)
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        """Bind and serve; `port` is known afterwards."""
        self._closing = asyncio.Event()
        runner = web.AppRunner(
            build_app(self.engine, self._closing),
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Release hung requests and close the listening socket and all connections."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def url(self) -> str:
        """`http://host:port`, the root of every provider and control route."""
        return f"http://{self._host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The base URL an SDK client uses for `provider` (`…/NAME/v1` for OpenAI, `…/NAME` for Anthropic)."""
        spec = self.config.provider(provider)
        if spec is None:
            raise KeyError(f"no simulated provider named {provider!r}")
        return provider_base_url(self.url, provider, spec.family)

    async def ledger(self, *, entries: bool = True) -> Ledger:
        """The bill so far (read in process; the same data as `GET /_sim/ledger`).

        `entries=False` returns totals and counts only.
        """
        return self.engine.ledger(entries=entries)

    def set_outage(self, provider: str, down: bool) -> None:
        if not self.engine.set_outage(provider, down):
            raise KeyError(f"no simulated provider named {provider!r}")

    def reset(self) -> None:
        """Empty the ledger, refill every bucket, clear outages and restart the outage clock."""
        self.engine.reset()


def provider_base_url(root: str, provider: str, family: str) -> str:
    """OpenAI clients append `/chat/completions` to `…/v1`; Anthropic's SDK appends `/v1/messages`."""
    return f"{root}/{provider}/v1" if family == "openai" else f"{root}/{provider}"


def build_app(engine: SimEngine, closing: asyncio.Event) -> web.Application:
    """The aiohttp application: control routes, then one catch-all provider route."""

    async def provider_route(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        plan = engine.handle(
            request.match_info["provider"], request.match_info["tail"], request.method, body, request.headers
        )
        return await _carry_out(request, plan, closing)

    async def health(_: web.Request) -> web.Response:
        return _json(engine.health())

    async def ledger(request: web.Request) -> web.Response:
        # ?entries=false: totals and counts only, for long runs with many entries.
        entries = request.query.get("entries", "true").lower() not in ("false", "0", "no")
        body = engine.ledger(entries=entries).model_dump_json().encode()
        return web.Response(body=body, content_type="application/json")

    async def reset(_: web.Request) -> web.Response:
        engine.reset()
        return _json({"reset": True})

    async def outage(request: web.Request) -> web.Response:
        name = request.match_info["provider"]
        try:
            down = (await request.json())["down"]
        except (ValueError, KeyError, TypeError):
            return _json({"error": 'body must be {"down": true|false}'}, status=400)
        if not isinstance(down, bool):
            return _json({"error": 'body must be {"down": true|false}'}, status=400)
        if not engine.set_outage(name, down):
            return _json({"error": f"no simulated provider named {name!r}"}, status=404)
        return _json({"provider": name, "down": down})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/_sim/health", health)
    app.router.add_get("/_sim/ledger", ledger)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_post("/_sim/providers/{provider}/outage", outage)
    app.router.add_route("*", "/{provider}/v1/{tail:.*}", provider_route)
    return app


async def _carry_out(request: web.Request, plan: Plan, closing: asyncio.Event) -> web.StreamResponse:
    if isinstance(plan, Drop):
        if plan.hang:
            # Hold the request like a stuck upstream; the client's read timeout fires first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), plan.after_s)
        elif plan.after_s > 0:
            await asyncio.sleep(plan.after_s)
        return _drop(request, reset=not plan.hang)
    if plan.delay_s > 0:
        await asyncio.sleep(plan.delay_s)
    if plan.truncate:
        return await _truncated(request, plan)
    return web.Response(
        status=plan.status, body=plan.body, headers=plan.headers, content_type=plan.content_type
    )


async def _truncated(request: web.Request, plan: Reply) -> web.StreamResponse:
    """Announce the full Content-Length, send half the body, then cut the connection."""
    response = web.StreamResponse(status=plan.status, headers=plan.headers)
    response.content_type = plan.content_type
    response.content_length = len(plan.body)
    await response.prepare(request)
    await response.write(plan.body[: len(plan.body) // 2])
    return _drop(request, reset=False, response=response)


def _drop(
    request: web.Request, *, reset: bool, response: web.StreamResponse | None = None
) -> web.StreamResponse:
    """Close the connection without (finishing) a response; with `reset`, as a TCP RST."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if reset and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
    # aiohttp needs a response object back; nothing more reaches the closed socket.
    return response if response is not None else web.Response(status=499)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")
