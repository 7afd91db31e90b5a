"""The job record of a scheduled catch-up run (`GET /admin/jobs/{run id}`, kind "catchup").

An admin run has its job's record (workers/adminjobs.py opens, updates and closes it). Nobody queues a
scheduled run, so it keeps its own: the changes it feeds are counted there as they settle, like an admin
job's, and the run waits on those counts.
"""

from __future__ import annotations

from typing import Any

from crmcore import jobrecords, keys
from crmcore.clock import utc_now_iso
from crmcore.jobrecords import AdminJobKind
from workers.periodic import SCHEDULE
from workers.registry import HandlerContext, Progress


async def open_record(ctx: HandlerContext) -> None:
    """A retried run (same run id) finds its record and goes on with it."""
    if not await ctx.redis.exists(keys.admin_job(ctx.job_id)):
        await jobrecords.create(ctx.redis, ctx.job_id, AdminJobKind.CATCHUP_CRON, {"trigger": SCHEDULE})
    await jobrecords.update(ctx.redis, ctx.job_id, status="running", started=utc_now_iso())


def total_on_record(ctx: HandlerContext) -> Progress:
    async def progress(done: int | None = None, total: int | None = None) -> None:
        if total is not None:
            await jobrecords.update(ctx.redis, ctx.job_id, total=total)

    return progress


async def close_record(ctx: HandlerContext, report: dict[str, Any]) -> None:
    """An admin run's record is its job's; a scheduled run closes its own."""
    if report["trigger"] != SCHEDULE:
        return
    status = "failed" if report["status"] == "failed" else "done"
    error = {"error": report["error"]} if report.get("error") else {}
    await jobrecords.update(ctx.redis, ctx.job_id, status=status, finished=utc_now_iso(), result=report, **error)
