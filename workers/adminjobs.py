"""Runs an admin job (force resync, reconciliation) queued by POST /admin/..., recording its progress.

A job never fails because a remote is down. When one it needs is down as it starts, or a call fails with
`RemoteUnavailable` while it runs, its record shows `waiting` with the reason; once the remote is up again the
job runs again from the start (every admin job is an idempotent fan-out or a reconciliation). The wait is
inside the one arq try, so arq does not count it; the admin job timeout still bounds the whole job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis

from crmcore import jobrecords, keys
from crmcore.clock import utc_now_iso
from crmcore.errors import clip
from crmcore.remotes import BOTH_REMOTES
from crmcore.settings import Settings
from workers.availability.gate import blocked_remote, outage_reason, skip_reason
from workers.backoff import backoff
from workers.clients.errors import RemoteUnavailable
from workers.errors import PermanentError
from workers.registry import HandlerContext, Progress, Registry, handler_context

log = structlog.get_logger(__name__)

WAIT_POLL_S = 2.0
# After a RemoteUnavailable that the remote's shared state does not (yet) show, the job tries again after
# this wait, doubling: a remote that fails our calls but not the probe is not hammered by a whole job run.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
# The job gives up this much before arq's own timeout cancels it, so its record says why instead of
# staying `running` or `waiting` for ever.
DEADLINE_MARGIN_S = 5.0


async def run_admin_job(ctx: dict[str, Any], job_id: str) -> None:
    """Its outcome is the job record (arq keeps no result: `keep_result=0`)."""
    redis = ctx["redis"]
    registry: Registry = ctx["registry"]
    record = await jobrecords.get(redis, job_id)
    if record is None:
        log.warning("admin_job_vanished", admin_job=job_id)
        return
    structlog.contextvars.bind_contextvars(admin_job=job_id, kind=record["kind"])
    job = registry.admin_jobs.get(record["kind"])
    if job is None:
        await jobrecords.update(
            redis, job_id, status="failed", finished=utc_now_iso(), error="no handler for this job in this build"
        )
        return
    await jobrecords.update(redis, job_id, status="running", started=utc_now_iso(), done=0)
    settings: Settings = ctx["settings"]
    hctx = handler_context(ctx, job_id)
    progress = _progress(redis, job_id)
    limit = asyncio.timeout(_time_limit(settings.admin_job_timeout_seconds))
    try:
        async with limit:
            result = await _run_when_up(hctx, lambda: job(hctx, record["params"], progress))
    except Exception as exc:
        await _failed(redis, job_id, exc, timed_out=limit.expired(), limit_s=settings.admin_job_timeout_seconds)
        return
    await jobrecords.update(redis, job_id, status="done", finished=utc_now_iso(), result=result)


def _progress(redis: Redis, job_id: str) -> Progress:
    async def progress(done: int | None = None, total: int | None = None) -> None:
        fields: dict[str, Any] = {}
        if done is not None:
            fields["done"] = done
        if total is not None:
            fields["total"] = total
        if fields:
            await jobrecords.update(redis, job_id, **fields)

    return progress


def _time_limit(timeout_s: int) -> float:
    return max(1.0, timeout_s - min(DEADLINE_MARGIN_S, timeout_s / 10))


async def _failed(redis: Redis, job_id: str, exc: Exception, *, timed_out: bool, limit_s: int) -> None:
    if timed_out:
        reason = await redis.hget(keys.admin_job(job_id), "reason")
        waiting = f" while waiting: {reason.decode()}" if reason else ""
        error = f"gave up after {limit_s} s (CRMAGENTO_ADMIN_JOB_TIMEOUT_SECONDS){waiting}"
        log.warning("admin_job_timed_out", error=clip(error))
    elif isinstance(exc, PermanentError):
        error = str(exc)
        log.warning("admin_job_failed", error=clip(error))
    else:
        error = f"{type(exc).__name__}: {exc}"
        log.exception("admin_job_crashed")
    await jobrecords.update(redis, job_id, status="failed", finished=utc_now_iso(), error=clip(error))


async def _run_when_up(ctx: HandlerContext, attempt: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The job's result, once a run of it was not cut short by a remote outage."""
    failures = 0
    while True:
        await _wait_until_up(ctx.redis, ctx.job_id, _retry_delay(failures))
        try:
            return await attempt()
        except RemoteUnavailable as exc:
            failures += 1
            reason = outage_reason(exc)
            log.warning("admin_job_waiting", remote=exc.system, reason=clip(reason))
            await jobrecords.update(ctx.redis, ctx.job_id, status="waiting", reason=clip(reason))


def _retry_delay(failures: int) -> float:
    return backoff(failures, RETRY_FIRST_S, RETRY_MAX_S) if failures else 0.0


async def _wait_until_up(redis: Redis, job_id: str, at_least_s: float) -> None:
    """Until both remotes are up and `at_least_s` has passed. A remote seen down and then up ends the wait at
    once: its probe answered, which says more than our own failed call did."""
    started = time.monotonic()
    shown = ""
    while True:
        state = await blocked_remote(redis, BOTH_REMOTES)
        if state is None and (shown or time.monotonic() - started >= at_least_s):
            break
        if state is not None and skip_reason(state) != shown:
            shown = skip_reason(state)
            log.info("admin_job_waiting", remote=state.remote.value, reason=shown)
            await jobrecords.update(redis, job_id, status="waiting", reason=clip(shown))
        await asyncio.sleep(WAIT_POLL_S)
    if shown or at_least_s:
        log.info("admin_job_resumed")
        await jobrecords.update(redis, job_id, status="running", reason="")
