"""Fencing: a job writes to Magento or Cloud Retailer only while it still owns its entity.

A worker that stops beating is taken over (workers/availability/takeover.py): its entities get new jobs on
live workers. If it was only frozen (a VM paused, a stop signal, a long GC) it wakes up in the middle of a
handler holding a state it read before the freeze. The claim already refuses a stale job at its start; this
check refuses its writes in the middle, so an older state never lands over the newer one the new job wrote.

The dispatcher sets the fence of the running job in a context variable; the HTTP client checks it before
every request that writes (one Redis read). Work outside a job (admin jobs, crons) has no fence.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from redis.asyncio import Redis

from crmcore import keys
from workers.errors import StaleJob


@dataclass(frozen=True, slots=True)
class Fence:
    redis: Redis
    entity: str
    job_id: str

    async def holds(self) -> bool:
        current = await self.redis.hget(keys.entity(self.entity), "job")
        return current is not None and current.decode() == self.job_id

    async def check(self) -> None:
        if not await self.holds():
            raise StaleJob(f"entity {self.entity} was taken over from job {self.job_id}")


CURRENT_FENCE: ContextVar[Fence | None] = ContextVar("crmagento_fence", default=None)


async def check_fence() -> None:
    fence = CURRENT_FENCE.get()
    if fence is not None:
        await fence.check()
