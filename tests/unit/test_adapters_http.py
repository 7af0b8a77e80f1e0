"""send() and the shared client: one call in, one classified outcome out, never an exception."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from qroute.providers.http import HttpClient, make_http_client, send, timeout_for
from qroute.providers.registry import adapter_for
from tests.unit.test_adapters_common import NOW, make_job, make_route

GOOD_BODY = {
    "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}
GOOD_HTTP = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    b"x-ratelimit-remaining-requests: 7\r\n\r\n%s"
)


def mock_client(handler: Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


class TestSend:
    """send() builds, sends, parses, and turns transport trouble into outcomes."""

    async def test_success_with_latency(self) -> None:
        """A good answer is success, with the request the adapter built and a measured latency."""
        seen: list[httpx.Request] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=GOOD_BODY)

        async with mock_client(handler) as client:
            outcome, latency = await send(
                client, adapter_for("openai"), make_job(), make_route(), "sk", now=lambda: NOW
            )
        assert (outcome.outcome, outcome.text, outcome.billed) == ("success", "Hi", True)
        assert latency >= 0.0
        assert seen[0].headers["authorization"] == "Bearer sk"

    async def test_provider_timeouts_are_applied(self) -> None:
        """Each request carries its provider's connect/read timeouts."""
        seen: list[httpx.Request] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=GOOD_BODY)

        route = make_route(connect_timeout_s=2.5, read_timeout_s=42.0)
        async with mock_client(handler) as client:
            await send(client, adapter_for("openai"), make_job(), route, "sk")
        assert seen[0].extensions["timeout"] == {"connect": 2.5, "read": 42.0, "write": 2.5, "pool": 2.5}
        assert timeout_for(route.provider).read == 42.0

    @pytest.mark.parametrize(
        ("exc", "outcome"),
        [
            (httpx.ReadTimeout("slow"), "timeout"),
            (httpx.ConnectError("refused"), "connection_error"),
            (httpx.RemoteProtocolError("peer closed"), "connection_error"),
            (httpx.ReadError("reset"), "connection_error"),
        ],
    )
    async def test_transport_errors_become_outcomes(self, exc: Exception, outcome: str) -> None:
        """Transport exceptions never escape; they come back classified."""

        async def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        async with mock_client(handler) as client:
            result, _ = await send(client, adapter_for("anthropic"), make_job(), make_route("anthropic"), "k")
        assert (result.outcome, result.action) == (outcome, "retry")

    async def test_total_timeout_bounds_the_call(self) -> None:
        """A call that outlives total_timeout_s is a timeout outcome, not a hang."""

        async def handler(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(30)
            return httpx.Response(200, json=GOOD_BODY)

        async with mock_client(handler) as client:
            result, _ = await send(
                client, adapter_for("openai"), make_job(), make_route(total_timeout_s=0.05), "k"
            )
        assert (result.outcome, result.action) == ("timeout", "retry")

    async def test_bad_base_url_fails_over(self) -> None:
        """A base URL with an unsupported scheme fails over instead of retrying forever."""
        async with httpx.AsyncClient() as client:
            result, _ = await send(
                client,
                adapter_for("openai"),
                make_job(),
                make_route(base_url="ftp://example.invalid/v1"),
                "k",
            )
        assert (result.outcome, result.action) == ("connection_error", "failover")

    async def test_cancellation_propagates(self) -> None:
        """Cancelling the caller cancels the call (shutdown must not be swallowed)."""
        started = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            started.set()
            await asyncio.sleep(30)
            return httpx.Response(200, json=GOOD_BODY)

        async with mock_client(handler) as client:
            task = asyncio.create_task(send(client, adapter_for("openai"), make_job(), make_route(), "k"))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


class TestMakeHttpClient:
    """The factory builds either transport, and nothing else."""

    def test_unknown_transport_is_refused(self) -> None:
        """A typo in the transport name fails loudly."""
        with pytest.raises(ValueError, match="unknown transport"):
            make_http_client(transport="curl")

    async def test_no_redirects(self) -> None:
        """The client never follows redirects (a redirect means a misconfigured base URL)."""
        async with make_http_client(transport="httpx") as client:
            assert client.follow_redirects is False


async def _raw_server(reply: Callable[[bytes], bytes | None]) -> tuple[asyncio.Server, int]:
    """A loopback TCP server answering each request with raw bytes (None: close without a word)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        await reader.readexactly(length)
        answer = reply(head)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture(params=["aiohttp", "httpx"])
async def real_client(request: pytest.FixtureRequest) -> AsyncIterator[HttpClient]:
    async with make_http_client(max_connections=10, transport=request.param) as client:
        yield client


class TestRealTransports:
    """Both transports over real loopback sockets classify the same failures the same way."""

    async def _call(self, client: HttpClient, port: int) -> tuple[str, str]:
        route = make_route(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout_s=2.0, read_timeout_s=5.0)
        outcome, _ = await send(client, adapter_for("openai"), make_job(), route, "k", now=lambda: NOW)
        return outcome.outcome, outcome.action

    async def test_success(self, real_client: HttpClient) -> None:
        """A real HTTP answer parses to success with its rate-limit headers."""
        payload = json.dumps(GOOD_BODY).encode()
        server, port = await _raw_server(lambda _: GOOD_HTTP % (len(payload), payload))
        async with server:
            route = make_route(base_url=f"http://127.0.0.1:{port}/v1")
            outcome, _ = await send(
                real_client, adapter_for("openai"), make_job(), route, "k", now=lambda: NOW
            )
        assert (outcome.outcome, outcome.text) == ("success", "Hi")
        assert outcome.rate_limit is not None
        assert outcome.rate_limit.remaining_requests == 7

    async def test_connection_refused(self, real_client: HttpClient) -> None:
        """Nobody listening: connection_error, retry (aiohttp's ConnectTimeout mapping is corrected)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        assert await self._call(real_client, port) == ("connection_error", "retry")

    async def test_server_closes_without_answer(self, real_client: HttpClient) -> None:
        """The peer drops the connection after reading the request: connection_error, retry."""
        server, port = await _raw_server(lambda _: None)
        async with server:
            assert await self._call(real_client, port) == ("connection_error", "retry")

    async def test_truncated_body(self, real_client: HttpClient) -> None:
        """Fewer body bytes than Content-Length, then close: connection_error, retry."""
        server, port = await _raw_server(
            lambda _: b'HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{"choices": ['
        )
        async with server:
            assert await self._call(real_client, port) == ("connection_error", "retry")

    async def test_gzip_body_is_decoded_once(self, real_client: HttpClient) -> None:
        """A gzip-encoded answer reaches the parser decoded (aiohttp leaves it to httpx, which decodes once)."""
        payload = gzip.compress(json.dumps(GOOD_BODY).encode())
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        server, port = await _raw_server(
            lambda _: head + b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        async with server:
            route = make_route(base_url=f"http://127.0.0.1:{port}/v1")
            outcome, _ = await send(
                real_client, adapter_for("openai"), make_job(), route, "k", now=lambda: NOW
            )
        assert (outcome.outcome, outcome.text) == ("success", "Hi")

    async def test_non_http_base_url_fails_over(self, real_client: HttpClient) -> None:
        """A base URL with another scheme is a configuration error: fail over, never retry the route."""
        route = make_route(base_url="ftp://127.0.0.1:9/v1")
        outcome, _ = await send(real_client, adapter_for("openai"), make_job(), route, "k", now=lambda: NOW)
        assert (outcome.outcome, outcome.action) == ("connection_error", "failover")

    async def test_request_carries_adapter_headers_and_body(self, real_client: HttpClient) -> None:
        """What the adapter built is what goes on the wire: method, path, auth header, JSON body."""
        seen: list[bytes] = []
        payload = json.dumps(GOOD_BODY).encode()

        def reply(head: bytes) -> bytes:
            seen.append(head)
            return GOOD_HTTP % (len(payload), payload)

        server, port = await _raw_server(reply)
        async with server:
            route = make_route(base_url=f"http://127.0.0.1:{port}/v1")
            outcome, _ = await send(
                real_client, adapter_for("openai"), make_job(), route, "k-123", now=lambda: NOW
            )
        assert outcome.outcome == "success"
        head = seen[0].lower()
        assert head.startswith(b"post /v1/chat/completions http/1.1")
        assert b"authorization: bearer k-123" in head
        assert b"content-type: application/json" in head
