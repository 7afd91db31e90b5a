"""Admin jobs (force resyncs, reconciliations): their record in Redis, shared by the gateway and workers.

`keys.admin_job(id)` is a hash: kind, params (JSON), status queued|running|waiting|done|failed, done/total
for progress, result (JSON), error, reason (why it is waiting), created/started/finished (ISO UTC). Records
expire after 7 days; the newest ids are listed in `keys.ADMIN_JOBS` (trimmed).

A job made of phases (the initial sync) also has `phases` (JSON list of names, in order) and `phase` (the one
running). Each phase has a record of its own, `keys.admin_job(phase_id(id, name))`, not listed: status
pending|running|done|skipped, result, started/finished and `runs` (how many times it was started: a phase that
finished is not started again when the job is retried). Each run of a phase counts on a record of its own too
(`run_id`, named in the phase's `counts`): a run feeds under ids of its own, so a run after a cut-short one
never takes a change it has not fed yet for a duplicate of the earlier run's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from crmcore import keys
from crmcore.clock import id_stamp, iso_ms, now_ms

RUN_ADMIN_JOB = "run_admin_job"
TTL_S = 7 * 86400
INDEX_MAX = 1000
# `waiting`: a remote the job needs is down; it runs (again, from the start) once the remote is back.
STATUSES = ("queued", "running", "waiting", "done", "failed")


class AdminJobKind(StrEnum):
    """A job record's `kind`. The gateway creates the admin jobs under these names (gateway/adminjobs.py) and the
    workers' registry runs each by its name (`Registry.register_job`), so the two sides cannot drift apart."""

    RESYNC_PRODUCTS = "resync-products"
    RESYNC_CATEGORIES = "resync-categories"
    RESYNC_CUSTOMERS = "resync-customers"
    RESYNC_ORDERS = "resync-orders"
    RESYNC_CATCHUP = "resync-catchup"
    RECONCILE_INVENTORY = "reconcile-inventory"
    # Every resync and the reconciliation, one after the other, for a new installation (crmcore/initialsync.py).
    INITIAL_SYNC = "initial-sync"
    # The record of a catch-up run the cron started (workers/sync/catchup): it counts its changes like an
    # admin job, but nobody queues it, so no handler is registered under this name.
    CATCHUP_CRON = "catchup"


@dataclass(frozen=True, slots=True)
class FeedOrigin:
    """Where changes fed into the entity queue come from (workers/feed.py): the ids minted for them are
    `{prefix}:{n}`, and `job_id` names the job record that counts them as they settle (None: nobody does)."""

    prefix: str
    job_id: str | None = None

    def within(self, name: str) -> FeedOrigin:
        """A narrower origin of the same job, e.g. one catch-up stream's record: ids `{prefix}:{name}:{n}`."""
        return FeedOrigin(f"{self.prefix}:{name}", self.job_id)

    def __str__(self) -> str:
        # An origin formatted into a string (the catch-up run builds its ids so) spells the same ids.
        return self.prefix


def feed_origin(job_id: str) -> FeedOrigin:
    """The changes an admin job feeds: counted on its record, with ids `job:<job id>:<n>` (the event log shows
    them, and a retried job that feeds the same list again is de-duplicated by them)."""
    return FeedOrigin(f"job:{job_id}", job_id)


# Event statuses that settle a fanned-out change, and the job record counter each one raises.
# `refused` is no event status: a fed change the queue refused has no record and never runs (workers/feed.py), so
# it settles as failed the moment it is refused.
SETTLED_COUNTERS = {"done": "done", "skipped": "done", "dead": "failed", "refused": "failed"}

