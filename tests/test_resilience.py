"""Process-level faults: a worker SIGKILLed mid-job, graceful shutdown, and Redis killed mid-run (on a Redis
this test starts itself, never the machine's shared one)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from crmcore import keys
from crmcore.events import AcceptedEvent, Source
from gateway.app import create_app
from gateway.embedded_redis import EmbeddedRedis
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import envelope, new_id
from workers.registry import HandlerContext, Registry
from workers.worker import run_worker

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def spawn_worker(redis_url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "CRMAGENTO_REDIS_URL": redis_url,
        "CRMAGENTO_JOB_TIMEOUT_SECONDS": "2",
        "CRMAGENTO_WORKER_POLL_DELAY_SECONDS": "0.05",
        "CRMAGENTO_WORKER_HEARTBEAT_SECONDS": "0.5",
        "CRMAGENTO_JOB_RETRY_BASE_SECONDS": "0.1",
        **env,
    }
    cmd = [sys.executable, "-m", "crmagento.cli", "worker", "--handlers-module", "tests.support.crash_handlers"]
    return subprocess.Popen(cmd, env=environ, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def _status(redis: Redis, msg_id: str) -> bytes | None:
    return await redis.hget(keys.event(f"cloudretailer:{msg_id}"), "status")


async def test_worker_killed_mid_job_runs_again_and_its_effect_happens_once(gateway, redis, redis_url, tmp_path):
    first = spawn_worker(redis_url, tmp_path / "w1.log")
    second = None
    try:
        msg_id = new_id()
        body = envelope("product.updated", {"product_id": "P-7", "sku": "SKU-7"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        await wait_for(lambda: _llen(redis, "test:runs", 1), within=30)
        first.send_signal(signal.SIGKILL)  # after the effect, before "done"
        first.wait()
        assert await _status(redis, msg_id) == b"processing"

        second = spawn_worker(redis_url, tmp_path / "w2.log")
        # arq re-runs a dead worker's job once its in-progress lease (2 x 2 s + 10 s here) runs out.
        await wait_for(lambda: _is(redis, msg_id, b"done"), within=40)
        assert await redis.lrange("test:runs", 0, -1) == [b"1", b"2"]
        assert await redis.get("test:effects") == b"1"
        assert await redis.hget(keys.event(f"cloudretailer:{msg_id}"), "attempts") == b"2"
        assert not await redis.exists(keys.entity("cloudretailer:product:P-7"))
    finally:
        _stop(first)
        if second is not None:
            _stop(second)


async def _llen(redis: Redis, key: str, n: int) -> bool:
    return await redis.llen(key) >= n


async def _is(redis: Redis, msg_id: str, status: bytes) -> bool:
    return await _status(redis, msg_id) == status


async def test_sigterm_lets_the_running_job_finish(gateway, redis, redis_url, tmp_path):
    await redis.set("test:slow_seconds", "1.5")
    worker = spawn_worker(redis_url, tmp_path / "w.log", CRMAGENTO_WORKER_SHUTDOWN_GRACE_SECONDS="10")
    try:
        msg_id = new_id()
        body = envelope("customer.updated", {"customer_id": "C-1"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        await wait_for(lambda: _llen(redis, "test:runs", 1), within=30)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 15) == 0
        assert await redis.lrange("test:finished", 0, -1) == [msg_id.encode()]
        assert await _status(redis, msg_id) == b"done"
        assert await redis.zcard(keys.WORKERS) == 0  # it said goodbye
    finally:
        _stop(worker)


async def test_sigterm_past_the_grace_period_requeues_the_job(gateway, redis, redis_url, tmp_path):
    await redis.set("test:slow_seconds", "60")
    worker = spawn_worker(redis_url, tmp_path / "w1.log", CRMAGENTO_WORKER_SHUTDOWN_GRACE_SECONDS="0")
    second = None
    try:
        msg_id = new_id()
        body = envelope("customer.updated", {"customer_id": "C-2"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        await wait_for(lambda: _llen(redis, "test:runs", 1), within=30)
        await redis.set("test:slow_seconds", "0.1")
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 15) == 0
        second = spawn_worker(redis_url, tmp_path / "w2.log")
        await wait_for(lambda: _is(redis, msg_id, b"done"), within=20)  # seconds, not the crash lease
        assert await redis.lrange("test:runs", 0, -1) == [b"1", b"2"]
        assert await redis.lrange("test:finished", 0, -1) == [msg_id.encode()]
    finally:
        _stop(worker)
        if second is not None:
            _stop(second)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_redis_killed_mid_run_then_everything_recovers_without_restart(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", port=_free_port(), fsync="always")
    url = server.start()
    settings = make_settings(url, ingest_timeout_seconds=1)
    seen: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        seen.extend(e.id for e in events)

    registry = Registry()
    registry.register(Source.CLOUDRETAILER, "inventory.updated", handler)

    async def send(msg_id: str, i: int) -> int:
        body = envelope("inventory.updated", {"sku": f"SKU-{i % 4}", "store_id": "S1"})
        return (await post_event(client, "cloudretailer", body, msg_id=msg_id)).status

    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop, registry))
    try:
        handled_before = [new_id() for _ in range(10)]
        assert [await send(m, i) for i, m in enumerate(handled_before)] == [202] * 10
        await wait_for(lambda: len(seen) == 10)
        stop.set()
        await worker  # no worker: the next events stay queued in Redis

        queued = [new_id() for _ in range(10)]
        assert [await send(m, i) for i, m in enumerate(queued)] == [202] * 10
        server.kill()  # SIGKILL: only what reached the append-only file survives

        refused = [new_id() for _ in range(5)]
        for i, msg_id in enumerate(refused):
            body = envelope("inventory.updated", {"sku": f"SKU-{i}", "store_id": "S1"})
            resp = await post_event(client, "cloudretailer", body, msg_id=msg_id)
            assert resp.status == 503 and resp.headers["Retry-After"], await resp.text()
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200

        server.start()  # same port and data dir: the append-only file is replayed
        # The senders retry the refused deliveries; the same gateway process takes them.
        await wait_for(lambda: _accepts(send, refused[0], 0), within=15)
        assert [await send(m, i) for i, m in enumerate(refused[1:], 1)] == [202] * 4

        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, stop, registry))
        everything = handled_before + queued + refused
        await wait_for(lambda: len(seen) >= len(everything), within=20)
        # Every entity released with nothing pending: no job is left that could handle an event a second time.
        await wait_for(lambda: _no_entity_left(url), within=20)
        assert sorted(seen) == sorted(everything)  # each acknowledged event handled exactly once

        # Now Redis dies under a running worker: it reconnects by itself.
        server.kill()
        await asyncio.sleep(1.5)
        server.start()
        late = [new_id() for _ in range(3)]
        await wait_for(lambda: _accepts(send, late[0], 1), within=15)
        assert [await send(m, i) for i, m in enumerate(late[1:])] == [202] * 2
        await wait_for(lambda: len(seen) >= len(everything) + 3, within=45)
        assert sorted(seen) == sorted(everything + late)
        assert not worker.done()
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)
        await client.close()
        server.stop()


async def _accepts(send, msg_id: str, i: int) -> bool:
    return await send(msg_id, i) == 202


async def _no_entity_left(url: str) -> bool:
    redis = Redis.from_url(url)
    try:
        return not [k async for k in redis.scan_iter(match=keys.entity_pattern(), _type="hash")]
    finally:
        await redis.aclose()
