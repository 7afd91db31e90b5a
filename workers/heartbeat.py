"""A heartbeat per worker process in Redis (arq's own health-check key is shared by all workers on a queue
and refreshed hourly, so it cannot tell whether *a* worker is alive)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmcore import keys

log = structlog.get_logger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Heartbeat:
    def __init__(self, redis: Redis, worker_id: str, interval: float, jobs_running: Callable[[], int]) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.interval = interval
        self.jobs_running = jobs_running
        self.started = time.time()
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        now = time.time()
        key = keys.worker(self.worker_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.WORKERS, {self.worker_id: now})
            pipe.hset(
                key,
                mapping={
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started": int(self.started),
                    "jobs_running": self.jobs_running(),
                },
            )
            pipe.expire(key, 86_400)
            await pipe.execute()

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("heartbeat_failed", error=type(exc).__name__)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="worker-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.redis.zrem(keys.WORKERS, self.worker_id)
            # What it ran was handed back (finished or re-queued): nothing is left for a takeover to find.
            await self.redis.delete(keys.worker(self.worker_id), keys.worker_jobs(self.worker_id))
