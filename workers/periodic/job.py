"""A periodic job, one run of it, and its report: what the scheduler, the admin jobs and the tests share.

A job declares its name (the report's, the lease's `keys.lock(name)` and its schedule's), its interval as a
function of the worker's settings, the remotes it needs and a run function. Every run of every job, however
it was started, goes through `supervise`: under the job's lease, bounded in time, and ending in one report of
one shape, stored in `keys.REPORTS` under the job's name:

    {"name", "run_id", "trigger": "schedule"|"admin", "status": "ok"|"partial"|"failed"|"skipped",
     "reason"? (why skipped), "error"? (why failed), "started": "...Z", "finished": "...Z", "seconds",
     ...the job's own fields}

A remote outage met part way ends the run `skipped` with the reason (an admin run raises it instead, so its
job waits for the remote and runs again: workers/adminjobs.py). Any other exception is a crash: stored
`failed`, then raised (the scheduler retries a crashed run once).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from crmcore import jobrecords, keys
from crmcore.clock import id_stamp, utc_now_iso
from crmcore.errors import clip
from crmcore.remotes import BOTH_REMOTES, Remote, RemoteState
from crmcore.settings import Settings
from workers.availability.gate import blocked_remote, outage_reason, skip_reason
from workers.clients.errors import RemoteUnavailable
from workers.errors import PermanentError
from workers.lease import Lease
from workers.registry import HandlerContext, Progress

log = structlog.get_logger(__name__)

SCHEDULE = "schedule"
ADMIN = "admin"
# The envelope every report starts with; a job's own fields never replace these.
ENVELOPE = ("name", "run_id", "trigger", "status", "reason", "error", "started", "finished", "seconds")


def new_run_id(name: str) -> str:
    """No colon: a run id is part of the ids of the changes a run feeds (`job:<run id>:...`)."""
    return f"{name}-{id_stamp()}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """One run as its job sees it. `ctx.job_id` is the run id and `ctx.attempt` the try: a retried run keeps
    its id, so what it fed before is recognised as already fed."""

    ctx: HandlerContext
    trigger: str
    lease: Lease
    params: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    # The job's own report fields, kept current as it goes: a run cut short still reports what it did.
    fields: dict[str, Any] = field(default_factory=dict)
    # Why a run that ends `failed` without raising failed (the catch-up: a stream that failed).
    error: str | None = None
    # False when the caller frees the lease itself, with its own record of the run (the scheduler).
    release_lease: bool = True

    @property
    def run_id(self) -> str:
        return self.ctx.job_id


RunFn = Callable[[Run], Awaitable[str]]  # returns "ok", "partial" or "failed"
SkipFn = Callable[[HandlerContext], Awaitable[dict[str, Any]]]
ReportFn = Callable[[HandlerContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Periodic:
    name: str
    interval: Callable[[Settings], float]  # seconds, from the settings the worker runs with
    run: RunFn
    needs: tuple[Remote, ...] = BOTH_REMOTES
    # Cancel the run at once when its lease is lost (a write after the loss could race the run that took
    # over); a job whose steps are safe to finish (forward-only cursors) checks `run.lease.lost` itself.
    stop_on_loss: bool = True
    # The job's fields in the report of a run not started because a remote is down (e.g. its cursor, pinned).
    on_skip: SkipFn | None = None
    # Called with the stored report of every run that started (history, the catch-up's job record).
    on_report: ReportFn | None = None

    @property
    def lease_key(self) -> str:
        return keys.lock(self.name)


class RunFailed(PermanentError):
    """An admin run crashed; its report (the job's result) says where."""


# --- the report -----------------------------------------------------------------------------------------


def build_report(
    name: str,
    run_id: str,
    trigger: str,
    status: str,
    started: str,
    *,
    seconds: float = 0.0,
    fields: dict[str, Any] | None = None,
    **notes: str | None,
) -> dict[str, Any]:
    """The one shape of every report; `notes` are `reason` and `error`, left out when empty."""
    head: dict[str, Any] = {"name": name, "run_id": run_id, "trigger": trigger, "status": status}
    head.update({k: clip(v) for k, v in notes.items() if v})
    head.update(started=started, finished=utc_now_iso(), seconds=round(seconds, 3))
    return {**head, **{k: v for k, v in (fields or {}).items() if k not in ENVELOPE}}


async def store_report(job: Periodic, ctx: HandlerContext, report: dict[str, Any], *, started: bool) -> None:
    """The last report of the job, for GET /admin/status; a Redis error is logged, never raised over the
    outcome the caller is handling."""
    try:
        await ctx.redis.hset(keys.REPORTS, job.name, orjson.dumps(report))
        if started and job.on_report is not None:
            await job.on_report(ctx, report)
    except Exception as exc:
        log.warning("report_not_stored", job=job.name, run_id=report["run_id"], error=clip(str(exc)))


async def skip_report(job: Periodic, ctx: HandlerContext, down: RemoteState, trigger: str) -> dict[str, Any]:
    """The report of a run not started because a remote it needs is down: nothing read, nothing locked."""
    fields = await job.on_skip(ctx) if job.on_skip is not None else {}
    reason = skip_reason(down)
    report = build_report(job.name, ctx.job_id, trigger, "skipped", utc_now_iso(), fields=fields, reason=reason)
    await store_report(job, ctx, report, started=False)
    log.info("cron_skipped", cron=job.name, remote=down.remote.value, reason=reason)
    return report


# --- a run ----------------------------------------------------------------------------------------------


async def execute(
    job: Periodic,
    ctx: HandlerContext,
    trigger: str,
    *,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One run named ctx.job_id, now. When another run holds the lease, nothing runs: the answer is a
    `skipped` report naming it in `running`, not stored (the last report stays that of a run that ran)."""
    lease = Lease(ctx.redis, job.lease_key, ctx.job_id)
    if not await lease.take():
        holder = await lease.held_by()
        log.info("periodic_busy", job=job.name, run_id=ctx.job_id, running=holder)
        reason = f"{job.name} run {holder or '(just finishing)'} is still running"
        busy = build_report(job.name, ctx.job_id, trigger, "skipped", utc_now_iso(), reason=reason)
        return busy | {"running": holder}
    return await supervise(job, Run(ctx, trigger, lease, params or {}, progress))


async def run_once(job: Periodic, ctx: HandlerContext, *, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A scheduled run without the schedule (tests, a one-off): skipped while a remote it needs is down."""
    down = await blocked_remote(ctx.redis, job.needs)
    if down is not None:
        return await skip_report(job, ctx, down, SCHEDULE)
    return await execute(job, ctx, SCHEDULE, params=params)


async def supervise(job: Periodic, run: Run) -> dict[str, Any]:
    """Run it under its lease (already taken) and store its report. A scheduled run is bounded by
    CRMAGENTO_ADMIN_JOB_TIMEOUT_SECONDS; an admin run is already bounded by its job."""
    started, clock = utc_now_iso(), time.monotonic()
    limit = run.ctx.settings.admin_job_timeout_seconds if run.trigger == SCHEDULE else None
    structlog.contextvars.bind_contextvars(run_id=run.run_id)
    log.info("periodic_started", job=job.name, trigger=run.trigger, attempt=run.ctx.attempt)
    try:
        async with run.lease.kept(stop_on_loss=job.stop_on_loss, release=run.release_lease), asyncio.timeout(limit):
            status = await job.run(run)
    except RemoteUnavailable as exc:
        return await _cut_short(job, run, exc, started, time.monotonic() - clock)
    except Exception as exc:
        await _crashed(job, run, exc, started, time.monotonic() - clock)
        raise
    finally:
        structlog.contextvars.unbind_contextvars("run_id")
    report = _report(job, run, status, started, time.monotonic() - clock, error=run.error)
    await store_report(job, run.ctx, report, started=True)
    log.info("periodic_done", job=job.name, run_id=run.run_id, status=status, seconds=report["seconds"])
    return report


def _report(job: Periodic, run: Run, status: str, started: str, seconds: float, **notes: str | None) -> dict[str, Any]:
    return build_report(job.name, run.run_id, run.trigger, status, started, seconds=seconds, fields=run.fields, **notes)


async def _cut_short(job: Periodic, run: Run, exc: RemoteUnavailable, started: str, seconds: float) -> dict[str, Any]:
    report = _report(job, run, "skipped", started, seconds, reason=outage_reason(exc))
    await store_report(job, run.ctx, report, started=True)
    if run.trigger == ADMIN:
        raise exc
    log.warning("cron_skipped", cron=job.name, remote=exc.system, reason=report["reason"])
    return report


async def _crashed(job: Periodic, run: Run, exc: Exception, started: str, seconds: float) -> None:
    error = f"{type(exc).__name__}: {exc}"
    report = _report(job, run, "failed", started, seconds, error=error)
    await store_report(job, run.ctx, report, started=True)
    log.warning("periodic_crashed", job=job.name, run_id=run.run_id, attempt=run.ctx.attempt, error=clip(error))
    if run.trigger == ADMIN:
        with contextlib.suppress(Exception):
            await jobrecords.update(run.ctx.redis, run.ctx.job_id, result=report)
        raise RunFailed(f"{job.name} run {run.run_id} failed: {error}") from exc
