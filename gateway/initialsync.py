"""POST /admin/sync/initial: queue the initial sync (crmcore/initialsync.py), one at a time.

The job is recorded before it takes the lock, so a lock never names a job without a record. A lock whose job
arq no longer has (it gave up after its tries, every worker dying under it) would otherwise refuse every
initial sync until it expired: such a job is marked failed, which frees the lock for the next one.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from aiohttp import web
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from crmcore import initialsync, jobrecords, keys
from crmcore.clock import now_ms, utc_now_iso
from crmcore.jobrecords import AdminJobKind
from gateway.adminjobs import enqueue_job
from gateway.appkeys import REDIS, SETTINGS
from gateway.connections import BodyTimeout, read_body
from gateway.guards import admin_only
from gateway.problems import body_refused, problem

# A job younger than this may be recorded and locked but not queued yet: never taken for abandoned.
QUEUEING_GRACE_MS = 60_000


class InitialSync(BaseModel):
    """Without `orders_since`, no orders are imported: which past sales belong in Cloud Retailer is the
    operator's call (they may be there already, entered at the till)."""

    model_config = ConfigDict(extra="forbid")

    orders_since: datetime | None = None


async def initial_sync(request: web.Request) -> web.Response:
    try:
        raw = await read_body(request)
    except BodyTimeout as exc:
        return exc.answer()
    try:
        body = InitialSync.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        return body_refused(exc)
    redis = request.app[REDIS]
    kind = AdminJobKind.INITIAL_SYNC
    job_id = jobrecords.new_job_id(kind)
    await jobrecords.create(redis, job_id, kind, body.model_dump(mode="json", exclude_none=True))
    running = await initialsync.claim(redis, job_id)
    if running is not None and await _abandoned(request, running):
        running = await initialsync.claim(redis, job_id)
    if running is not None:
        await jobrecords.discard(redis, job_id)
        return problem(
            409,
            "initial-sync-running",
            f"initial sync {running} is queued or running; follow it at /admin/jobs/{running}",
            job_id=running,
            href=f"/admin/jobs/{running}",
        )
    return await enqueue_job(request, kind, job_id)


async def _abandoned(request: web.Request, job_id: str) -> bool:
    """Whether arq has given up on this job: then its record says so, failed."""
    redis: Redis = request.app[REDIS]
    created = await redis.hget(keys.admin_job(job_id), "created")
    if created is None or now_ms() - _ms(created.decode()) < QUEUEING_GRACE_MS:
        return False
    arq = ArqRedis(connection_pool=redis.connection_pool, job_serializer=orjson.dumps)
    queue = jobrecords.long_queue_name(request.app[SETTINGS].queue_name)
    if await Job(jobrecords.arq_job_id(job_id), arq, _queue_name=queue).status() != JobStatus.not_found:
        return False
    await jobrecords.update(
        redis, job_id, status="failed", finished=utc_now_iso(), error="abandoned: the queue no longer has this job"
    )
    return True


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/sync/initial", admin_only(initial_sync))
