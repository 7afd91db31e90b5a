"""Runs an admin job (force resync, reconciliation) queued by POST /admin/..., recording its progress."""

from __future__ import annotations

from typing import Any

import structlog

from gateway import jobrecords
from workers.errors import PermanentError
from workers.registry import HandlerContext, Registry
from workers.services import Services

log = structlog.get_logger(__name__)


async def run_admin_job(ctx: dict[str, Any], job_id: str) -> str:
    redis = ctx["redis"]
    registry: Registry = ctx["registry"]
    record = await jobrecords.get(redis, job_id)
    if record is None:
        log.warning("admin_job_vanished", admin_job=job_id)
        return "vanished"
    structlog.contextvars.bind_contextvars(admin_job=job_id, kind=record["kind"])
    job = registry.admin_jobs.get(record["kind"])
    if job is None:
        await jobrecords.update(
            redis, job_id, status="failed", finished=jobrecords.now_iso(), error="no handler for this job in this build"
        )
        return "failed"
    await jobrecords.update(redis, job_id, status="running", started=jobrecords.now_iso(), done=0)

    async def progress(done: int | None = None, total: int | None = None) -> None:
        fields: dict[str, Any] = {}
        if done is not None:
            fields["done"] = done
        if total is not None:
            fields["total"] = total
        if fields:
            await jobrecords.update(redis, job_id, **fields)

    services: Services = ctx["services"]
    hctx = HandlerContext(redis=redis, settings=ctx["settings"], job_id=job_id, attempt=1, services=services)
    try:
        result = await job(hctx, record["params"], progress)
    except PermanentError as exc:
        await jobrecords.update(redis, job_id, status="failed", finished=jobrecords.now_iso(), error=str(exc)[:2000])
        log.warning("admin_job_failed", error=str(exc)[:500])
        return "failed"
    except Exception as exc:
        await jobrecords.update(
            redis, job_id, status="failed", finished=jobrecords.now_iso(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        log.exception("admin_job_crashed")
        return "failed"
    await jobrecords.update(redis, job_id, status="done", finished=jobrecords.now_iso(), result=result)
    return "done"
