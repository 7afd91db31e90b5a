"""The gateway's edge against slow, silent and hostile clients: real sockets against a real gateway on loopback.

Timings are checked with generous upper bounds (the machine is shared) and only lower bounds that a timer
cannot beat (a deadline never fires early)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.app import create_app
from tests.conftest import make_settings
from tests.support.gateway_server import GatewayServer
from tests.support.signing import CR_SECRET, new_id, sign_headers

# Far above any of the short timeouts used here: a close that takes this long did not come from a deadline.
BOUND = 10.0

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def gateway(redis_url: str, **overrides: Any) -> AsyncIterator[tuple[str, int]]:
    values: dict[str, Any] = {
        "client_header_timeout_seconds": 0.5,
        "client_body_timeout_seconds": 0.5,
        "client_idle_seconds": 0.5,
    }
    values.update(overrides)
    server = GatewayServer(create_app(make_settings(redis_url, **values)), host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        yield "127.0.0.1", server.port
    finally:
        await server.close()


async def connect(addr: tuple[str, int]) -> Conn:
    return await asyncio.open_connection(*addr)


async def closed_after(reader: asyncio.StreamReader) -> float:
    """Seconds until the gateway closed the connection (whatever it sent before is read and dropped)."""
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass
    return time.monotonic() - started


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    async with asyncio.timeout(BOUND):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def get(path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode()


def webhook_head(headers: dict[str, str], length: int) -> bytes:
    lines = [f"{name}: {value}" for name, value in headers.items()]
    text = "\r\n".join(["POST /webhooks/cloudretailer HTTP/1.1", "Host: gateway", f"Content-Length: {length}", *lines])
    return (text + "\r\n\r\n").encode()


async def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(redis_url: str) -> None:
    async with gateway(redis_url, client_idle_seconds=0.5, client_header_timeout_seconds=5) as addr:
        reader, writer = await connect(addr)
        writer.write(get())
        status, _, _ = await response(reader)
        assert status == 200
        waited = await closed_after(reader)
        assert 0.4 <= waited < BOUND
        writer.close()


async def test_silent_connection_is_closed_after_the_header_timeout(redis_url: str) -> None:
    async with gateway(redis_url, client_header_timeout_seconds=0.5, client_idle_seconds=30) as addr:
        reader, writer = await connect(addr)
        waited = await closed_after(reader)
        assert 0.4 <= waited < BOUND
        writer.close()


async def test_half_a_header_line_then_silence_is_closed_after_the_header_timeout(redis_url: str) -> None:
    async with gateway(redis_url, client_header_timeout_seconds=0.5, client_idle_seconds=30) as addr:
        reader, writer = await connect(addr)
        writer.write(b"POST /webhooks/cloudretailer HTTP/1.1\r\nHost: gateway\r\nwebhook-id: msg_")
        await writer.drain()
        assert await closed_after(reader) < BOUND
        writer.close()


async def test_the_header_timeout_counts_from_the_first_byte_of_a_kept_alive_request(redis_url: str) -> None:
    async with gateway(redis_url, client_header_timeout_seconds=0.5, client_idle_seconds=30) as addr:
        reader, writer = await connect(addr)
        writer.write(get())
        assert (await response(reader))[0] == 200
        await asyncio.sleep(1.0)  # idle longer than the header timeout: still open
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # and now stalls mid-header
        await writer.drain()
        assert await closed_after(reader) < BOUND
        writer.close()


async def test_stalled_body_answers_408_and_the_connection_closes(redis_url: str) -> None:
    async with gateway(redis_url, client_body_timeout_seconds=0.5, client_idle_seconds=30) as addr:
        reader, writer = await connect(addr)
        body = b'{"type":"product.updated"}' + b" " * 1000
        writer.write(webhook_head(sign_headers(CR_SECRET, new_id(), body), len(body)) + body[:10])
        await writer.drain()
        status, headers, answer = await response(reader)
        assert status == 408
        assert headers["content-type"] == "application/problem+json"
        assert orjson.loads(answer)["type"] == "urn:crmagento:problem:request-timeout"
        assert await closed_after(reader) < BOUND
        writer.close()


async def test_webhook_without_signature_headers_is_refused_before_its_body(redis_url: str) -> None:
    # A long body timeout: an answer before it can only come from the headers.
    async with gateway(redis_url, client_body_timeout_seconds=60) as addr:
        reader, writer = await connect(addr)
        writer.write(webhook_head({"Content-Type": "application/json"}, 1_048_576) + b'{"type":"p')
        await writer.drain()
        started = time.monotonic()
        status, headers, answer = await response(reader)
        assert time.monotonic() - started < BOUND
        assert status == 401
        assert headers["content-type"] == "application/problem+json"
        assert orjson.loads(answer)["type"] == "urn:crmagento:problem:invalid-signature"
        writer.close()


async def test_connection_over_the_cap_is_refused_fast_and_the_others_stay_served(redis_url: str) -> None:
    async with gateway(redis_url, max_connections=3, client_idle_seconds=30, client_header_timeout_seconds=30) as addr:
        conns = [await connect(addr) for _ in range(3)]
        for reader, writer in conns:
            writer.write(get())
            assert (await response(reader))[0] == 200

        reader, writer = await connect(addr)
        writer.write(get())
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError, asyncio.IncompleteReadError):
            status, headers, answer = await response(reader)
            assert status == 503
            assert headers["retry-after"]
            assert orjson.loads(answer)["type"] == "urn:crmagento:problem:too-many-connections"
        assert await closed_after(reader) < BOUND
        assert time.monotonic() - started < BOUND
        writer.close()

        for reader, writer in conns:
            writer.write(get())
            assert (await response(reader))[0] == 200
            writer.close()


async def test_connection_closed_frees_its_place_under_the_cap(redis_url: str) -> None:
    async with gateway(redis_url, max_connections=1, client_idle_seconds=30) as addr:
        for _ in range(3):
            reader, writer = await connect(addr)
            writer.write(get())
            assert (await response(reader))[0] == 200
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.1)  # the gateway sees the close


@pytest.mark.parametrize("where", ["header", "request-line"])
async def test_oversized_header_gets_431_problem_without_its_content(redis_url: str, where: str) -> None:
    marker = "zq7" * 7000  # 21 KB
    if where == "header":
        request = f"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Probe: {marker}\r\n\r\n".encode()
    else:
        request = f"GET /healthz?{marker} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode()
    async with gateway(redis_url) as addr:
        reader, writer = await connect(addr)
        writer.write(request)
        status, headers, answer = await response(reader)
        assert status == 431
        assert headers["content-type"] == "application/problem+json"
        assert orjson.loads(answer)["type"] == "urn:crmagento:problem:request-header-fields-too-large"
        assert b"zq7" not in answer
        assert await closed_after(reader) < BOUND
        writer.close()


async def test_malformed_request_gets_400_problem(redis_url: str) -> None:
    async with gateway(redis_url) as addr:
        reader, writer = await connect(addr)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nBad Header Name\x01: <secret>\r\n\r\n")
        status, headers, answer = await response(reader)
        assert status == 400
        assert headers["content-type"] == "application/problem+json"
        assert orjson.loads(answer)["type"] == "urn:crmagento:problem:bad-request"
        assert b"secret" not in answer
        writer.close()


async def test_keep_alive_client_making_several_requests_is_unaffected(redis_url: str) -> None:
    async with gateway(redis_url, client_idle_seconds=2, client_header_timeout_seconds=2) as addr:
        reader, writer = await connect(addr)
        for _ in range(6):
            writer.write(get())
            assert (await response(reader))[0] == 200
            await asyncio.sleep(0.3)  # less than either timeout, more in total than both
        # and pipelined
        writer.write(get() * 3)
        assert [(await response(reader))[0] for _ in range(3)] == [200, 200, 200]
        writer.close()
