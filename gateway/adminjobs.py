"""Admin jobs over HTTP: force resyncs and the inventory reconciliation, run by the workers (the initial sync:
gateway/initialsync.py).

POST answers 202 with the job id once the job is recorded and queued; `GET /admin/jobs/{id}` shows its
status and progress. The request bodies are validated here, so a worker never sees a malformed job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NamedTuple

import orjson
from aiohttp import web
from arq.connections import ArqRedis
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from crmcore import jobrecords
from crmcore.jobrecords import AdminJobKind
from gateway.admin import json_answer as _json
from gateway.appkeys import REDIS, SETTINGS
from gateway.connections import BodyTimeout, read_body
from gateway.guards import admin_only
from gateway.problems import bad_parameter, body_refused, problem

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
MAX_IDS = 10_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductsResync(_Body):
    skus: Annotated[list[Id], Field(max_length=MAX_IDS)] | None = None
    product_ids: Annotated[list[Id], Field(max_length=MAX_IDS)] | None = None


class CategoriesResync(_Body):
    category_ids: Annotated[list[Id], Field(max_length=MAX_IDS)] | None = None


class CustomersResync(_Body):
    customer_ids: Annotated[list[Id], Field(max_length=MAX_IDS)] | None = None


class OrdersResync(_Body):
    order_ids: Annotated[list[Annotated[int, Field(gt=0, strict=True)]], Field(max_length=MAX_IDS)] | None = None
    since: datetime | None = None


class CatchupRun(_Body):
    """A catch-up run now (workers/sync/catchup): it reads from its own cursors, so it takes no parameters."""


class Resync(NamedTuple):
    kind: AdminJobKind
    body: type[_Body]


# `POST /admin/resync/{name}`: the admin job each name starts and the body it takes.
RESYNCS: dict[str, Resync] = {
    "products": Resync(AdminJobKind.RESYNC_PRODUCTS, ProductsResync),
    "categories": Resync(AdminJobKind.RESYNC_CATEGORIES, CategoriesResync),
    "customers": Resync(AdminJobKind.RESYNC_CUSTOMERS, CustomersResync),
    "orders": Resync(AdminJobKind.RESYNC_ORDERS, OrdersResync),
    "catchup": Resync(AdminJobKind.RESYNC_CATCHUP, CatchupRun),
}


async def _enqueue(request: web.Request, kind: AdminJobKind, params: dict[str, Any]) -> web.Response:
    job_id = jobrecords.new_job_id(kind)
    await jobrecords.create(request.app[REDIS], job_id, kind, params)
    return await enqueue_job(request, kind, job_id)


async def enqueue_job(request: web.Request, kind: AdminJobKind, job_id: str) -> web.Response:
    """Queue a recorded job for the workers; the 202 answer naming it."""
    redis = request.app[REDIS]
    # orjson, like the workers' job_deserializer (never pickle); the gateway only names the job function.
    arq = ArqRedis(connection_pool=redis.connection_pool, job_serializer=orjson.dumps)
    await arq.enqueue_job(
        jobrecords.RUN_ADMIN_JOB,
        job_id,
        _job_id=jobrecords.arq_job_id(job_id),
        _queue_name=jobrecords.long_queue_name(request.app[SETTINGS].queue_name),
    )
    return _json({"job_id": job_id, "kind": kind, "status": "queued", "href": f"/admin/jobs/{job_id}"}, 202)


async def resync(request: web.Request) -> web.Response:
    wanted = RESYNCS.get(request.match_info["kind"])
    if wanted is None:
        return problem(404, "unknown-resync", f"resync one of: {', '.join(RESYNCS)}")
    try:
        raw = await read_body(request)
    except BodyTimeout as exc:
        return exc.answer()
    try:
        body = wanted.body.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        return body_refused(exc)
    return await _enqueue(request, wanted.kind, body.model_dump(mode="json", exclude_none=True))


async def reconcile_inventory(request: web.Request) -> web.Response:
    raw = request.query.get("dry_run", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        return bad_parameter("dry_run", "must be true or false")
    return await _enqueue(request, AdminJobKind.RECONCILE_INVENTORY, {"dry_run": raw in ("true", "1")})


async def get_job(request: web.Request) -> web.Response:
    record = await jobrecords.get(request.app[REDIS], request.match_info["job_id"])
    if record is None:
        return problem(404, "job-not-found", "no admin job with this id in the last 7 days")
    return _json(record)


async def list_jobs(request: web.Request) -> web.Response:
    return _json({"items": await jobrecords.recent(request.app[REDIS])})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/resync/{kind}", admin_only(resync))
    app.router.add_post("/admin/reconcile/inventory", admin_only(reconcile_inventory))
    app.router.add_get("/admin/jobs", admin_only(list_jobs))
    app.router.add_get("/admin/jobs/{job_id}", admin_only(get_job))
