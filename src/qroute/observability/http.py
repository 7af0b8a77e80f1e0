"""The operations endpoint: /metrics, /healthz and /readyz on one small aiohttp server.

- `/metrics`: the Prometheus exposition of the worker's registry (OpenMetrics
  when the scraper asks for it in `Accept`, text format 0.0.4 otherwise).
- `/healthz` (liveness): answered by the worker's own event loop, so a wedged
  loop fails the probe by timing out; `live()` can fail it on purpose too.
  Kubernetes restarts the pod when it fails.
- `/readyz` (readiness): 200 only while `ready()` holds (for the worker:
  partitions assigned and producer started). Failing it takes the pod out of
  service without restarting it.

A check that raises counts as failing: probes must answer, not crash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = structlog.get_logger(__name__)

Check = Callable[[], bool]
"""A probe condition, called on every request; it must be quick and never block."""

Detail = Callable[[], Mapping[str, Any]]
"""Extra JSON fields for /readyz (e.g. assigned partitions), so a 503 explains itself."""


class OpsServer:
    """Serve /metrics, /healthz and /readyz for one worker on `host:port` (0 picks a free port)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready: Check,
        live: Check | None = None,
        detail: Detail | None = None,
        shutdown_timeout_s: float = 2.0,
    ) -> None:
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._ready = ready
        self._live = live
        self._detail = detail
        self._shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for). Only valid once started."""
        if self._port is None:
            raise RuntimeError("OpsServer is not started")
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("OpsServer is already started")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        # No access log: probes and scrapes every few seconds would drown the job logs.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout_s
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("ops server listening", host=self._host, port=self._port)

    async def stop(self) -> None:
        """Close the listener and open connections. Safe to call when not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- handlers ---------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        # Encoding a large registry takes milliseconds (about 16 ms for 2,000
        # series); in a thread the GIL's switch interval bounds the loop's stall.
        body = await asyncio.to_thread(encoder, self._registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, _request: web.Request) -> web.Response:
        if self._live is None:
            return _json(200, {"status": "ok"})
        ok, reason = _run_check(self._live, "liveness")
        if ok:
            return _json(200, {"status": "ok"})
        return _json(503, {"status": "unhealthy", "reason": reason})

    async def _readyz(self, _request: web.Request) -> web.Response:
        ok, reason = _run_check(self._ready, "readiness")
        body: dict[str, Any] = {"status": "ready"} if ok else {"status": "not ready", "reason": reason}
        if self._detail is not None:
            try:
                body.update(self._detail())
            except Exception as exc:
                log.warning("readiness detail failed", error=type(exc).__name__)
        return _json(200 if ok else 503, body)


def _run_check(check: Check, what: str) -> tuple[bool, str]:
    """Call a probe condition; an exception is a failed check with its type as the reason."""
    try:
        ok = bool(check())
    except Exception as exc:
        log.warning(f"{what} check raised", error=type(exc).__name__)
        return False, f"{what} check raised {type(exc).__name__}"
    return ok, "" if ok else f"{what} check is false"


def _json(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, default=str),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
