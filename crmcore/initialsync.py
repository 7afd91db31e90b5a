"""The initial sync (`POST /admin/sync/initial`, `crmagento sync initial`): what a new installation runs once.

Its phases, in order: the whole category tree, products, customers, the inventory reconciliation and, when
asked, orders completed since a time. The workers run them (workers/sync/initial/); the gateway refuses a
second initial sync while one is queued or running, by the lock below.

The lock (`keys.INITIAL_SYNC_LOCK`) holds the id of the initial sync that took it. It is free when missing or
when the job it names is over (done, failed, or its record expired): a job whose worker died keeps it while
arq runs the job again. The worker releases it when the job ends; the 7-day TTL is the last resort.
"""

from __future__ import annotations

from redis.asyncio import Redis

from crmcore import keys
from crmcore.jobrecords import TTL_S

PHASES = ("categories", "products", "customers", "inventory", "orders")
LIVE = frozenset({"queued", "running", "waiting"})

# Take over a lock whose job is over, unless another request took it over meanwhile.
_REPLACE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_CLAIM_TRIES = 3


async def claim(redis: Redis, job_id: str) -> str | None:
    """Take the lock for `job_id`: None when taken, else the id of the initial sync still holding it."""
    holder: str | None = None
    for _ in range(_CLAIM_TRIES):
        if await redis.set(keys.INITIAL_SYNC_LOCK, job_id, nx=True, ex=TTL_S):
            return None
        raw = await redis.get(keys.INITIAL_SYNC_LOCK)
        if raw is None:
            continue  # released meanwhile: try again
        holder = raw.decode()
        status = await redis.hget(keys.admin_job(holder), "status")
        if status is not None and status.decode() in LIVE:
            return holder
        if await redis.eval(_REPLACE_IF, 1, keys.INITIAL_SYNC_LOCK, holder, job_id, TTL_S):
            return None
    return holder


async def held_by(redis: Redis) -> str | None:
    raw = await redis.get(keys.INITIAL_SYNC_LOCK)
    return raw.decode() if raw is not None else None


async def release(redis: Redis, job_id: str) -> None:
    """Free the lock if this job holds it (a job started by hand under another id never frees another's)."""
    await redis.eval(_DELETE_IF, 1, keys.INITIAL_SYNC_LOCK, job_id)
