"""The ops endpoint over real HTTP on loopback: /metrics, /healthz, /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from qroute.observability.http import OpsServer
from qroute.observability.metrics import METRIC_NAMES, Metrics


class Flag:
    """A switchable probe condition."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def ready() -> Flag:
    return Flag(False)


@pytest.fixture
def live() -> Flag:
    return Flag(True)


@pytest.fixture
async def server(metrics: Metrics, ready: Flag, live: Flag) -> AsyncIterator[OpsServer]:
    async with OpsServer(
        metrics.registry, host="127.0.0.1", port=0, ready=ready, live=live, detail=lambda: {"assigned": 2}
    ) as ops:
        yield ops


@pytest.fixture
async def client(server: OpsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=5.0) as http:
        yield http


class TestMetricsEndpoint:
    """GET /metrics serves the worker's registry in Prometheus formats."""

    async def test_text_format_with_live_values(self, client: httpx.AsyncClient, metrics: Metrics) -> None:
        """The scrape is text format 0.0.4 with every contract family and current values."""
        metrics.job_finished("succeeded", 1.0)
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        types = {line.split()[2] for line in response.text.splitlines() if line.startswith("# TYPE ")}
        assert types >= METRIC_NAMES
        assert 'qroute_jobs_total{status="succeeded"} 1.0' in response.text

    async def test_openmetrics_on_request(self, client: httpx.AsyncClient) -> None:
        """A scraper asking for OpenMetrics gets it (terminated by # EOF)."""
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        assert response.text.rstrip().endswith("# EOF")

    async def test_unknown_path_is_404(self, client: httpx.AsyncClient) -> None:
        """Only the three endpoints exist."""
        assert (await client.get("/admin")).status_code == 404


class TestHealth:
    """GET /healthz reports liveness."""

    async def test_ok_while_live(self, client: httpx.AsyncClient) -> None:
        """A live process answers 200 with a JSON status."""
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_503_when_live_is_false(self, client: httpx.AsyncClient, live: Flag) -> None:
        """live() turning false fails the probe with a reason."""
        live.value = False
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"

    async def test_ok_without_live_check(self, metrics: Metrics) -> None:
        """With no live() given, answering at all means alive."""
        async with (
            OpsServer(metrics.registry, port=0, ready=lambda: False) as ops,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            response = await http.get(f"{ops.url}/healthz")
        assert response.status_code == 200


class TestReady:
    """GET /readyz follows ready() and explains a 503."""

    async def test_flips_with_ready(self, client: httpx.AsyncClient, ready: Flag) -> None:
        """503 with a reason and detail while not ready; 200 once ready() holds."""
        before = await client.get("/readyz")
        ready.value = True
        after = await client.get("/readyz")
        assert before.status_code == 503
        assert before.json() == {"status": "not ready", "reason": "readiness check is false", "assigned": 2}
        assert (after.status_code, after.json()) == (200, {"status": "ready", "assigned": 2})

    async def test_raising_check_is_not_ready(self, metrics: Metrics) -> None:
        """A check that raises yields 503 naming the exception type, and the server keeps serving."""

        def broken() -> bool:
            raise LookupError("no consumer yet")

        async with (
            OpsServer(metrics.registry, port=0, ready=broken) as ops,
            httpx.AsyncClient(base_url=ops.url, trust_env=False) as http,
        ):
            first = await http.get("/readyz")
            second = await http.get("/healthz")
        assert first.status_code == 503
        assert first.json()["reason"] == "readiness check raised LookupError"
        assert second.status_code == 200


class TestLifecycle:
    """Start, port selection and stop."""

    async def test_port_zero_picks_distinct_free_ports(self, metrics: Metrics) -> None:
        """Two servers asked for port 0 bind different real ports."""
        async with (
            OpsServer(metrics.registry, port=0, ready=lambda: True) as a,
            OpsServer(metrics.registry, port=0, ready=lambda: True) as b,
        ):
            assert a.port > 0
            assert b.port > 0
            assert a.port != b.port

    async def test_stop_closes_the_port(self, metrics: Metrics) -> None:
        """After stop() the port refuses connections and stop() again is harmless."""
        ops = OpsServer(metrics.registry, port=0, ready=lambda: True)
        await ops.start()
        url = ops.url
        await ops.stop()
        await ops.stop()
        async with httpx.AsyncClient(trust_env=False) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"{url}/healthz")
        with pytest.raises(RuntimeError, match="not started"):
            _ = ops.port

    async def test_double_start_is_refused(self, metrics: Metrics) -> None:
        """Starting a running server is a bug, reported as RuntimeError."""
        async with OpsServer(metrics.registry, port=0, ready=lambda: True) as ops:
            with pytest.raises(RuntimeError, match="already started"):
                await ops.start()

    async def test_busy_port_raises_and_leaves_no_runner(self, metrics: Metrics) -> None:
        """Binding a port in use fails at start() and the server can still be stopped cleanly."""
        async with OpsServer(metrics.registry, port=0, ready=lambda: True) as first:
            second = OpsServer(metrics.registry, port=first.port, ready=lambda: True)
            with pytest.raises(OSError):
                await second.start()
            await second.stop()
            with pytest.raises(RuntimeError, match="not started"):
                _ = second.port
