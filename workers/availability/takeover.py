"""Dead workers are taken over in seconds, not after arq's lease (job timeout x 2 + 10 s, 160 s as shipped).

Every worker beats every CRMAGENTO_WORKER_HEARTBEAT_SECONDS (workers/heartbeat.py) and records what it runs
(`keys.worker_jobs(id)`, written by the claim). A worker whose beat is older than
CRMAGENTO_WORKER_TAKEOVER_SECONDS has each of its running entities given a new job (crmcore/entityqueue.py
TAKEOVER_LUA, atomic: one taker wins). If it was only frozen and wakes up, its old jobs can no longer claim,
settle or write (workers/fence.py).

A worker that has itself just reconnected to Redis does not take others over until it has been connected for
the takeover time: after a Redis outage every heartbeat is old, and the live workers need a beat to show it.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis

from crmcore import keys
from crmcore.entityqueue import EntityQueue
from crmcore.settings import Settings

log = structlog.get_logger(__name__)


class Takeover:
    def __init__(self, redis: Redis, settings: Settings, queue: EntityQueue, worker_id: str) -> None:
        self.redis, self.settings, self.queue, self.worker_id = redis, settings, queue, worker_id
        self.connected_since = time.monotonic()
        self.taken = 0  # entities taken over by this worker, for tests and logs
        self._unclaimed: dict[str, float] = {}  # leased job -> when first seen unclaimed (monotonic)

    def connection_lost(self) -> None:
        self.connected_since = time.monotonic()

    async def run(self) -> int:
        """Take over every silent worker that still holds entities. Returns how many entities moved."""
        wait = self.settings.worker_takeover_seconds
        if time.monotonic() - self.connected_since < wait:
            return 0
        now = time.time()
        silent = await self.redis.zrangebyscore(keys.WORKERS, "-inf", now - wait, withscores=True)
        moved = 0
        for raw_id, last_beat in silent:
            worker_id = raw_id.decode()
            if worker_id == self.worker_id or not await self.redis.exists(keys.worker_jobs(worker_id)):
                continue
            entities = await self.queue.takeover(worker_id, now_ms=int(now * 1000))
            if entities:
                moved += len(entities)
                log.warning(
                    "worker_taken_over",
                    worker=worker_id,
                    entities=len(entities),
                    silent_seconds=round(now - last_beat, 1),
                )
        self.taken += moved
        # Only a worker that died lately can have left an unclaimed lease arq has not given back yet: the sweep
        # scans the keyspace, so it runs only then.
        lease_s = 2 * self.settings.job_timeout_seconds + 10
        if any(raw_id.decode() != self.worker_id and last_beat >= now - wait - lease_s for raw_id, last_beat in silent):
            moved += await self.requeue_orphans()
        return moved

    async def requeue_orphans(self) -> int:
        """Jobs leased but never claimed: a worker claims a job within milliseconds of leasing it, so one seen
        unclaimed twice, the takeover time apart, was leased by a worker that died in between."""
        wait = self.settings.worker_takeover_seconds
        now = time.monotonic()
        leased = await self.queue.leased_unclaimed()
        self._unclaimed = {job: self._unclaimed.get(job, now) for job in leased}
        moved = 0
        for job, entity in leased.items():
            if now - self._unclaimed[job] >= wait and await self.queue.requeue_orphan(
                entity, job, now_ms=int(time.time() * 1000)
            ):
                moved += 1
                del self._unclaimed[job]
                log.warning("unclaimed_job_requeued", entity=entity, job=job)
        self.taken += moved
        return moved
