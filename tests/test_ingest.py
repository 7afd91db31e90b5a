"""The ingest flusher's own connection: script cache loss, a Redis that stops answering, and recovery."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.scriptconn import ScriptConnection
from tests.conftest import make_settings, post_event
from tests.support.signing import envelope

PRODUCT = {"product_id": "P-1", "sku": "SKU-1"}


async def test_webhook_still_accepted_after_redis_lost_its_script_cache(gateway: TestClient, redis: Redis) -> None:
    first = await post_event(gateway, "cloudretailer", envelope("product.updated", PRODUCT))
    assert first.status == 202
    # What a Redis restart does to loaded scripts; the flusher must load it again, not fail the batch.
    await redis.script_flush()
    second = await post_event(gateway, "cloudretailer", envelope("product.updated", PRODUCT))
    assert second.status == 202, await second.text()
    assert (await second.json())["status"] == "queued"


@contextlib.asynccontextmanager
async def silent_server():
    """A TCP server that accepts connections and never answers: a hung Redis."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(-1)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in writers:
            w.close()
        server.close()


async def test_hung_redis_gives_503_within_the_deadline_and_nothing_is_acknowledged() -> None:
    async with silent_server() as port:
        # The gateway's own client (health checks, admin) is never used by the webhook path here.
        settings = make_settings(f"redis://127.0.0.1:{port}/0", ingest_timeout_seconds=0.3)
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            resp = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT))
            took = loop.time() - started
            assert resp.status == 503
            assert resp.headers["Retry-After"]
            assert "did not answer in time" in (await resp.json(content_type=None))["detail"]
            assert took < 2 * 0.3 + 1.0
        finally:
            await client.close()


async def test_script_connection_is_dropped_after_a_timeout_and_reconnects(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    conn = ScriptConnection(redis, "return ARGV[1]")
    try:
        assert await conn.call("one") == b"one"
        first = conn._conn
        # A call cancelled mid-flight leaves a reply on the wire; reusing that connection would hand the
        # next caller the wrong reply.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await conn.call("late")
        assert conn._conn is None
        assert await conn.call("two") == b"two"
        assert conn._conn is not first
    finally:
        await conn.close()
        await redis.aclose()
