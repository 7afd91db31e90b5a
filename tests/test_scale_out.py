"""Scale-out as the runbook describes it: two gateways (`crmagento serve`) and three workers (`crmagento
worker`) as separate processes on one Redis. Webhooks sent round-robin to both gateways are each handled
exactly once, by all three workers between them; a periodic job runs once per interval however many
workers schedule it; and per-entity order holds while the changes of one entity arrive through both gateways.

The workers load tests/support/scale_handlers.py, whose handler records which worker (pid) ran what."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from crmcore import keys
from crmcore.redis_conn import create_redis
from tests.support.cluster import (
    Proc,
    cluster_env,
    post_webhook,
    queued_count,
    spawn_gateway,
    spawn_worker,
)
from tests.support.scale_handlers import TICK_SECONDS

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    gateways: list[Proc]
    workers: list[Proc]
    redis_url: str

    @property
    def procs(self) -> list[Proc]:
        return [*self.gateways, *self.workers]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.procs)

    def worker_pids(self) -> set[str]:
        return {str(w.process.pid) for w in self.workers}


def _wait_sync(predicate: Any, within: float, what: str, procs: list[Proc]) -> None:
    deadline = time.monotonic() + within
    while True:
        for proc in procs:
            if proc.process.poll() is not None:
                raise AssertionError(f"{proc.name} exited ({proc.process.returncode}):\n{proc.output()}")
        try:
            if predicate():
                return
        except (OSError, redis_sync.RedisError):
            pass  # not up yet
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.output()}" for p in procs)
            raise AssertionError(f"{what}: not within {within} s\n{logs}")
        time.sleep(0.1)


def _healthy(gateway: Proc) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{gateway.base}/readyz", timeout=2) as resp:  # noqa: S310 (loopback)
        return resp.status == 200


@pytest.fixture(scope="module")
def cluster(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logdir = tmp_path_factory.mktemp("scale-out")
    plain = redis_sync.Redis.from_url(redis_url)
    plain.flushdb()  # this run's own database (conftest claims it), never the shared Redis as a whole
    # Two jobs per worker at most: no single worker can take the whole queue (as with real, slower jobs), so
    # the jobs must spread, also when one worker's poll loop gets more CPU than the others'.
    env = cluster_env(CRMAGENTO_REDIS_URL=redis_url, CRMAGENTO_WORKER_MAX_JOBS="2")
    gateways = [spawn_gateway(f"gateway-{i}", env, logdir) for i in (1, 2)]
    workers = [spawn_worker(f"worker-{i}", env, logdir) for i in (1, 2, 3)]
    cluster = Cluster(gateways, workers, redis_url)
    try:
        _wait_sync(lambda: plain.zcard(keys.WORKERS) == 3, 30, "three workers beating", cluster.procs)
        _wait_sync(lambda: all(_healthy(g) for g in gateways), 20, "both gateways ready", cluster.procs)
        yield cluster
    finally:
        codes = {p.name: p.stop() for p in cluster.procs}
        plain.flushdb()
        plain.close()
    assert codes == dict.fromkeys(codes, 0), f"{codes}\n{cluster.logs()}"


@pytest.fixture
async def redis(cluster: Cluster) -> AsyncIterator[Redis]:
    """Overrides conftest's `redis`, which flushes the database: here the workers' heartbeats must stay."""
    client = create_redis(cluster.redis_url)
    yield client
    await client.aclose()


async def _wait(predicate: Any, within: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s\n{cluster.logs()}")
        await asyncio.sleep(0.1)


async def _seen_counts(redis: Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await redis.hgetall("test:seen")).items()}


async def test_webhooks_spread_over_both_gateways_and_jobs_over_all_three_workers(
    cluster: Cluster, redis: Redis
) -> None:
    await redis.delete("test:seen", "test:seen_by", "test:events_by_worker")
    n = 240
    async with aiohttp.ClientSession() as session:
        before = [await queued_count(session, g) for g in cluster.gateways]
        sent: list[tuple[Proc, str]] = []
        targets = itertools.cycle(cluster.gateways)
        for first in range(0, n, 24):
            batch = range(first, min(first + 24, n))
            # Round-robin, as a load balancer would; a batch in flight at once, as senders do.
            calls = [(next(targets), i) for i in batch]
            answers = await asyncio.gather(
                *(post_webhook(session, g, "category.updated", {"category_id": f"K-{i}"}) for g, i in calls)
            )
            assert [status for status, _ in answers] == [202] * len(batch)
            sent += [(g, msg_id) for (g, _), (_, msg_id) in zip(calls, answers, strict=True)]
        after = [await queued_count(session, g) for g in cluster.gateways]
        assert [a - b for a, b in zip(after, before, strict=True)] == [n / 2, n / 2]  # each took its half

        # The de-duplication window is shared: a redelivery to the other gateway is a duplicate.
        other = {cluster.gateways[0].name: cluster.gateways[1], cluster.gateways[1].name: cluster.gateways[0]}
        for gateway, msg_id in sent[:10]:
            status, _ = await post_webhook(
                session, other[gateway.name], "category.updated", {"category_id": "K-x"}, msg_id=msg_id
            )
            assert status == 200

        async def all_seen() -> bool:
            return len(await redis.hgetall("test:seen")) >= n

        await _wait(all_seen, 30, f"{n} events handled", cluster)
        await asyncio.sleep(0.5)  # a duplicate run would show up now
        seen = await _seen_counts(redis)
        assert seen == dict.fromkeys((msg_id for _, msg_id in sent), 1)  # every event exactly once

        by_worker = {k.decode(): int(v) for k, v in (await redis.hgetall("test:events_by_worker")).items()}
        assert set(by_worker) == cluster.worker_pids(), by_worker  # all three workers took jobs
        assert sum(by_worker.values()) == n
        # Either gateway's /metrics reads the job outcomes from Redis, so each shows the whole system's.
        async with session.get(f"{cluster.gateways[1].base}/metrics") as resp:
            metrics = await resp.text()
        done = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("crmagento_jobs_total{") and 'outcome="done"' in line
        )
        assert done >= n


async def test_a_periodic_job_runs_once_per_interval_across_three_workers(cluster: Cluster, redis: Redis) -> None:
    # The workers have been scheduling the test job (every TICK_SECONDS) since they started; the scheduler of
    # each of the three ticks for every due time. Watch a few intervals more.
    start_ms = int(time.time() * 1000)
    intervals = 4
    await asyncio.sleep(TICK_SECONDS * intervals + 1.5)
    runs = {int(k): int(v) for k, v in (await redis.hgetall("test:tick_runs")).items()}
    assert runs and set(runs.values()) == {1}, runs  # never twice for one scheduled time
    watched = sorted(t for t in runs if t >= start_ms)
    assert len(watched) >= intervals, runs  # and none skipped
    # Due times are floats in Redis: a millisecond either way is their rounding, not a shifted cadence.
    assert all(abs(b - a - TICK_SECONDS * 1000) <= 1 for a, b in itertools.pairwise(watched)), watched
    ran_on = {v.decode() for v in (await redis.hgetall("test:tick_by")).values()}
    assert ran_on <= cluster.worker_pids()


async def test_per_entity_order_holds_across_gateways_and_workers(cluster: Cluster, redis: Redis) -> None:
    entities, updates = 4, 30
    await redis.delete("test:seen", "test:seen_by", "test:overlaps")
    # Slow "writes": changes keep arriving while an entity's job runs, from both gateways.
    await redis.set("test:handler_seconds", 0.05)
    sent: dict[str, list[str]] = {}
    rng = random.Random(9)

    async def change_stream(session: aiohttp.ClientSession, e: int) -> None:
        customer = f"C-{e}"
        entity = f"cloudretailer:customer:{customer}"
        await redis.delete(f"test:applied:{entity}")
        sent[entity] = []
        for k in range(updates):
            # The source system changes first, then notifies (webhooks are change signals).
            await redis.set(f"test:state:{entity}", k)
            gateway = cluster.gateways[(k + e) % 2]
            status, msg_id = await post_webhook(session, gateway, "customer.updated", {"customer_id": customer})
            assert status == 202
            sent[entity].append(msg_id)
            await asyncio.sleep(rng.uniform(0, 0.03))

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(change_stream(session, e) for e in range(entities)))

        async def settled() -> bool:
            for entity in sent:
                if await redis.lindex(f"test:applied:{entity}", -1) != str(updates - 1).encode():
                    return False
            return len(await redis.hgetall("test:seen")) >= entities * updates

        await _wait(settled, 30, "every entity applied its last change", cluster)
        await asyncio.sleep(0.5)
    finally:
        await redis.delete("test:handler_seconds")

    assert await redis.hgetall("test:overlaps") == {}  # never two runs of one entity at once
    seen = await _seen_counts(redis)
    assert seen == dict.fromkeys((m for ids in sent.values() for m in ids), 1)
    runs = 0
    for entity in sent:
        applied = [int(v) for v in await redis.lrange(f"test:applied:{entity}", 0, -1)]
        assert applied == sorted(applied) and applied[-1] == updates - 1, (entity, applied)  # never went back
        runs += len(applied)
    assert entities < runs <= entities * updates  # changes arriving mid-run were coalesced into later runs
    ran_on = {v.decode() for v in (await redis.hgetall("test:seen_by")).values()}
    # Four busy entities, two job slots per worker: the runs were spread over workers, and still in order.
    assert len(ran_on) >= 2 and ran_on <= cluster.worker_pids()
