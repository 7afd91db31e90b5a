"""Dead workers are taken over in seconds, and a worker that was only frozen cannot write over the newer state
when it wakes up. Real worker processes (`crmagento worker`), real Redis, signals for death and freezing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from crmcore import keys
from crmcore.entityqueue import EntityQueue
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import envelope, new_id
from tests.support.stack import full_stack
from workers.availability.takeover import Takeover
from workers.clients.magento import MagentoClient
from workers.errors import StaleJob
from workers.fence import CURRENT_FENCE, Fence

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TAKEOVER_S = 3


def spawn(redis_url: str, log: Path, handlers: str) -> subprocess.Popen[bytes]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "CRMAGENTO_REDIS_URL": redis_url,
        # arq's own lease on a dead worker's job is 30 + 30 + 10 = 70 s here: only a takeover explains a rerun
        # within seconds.
        "CRMAGENTO_JOB_TIMEOUT_SECONDS": "30",
        "CRMAGENTO_WORKER_POLL_DELAY_SECONDS": "0.05",
        "CRMAGENTO_WORKER_HEARTBEAT_SECONDS": "0.5",
        "CRMAGENTO_WORKER_TAKEOVER_SECONDS": str(TAKEOVER_S),
        "CRMAGENTO_JOB_RETRY_BASE_SECONDS": "0.1",
    }
    cmd = [sys.executable, "-m", "crmagento.cli", "worker", "--handlers-module", handlers]
    return subprocess.Popen(cmd, env=environ, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()


async def _workers(redis: Redis, n: int) -> bool:
    return await redis.zcard(keys.WORKERS) >= n


async def _status(redis: Redis, msg_id: str) -> bytes | None:
    return await redis.hget(keys.event(f"cloudretailer:{msg_id}"), "status")


async def test_a_killed_workers_entity_runs_again_within_seconds(gateway, redis, redis_url, tmp_path) -> None:
    first = spawn(redis_url, tmp_path / "w1.log", "tests.support.crash_handlers")
    second = None
    try:
        await wait_for(lambda: _workers(redis, 1), within=20)
        msg_id = new_id()
        body = envelope("product.updated", {"product_id": "P-7", "sku": "SKU-7"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        await wait_for(lambda: _llen(redis, "test:runs", 1), within=20)  # hangs after its effect
        assert await redis.hlen(keys.worker_jobs((await redis.zrange(keys.WORKERS, 0, 0))[0].decode())) == 1
        second = spawn(redis_url, tmp_path / "w2.log", "tests.support.crash_handlers")
        await wait_for(lambda: _workers(redis, 2), within=20)
        await asyncio.sleep(TAKEOVER_S)  # the live worker must have been connected for the takeover time

        first.send_signal(signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        await wait_for(lambda: _is(redis, msg_id, b"done"), within=30)
        took = time.monotonic() - killed
        print(f"takeover: the killed worker's entity was done {took:.1f} s after the kill")
        # Heartbeat silence (3 s) + a takeover check every 2 s + the job: far below arq's 70 s lease.
        assert took < TAKEOVER_S + 8, took
        assert await redis.get("test:effects") == b"1"  # the effect happened once
        assert await redis.lrange("test:runs", 0, -1) == [b"1", b"2"]
        assert not await redis.exists(keys.entity("cloudretailer:product:P-7"))
        assert "worker_taken_over" in (tmp_path / "w2.log").read_text()
    finally:
        _stop(first, second)


async def test_a_frozen_worker_that_wakes_up_cannot_write_its_older_state(gateway, redis, redis_url, tmp_path) -> None:
    await redis.set("test:source", "old")
    await redis.set("test:pause", "4")
    first = spawn(redis_url, tmp_path / "w1.log", "tests.support.takeover_handlers")
    second = None
    try:
        await wait_for(lambda: _workers(redis, 1), within=20)
        msg_id = new_id()
        body = envelope("product.updated", {"product_id": "P-1", "sku": "SKU-1"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        await wait_for(lambda: _llen(redis, "test:started", 1), within=20)  # it read "old" and is held
        first.send_signal(signal.SIGSTOP)  # frozen holding "old"
        await redis.set("test:source", "new")
        second = spawn(redis_url, tmp_path / "w2.log", "tests.support.takeover_handlers")
        await wait_for(lambda: _is(redis, msg_id, b"done"), within=30)  # taken over, "new" written
        assert await redis.lrange("test:writes", 0, -1) == [b"new"]

        first.send_signal(signal.SIGCONT)  # wakes in the middle of its handler, holding "old"
        await wait_for(lambda: "job_stale" in (tmp_path / "w1.log").read_text(), within=15)
        assert await redis.lrange("test:writes", 0, -1) == [b"new"]  # its older state never landed
        assert await _status(redis, msg_id) == b"done"
    finally:
        _stop(first, second)


async def test_the_http_client_refuses_a_write_for_a_job_that_lost_its_entity(redis_url: str) -> None:
    async with full_stack(redis_url, products=1, magento_products=1) as stack:
        client = MagentoClient(stack.settings)
        await stack.redis.hset(keys.entity("cloudretailer:product:P-1"), mapping={"job": "the-new-job"})
        token = CURRENT_FENCE.set(Fence(stack.redis, "cloudretailer:product:P-1", "the-old-job"))
        try:
            with pytest.raises(StaleJob):
                await client.save_product({"sku": "CR-000001", "price": 1})
            await client.store_configs()  # reads are not fenced
            CURRENT_FENCE.set(Fence(stack.redis, "cloudretailer:product:P-1", "the-new-job"))
            await client.save_product({"sku": "CR-000001", "price": 2})  # the owner writes
        finally:
            CURRENT_FENCE.reset(token)
            await client.close()


async def _llen(redis: Redis, key: str, n: int) -> bool:
    return await redis.llen(key) >= n


async def _is(redis: Redis, msg_id: str, status: bytes) -> bool:
    return await _status(redis, msg_id) == status


def test_settings_default_takeover_is_fifteen_seconds() -> None:
    assert make_settings("redis://127.0.0.1:6379/0").worker_takeover_seconds == 15


async def test_a_job_leased_by_a_worker_that_died_before_claiming_it_runs_again(gateway, redis, redis_url) -> None:
    """arq marked the job in progress, then its worker died before the claim recorded it anywhere: no takeover
    knows it. Seen unclaimed twice, the takeover time apart, it gets a new job; arq's own lease (70 s) never
    has to run out."""
    settings = make_settings(redis_url, worker_takeover_seconds=2, job_timeout_seconds=30)
    await post_event(gateway, "cloudretailer", envelope("product.updated", {"product_id": "P-orphan", "sku": "S-O"}))
    entity = "cloudretailer:product:P-orphan"
    leased = (await redis.hget(keys.entity(entity), "job")).decode()
    await redis.psetex(f"{in_progress_key_prefix}{leased}", 70_000, b"1")  # what arq writes when it takes the job
    await redis.zadd(keys.WORKERS, {"dead-worker": time.time() - 5})  # its heartbeat stopped a moment ago

    queue = EntityQueue(redis, settings.queue_name)
    takeover = Takeover(redis, settings, queue, "live-worker")
    takeover.connected_since -= 60
    assert await takeover.run() == 0  # first sighting: a live worker may be about to claim it
    await asyncio.sleep(2.1)
    assert await takeover.run() == 1
    fresh = (await redis.hget(keys.entity(entity), "job")).decode()
    assert fresh != leased and await redis.zscore(settings.queue_name, fresh) is not None
    assert await redis.zscore(settings.queue_name, leased) is None
    assert not await redis.exists(f"{in_progress_key_prefix}{leased}")
    assert await redis.lrange(keys.pending(entity), 0, -1)  # the event is still waiting for the new job
    # A claimed job is never touched: the leased-and-running case is the takeover's.
    assert await queue.leased_unclaimed() == {}


async def test_a_dead_workers_job_rerun_by_arq_is_not_taken_over_as_well(gateway, redis, redis_url) -> None:
    """arq re-ran the dead worker's job on a live worker once its lease ran out; a takeover of the dead worker
    afterwards must not mint a second job for the entity while the live one runs it."""
    settings = make_settings(redis_url)
    await post_event(gateway, "cloudretailer", envelope("product.updated", {"product_id": "P-rerun", "sku": "S-R"}))
    entity = "cloudretailer:product:P-rerun"
    job = (await redis.hget(keys.entity(entity), "job")).decode()
    queue = EntityQueue(redis, settings.queue_name)
    assert await queue.claim(entity, job, "dead-worker") is not None
    assert await queue.claim(entity, job, "live-worker") is not None  # the same job, again, after the lease
    assert not await redis.hexists(keys.worker_jobs("dead-worker"), entity)
    assert await queue.takeover("dead-worker", now_ms=int(time.time() * 1000)) == []
    assert (await redis.hget(keys.entity(entity), "job")).decode() == job
