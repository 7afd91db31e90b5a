"""The initial sync job: its phases in order, each on its own record (crmcore/jobrecords.py, `phase_id`).

A phase runs its admin job with a context named after the record of this run of the phase (`run_id`): the
changes it feeds are counted there, apart from the other phases', and their ids (`job:<id>:<phase>:<run>:<n>`)
differ from theirs. A phase that feeds changes is over once they are all settled, so products find their
categories and the reconciliation finds the products.

Resumable: a phase that finished is `done` (or `skipped`) on its record and is not run again when the job
is (its worker died and arq runs it again, or a remote went down and workers/adminjobs.py runs it again). A
phase cut short runs again from its start, under a new run's ids: a resync's list may have shifted (customers
the cut-short run linked are no longer listed as unlinked), and the same ids would then name other changes.
What the earlier run fed and the new one feeds again runs twice, a no-op the second time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import structlog
from redis.asyncio import Redis

from crmcore import initialsync, jobrecords, keys
from crmcore.clock import utc_now_iso
from workers.clients.errors import RemoteUnavailable
from workers.registry import AdminJob, HandlerContext, Progress, Registry
from workers.sync.initial.phases import PLAN, Phase

log = structlog.get_logger(__name__)

SETTLE_POLL_S = 0.5
# A reconciliation that another run (the cron's) holds the lease of is tried again after this.
BUSY_RETRY_S = 2.0
FINISHED = (b"done", b"skipped")


def initial_sync_job(registry: Registry) -> AdminJob:
    """The job, finding each phase's job in `registry` when it runs."""

    async def initial_sync(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        try:
            result = await _run(ctx, registry, params, progress)
        except RemoteUnavailable:
            raise  # the job waits for the remote and runs again: it keeps the lock
        except Exception:
            await initialsync.release(ctx.redis, ctx.job_id)
            raise
        await initialsync.release(ctx.redis, ctx.job_id)
        return result

    return initial_sync


async def _run(ctx: HandlerContext, registry: Registry, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    await jobrecords.open_phases(ctx.redis, ctx.job_id, [phase.name for phase in PLAN])
    outcome: dict[str, Any] = {}
    for n, phase in enumerate(PLAN):
        await progress(done=n, total=len(PLAN))
        outcome[phase.name] = await _phase(ctx, registry, phase, params)
    await jobrecords.update(ctx.redis, ctx.job_id, phase="")
    await progress(done=len(PLAN), total=len(PLAN))
    return outcome


async def _phase(ctx: HandlerContext, registry: Registry, phase: Phase, params: dict[str, Any]) -> dict[str, Any]:
    """What the phase's record says of it once it is over."""
    record_id = jobrecords.phase_id(ctx.job_id, phase.name)
    key = keys.admin_job(record_id)
    status = await ctx.redis.hget(key, "status")
    if status in FINISHED:
        log.info("initial_sync_phase_already_done", phase=phase.name)
        return await _summary(ctx.redis, key)
    await jobrecords.update(ctx.redis, ctx.job_id, phase=phase.name)
    job_params = phase.params(params)
    if job_params is None:
        await jobrecords.update(ctx.redis, record_id, status="skipped", finished=utc_now_iso())
        return await _summary(ctx.redis, key)
    run = await ctx.redis.hincrby(key, "runs", 1)
    counts = jobrecords.run_id(ctx.job_id, phase.name, run)
    # The run's record exists before anything is fed: the workers count only on a record that exists.
    await jobrecords.update(ctx.redis, counts, status="running")
    await ctx.redis.expire(keys.admin_job(counts), jobrecords.TTL_S)
    await jobrecords.update(ctx.redis, record_id, status="running", started=utc_now_iso(), counts=counts)
    log.info("initial_sync_phase_started", phase=phase.name, run=run)
    phase_ctx = dataclasses.replace(ctx, job_id=counts)
    result = await _run_when_free(phase_ctx, registry.admin_jobs[phase.kind], job_params)
    if phase.feeds:
        await _settled(ctx.redis, keys.admin_job(counts))
    await jobrecords.update(ctx.redis, record_id, status="done", finished=utc_now_iso(), result=result)
    log.info("initial_sync_phase_done", phase=phase.name, run=run)
    return await _summary(ctx.redis, key)


async def _run_when_free(ctx: HandlerContext, job: AdminJob, params: dict[str, Any]) -> dict[str, Any]:
    """The phase job's result; a run refused because another run holds its lease is tried again."""
    while True:
        result = await job(ctx, params, _progress(ctx.redis, ctx.job_id))
        if not (result.get("status") == "skipped" and result.get("running")):
            return result
        log.info("initial_sync_phase_busy", running=result.get("running"))
        await asyncio.sleep(BUSY_RETRY_S)


def _progress(redis: Redis, record_id: str) -> Progress:
    async def progress(done: int | None = None, total: int | None = None) -> None:
        fields = {name: value for name, value in (("done", done), ("total", total)) if value is not None}
        if fields:
            await jobrecords.update(redis, record_id, **fields)

    return progress


async def _settled(redis: Redis, key: str) -> None:
    """Until every change the phase fed is done or failed (the entity workers count them on its record)."""
    while True:
        done, failed, total = await redis.hmget(key, "done", "failed", "total")
        if int(done or 0) + int(failed or 0) >= int(total or 0):
            return
        await asyncio.sleep(SETTLE_POLL_S)


async def _summary(redis: Redis, key: str) -> dict[str, Any]:
    status, counts = await redis.hmget(key, "status", "counts")
    done, failed, total = (
        await redis.hmget(keys.admin_job(counts.decode()), "done", "failed", "total") if counts else (None,) * 3
    )
    return {
        "status": (status or b"pending").decode(),
        "done": int(done or 0),
        "failed": int(failed or 0),
        "total": int(total) if total else None,
    }
