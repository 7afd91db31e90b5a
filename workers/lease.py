"""One run at a time across all workers (every periodic job, workers/periodic/): a Redis lease holding the
run's id, renewed while the run goes on.

A worker that dies leaves the lease to expire within LEASE_MS, so the next run is not blocked for long. The
retry of a run (same run id: the scheduler trying a crashed run again) takes its own lease over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis

from crmcore.errors import clip

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


class LeaseLost(Exception):
    """The lease expired or another run took it: the run must not go on unguarded."""


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
    async def kept(
        self, every_s: float = RENEW_S, *, stop_on_loss: bool = False, release: bool = True
    ) -> AsyncIterator[None]:
        """Renew while the block runs. A lease lost meanwhile sets `lost`; a run that checks it between steps
        stops there (catch-up: its cursors only move forward, so a step taken after the loss cannot undo
        another run's work). With `stop_on_loss` the block is cancelled at once and LeaseLost raised instead
        (reconciliation: a write after the loss could race the run that took over). Without `release` the
        lease is left to the caller, who frees it together with what it records about the run (the
        scheduler: a run seen without its lease is taken for crashed)."""
        main = asyncio.current_task()
        assert main is not None

        async def renew() -> None:
            while not self.lost:
                await asyncio.sleep(every_s)
                try:
                    self.lost = not await self.redis.eval(_RENEW_LUA, 1, self.key, self.holder, self.lease_ms)
                except Exception as exc:  # a Redis blip: the lease has slack, try again next time
                    log.warning("lease_renew_failed", key=self.key, error=clip(str(exc)))
                    continue
                if self.lost and stop_on_loss:
                    main.cancel()

        task = asyncio.create_task(renew())
        try:
            yield
        except asyncio.CancelledError:
            if self.lost and stop_on_loss:
                main.uncancel()  # our own cancel, turned into this error
                raise LeaseLost(f"the lease {self.key} expired or was taken by another run; stopped") from None
            raise
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if release:
                with contextlib.suppress(Exception):  # Redis down: the lease expires on its own
                    await self.release()
