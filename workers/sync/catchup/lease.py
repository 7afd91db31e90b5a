"""One catch-up at a time: a Redis lease named after the run holding it, renewed while the run goes on.

A worker that dies leaves the lease to expire within LEASE_MS, so the next run is not blocked for long. The
retry of a run (same run id, e.g. arq re-running the cron job of a dead worker) takes its own lease over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

LEASE_MS = 60_000
RENEW_S = 15.0

_TAKE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: Redis, key: str, holder: str, lease_ms: int = LEASE_MS) -> None:
        self.redis, self.key, self.holder, self.lease_ms = redis, key, holder, lease_ms
        self.lost = False

    async def take(self) -> bool:
        return bool(await self.redis.eval(_TAKE_LUA, 1, self.key, self.holder, self.lease_ms))

    async def held_by(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if value is not None else None

    async def release(self) -> None:
        await self.redis.eval(_RELEASE_LUA, 1, self.key, self.holder)

    @contextlib.asynccontextmanager
    async def kept(self, every_s: float = RENEW_S) -> AsyncIterator[None]:
        """Renew while the block runs. A lease lost meanwhile sets `lost`: the run stops at its next step
        (cursors only move forward, so even a step taken after the loss cannot undo another run's work)."""

        async def renew() -> None:
            while not self.lost:
                await asyncio.sleep(every_s)
                try:
                    self.lost = not await self.redis.eval(_RENEW_LUA, 1, self.key, self.holder, self.lease_ms)
                except Exception as exc:  # a Redis blip: the lease has slack, try again next time
                    log.warning("catchup_lease_renew_failed", error=str(exc)[:200])

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.release()