# Only a record that still exists: HINCRBY would otherwise bring back one that expired (TTL_S) as a husk
# without a TTL, kept for ever, when a change of a week-old job settles late (a replayed dead letter).
_COUNT_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
return false
"""


def count_settled(pipe: Pipeline, job_id: str, status: str) -> None:
    """Queue on `pipe`: a change that job fed settled with this event status (nothing for one still unsettled)."""
    counter = SETTLED_COUNTERS.get(status)
    if counter is not None:
        pipe.eval(_COUNT_IF_EXISTS, 1, keys.admin_job(job_id), counter)


def long_queue_name(queue_name: str) -> str:
    """The arq queue of admin jobs and crons, apart from the entity jobs (see workers/worker.py)."""
    return f"{queue_name}:long"


def arq_job_id(job_id: str) -> str:
    """The id of the arq job that runs an admin job, on the long queue."""
    return f"admin:{job_id}"


def new_job_id(kind: AdminJobKind) -> str:
    return f"{kind}-{id_stamp()}-{secrets.token_hex(4)}"


async def create(redis: Redis, job_id: str, kind: AdminJobKind, params: dict[str, Any]) -> None:
    created = now_ms()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.admin_job(job_id),
            mapping={
                "id": job_id,
                "kind": kind,
                "params": orjson.dumps(params),
                "status": "queued",
                "created": iso_ms(created),
            },
        )
        pipe.expire(keys.admin_job(job_id), TTL_S)
        pipe.zadd(keys.ADMIN_JOBS, {job_id: created / 1000})
        pipe.zremrangebyrank(keys.ADMIN_JOBS, 0, -INDEX_MAX - 1)
        await pipe.execute()


async def update(redis: Redis, job_id: str, **fields: Any) -> None:
    mapping = {k: (orjson.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in fields.items()}
    await redis.hset(keys.admin_job(job_id), mapping=mapping)


async def get(redis: Redis, job_id: str) -> dict[str, Any] | None:
    raw = await redis.hgetall(keys.admin_job(job_id))
    if not raw:
        return None
    rec = {k.decode(): v.decode() for k, v in raw.items()}
    out: dict[str, Any] = {
        "id": rec["id"],
        "kind": rec["kind"],
        "status": rec["status"],
        "params": orjson.loads(rec.get("params") or "{}"),
        "created": rec.get("created"),
        "started": rec.get("started"),
        "finished": rec.get("finished"),
        "progress": {
            "done": int(rec.get("done") or 0),
            "failed": int(rec.get("failed") or 0),
            "total": int(rec["total"]) if rec.get("total") else None,
        },
        "result": orjson.loads(rec["result"]) if rec.get("result") else None,
        "error": rec.get("error") or None,
        "reason": rec.get("reason") or None,
    }
    if rec.get("phases"):
        out["phase"] = rec.get("phase") or None
        out["phases"] = await _phases(redis, job_id, orjson.loads(rec["phases"]))
    # A fan-out job's function is done once it has fed every change; the job is done when they are settled.
    progress = out["progress"]
    if out["status"] == "done" and progress["total"] and progress["done"] + progress["failed"] < progress["total"]:
        out["status"] = "running"
    return out


def phase_id(job_id: str, phase: str) -> str:
    """The record of one phase of a job; the changes the phase feeds count on it, apart from the other phases."""
    return f"{job_id}:{phase}"


def run_id(job_id: str, phase: str, run: int) -> str:
    """The record one run of a phase counts on: done/failed/total, and the ids of the changes it feeds."""
    return f"{phase_id(job_id, phase)}:{run}"


async def open_phases(redis: Redis, job_id: str, phases: list[str]) -> None:
    """Give a job its phase records; a retried job keeps the ones it has (and what they counted)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.admin_job(job_id), "phases", orjson.dumps(phases))
        for name in phases:
            pipe.hsetnx(keys.admin_job(phase_id(job_id, name)), "status", "pending")
            pipe.expire(keys.admin_job(phase_id(job_id, name)), TTL_S)
        await pipe.execute()


async def _phases(redis: Redis, job_id: str, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        rec = await _fields(redis, phase_id(job_id, name))
        counts = await _fields(redis, rec["counts"]) if rec.get("counts") else {}
        out.append(
            {
                "name": name,
                "status": rec.get("status", "pending"),
                "done": int(counts.get("done") or 0),
                "failed": int(counts.get("failed") or 0),
                "total": int(counts["total"]) if counts.get("total") else None,
                "runs": int(rec.get("runs") or 0),
                "started": rec.get("started"),
                "finished": rec.get("finished"),
                "result": orjson.loads(rec["result"]) if rec.get("result") else None,
            }
        )
    return out


async def _fields(redis: Redis, record_id: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.admin_job(record_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def discard(redis: Redis, job_id: str) -> None:
    """Forget a job that was recorded but must not run (a second initial sync, refused)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.admin_job(job_id))
        pipe.zrem(keys.ADMIN_JOBS, job_id)
        await pipe.execute()


async def recent(redis: Redis, limit: int = 20) -> list[dict[str, Any]]:
    ids = await redis.zrevrange(keys.ADMIN_JOBS, 0, limit - 1)
    out = []
    for raw_id in ids:
        rec = await get(redis, raw_id.decode())
        if rec is not None:
            out.append(rec)
    return out
