"""When a remote answers again, its parked entities are released by one worker, in dependency order
(categories, customers, products, stock, orders: crmcore/remotes.py DRAIN_RANKS) and never more at a time than
the remote's concurrency setting, so the backlog does not knock over a store that has just come back.

A rank is finished before the next one starts. If the remote goes down again, the drain stops where it is;
the jobs that fail park themselves again. If the draining worker dies, its lease expires and the next
worker's monitor takes the drain over (every worker looks once a second for an up remote with parked work).
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.asyncio import Redis

from crmcore import keys
from crmcore.clock import now_ms
from crmcore.entityqueue import EntityQueue
from crmcore.remotes import Remote, rank_of
from crmcore.settings import Settings
from workers.lease import Lease

log = structlog.get_logger(__name__)

DRAIN_LEASE_MS = 30_000
_TICK_S = 0.05
# A released entity is in flight while its job is queued or running; `retrying` waits for its own backoff.
_IN_FLIGHT = frozenset({b"queued", b"running"})


class Drainer:
    def __init__(self, redis: Redis, settings: Settings, queue: EntityQueue, worker_id: str) -> None:
        self.redis, self.settings, self.queue, self.worker_id = redis, settings, queue, worker_id

    def limit(self, remote: Remote) -> int:
        return self.settings.magento_concurrency if remote is Remote.MAGENTO else self.settings.cr_concurrency

    async def drain(self, remote: Remote) -> int:
        """Release every parked entity of `remote` while it stays up. Returns how many were released (0 when
        another worker is draining it)."""
        lease = Lease(self.redis, keys.remote_drain_lock(remote), self.worker_id, lease_ms=DRAIN_LEASE_MS)
        if not await lease.take():
            return 0
        started = time.monotonic()
        async with lease.kept(every_s=DRAIN_LEASE_MS / 3000):
            released = await self._drain(remote, lease)
        if released:
            seconds = round(time.monotonic() - started, 1)
            log.info("remote_drained", remote=remote.value, released=released, seconds=seconds)
        return released

    async def _drain(self, remote: Remote, lease: Lease) -> int:
        limit = self.limit(remote)
        window: dict[str, str] = {}  # entity -> the job released for it
        rank: int | None = None
        released = 0
        while not lease.lost and await self._up(remote):
            if window:
                await self._retire(window)
            if not window:
                rank = None
            free = limit - len(window)
            if free > 0:
                batch, rank = await self._next(remote, free, rank)
                if not batch and not window:
                    break
                got = await self.queue.unpark(batch, now_ms=now_ms(), parked_key=keys.remote_parked(remote))
                window.update(got)
                released += len(got)
            await asyncio.sleep(_TICK_S)
        return released

    async def _up(self, remote: Remote) -> bool:
        state = await self.redis.hget(keys.remote(remote), "state")
        return state in (None, b"up")

    async def _next(self, remote: Remote, free: int, rank: int | None) -> tuple[list[str], int | None]:
        """The next entities in line, of the rank being drained (a new rank only once the window is empty)."""
        items = await self.redis.zrange(keys.remote_parked(remote), 0, free - 1, withscores=True)
        batch = []
        for entity, score in items:
            if rank is None:
                rank = rank_of(score)
            elif rank_of(score) != rank:
                break
            batch.append(entity.decode())
        return batch, rank

    async def _retire(self, window: dict[str, str]) -> None:
        entities = list(window)
        async with self.redis.pipeline(transaction=False) as pipe:
            for entity in entities:
                pipe.hmget(keys.entity(entity), "job", "state")
            rows = await pipe.execute()
        for entity, (job, state) in zip(entities, rows, strict=True):
            if job is None or job.decode() != window[entity] or state not in _IN_FLIGHT:
                del window[entity]
