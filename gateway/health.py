"""Load-balancer and monitoring endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway import status
from gateway.appkeys import METRICS, REDIS, SETTINGS
from gateway.guards import public
from gateway.problems import problem

_REDIS_PROBE_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _snapshot(app: web.Application, *, full: bool = True) -> dict | None:
    """`full=False`: without the parts /readyz has no use for (parked events, the per-domain figures)."""
    try:
        snap = status.snapshot(app[REDIS], app[SETTINGS].queue_name, parked_events=full, with_domains=full)
        return await asyncio.wait_for(snap, _REDIS_PROBE_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError):
        return None


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    snap = await _snapshot(app, full=False)
    if snap is None:
        return problem(503, "not-ready", "Redis does not answer", redis="unavailable")
    age = status.freshest_worker_age(snap)
    max_age = app[SETTINGS].ready_worker_max_age_seconds
    if age is None or age > max_age:
        seen = "no worker has ever reported" if age is None else f"the newest worker heartbeat is {age:.0f} s old"
        return problem(503, "not-ready", f"{seen} (limit {max_age} s)", redis="ok")
    body = {"status": "ready", "redis": "ok", "worker_heartbeat_age_seconds": age}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    m = app[METRICS]
    snap = await _snapshot(app)
    if snap is not None:
        m.queue_depth.set(snap["queue_depth"])
        m.dead_letters.set(snap["dead_letters"])
        max_age = app[SETTINGS].ready_worker_max_age_seconds
        m.workers_alive.set(sum(1 for w in snap["workers"] if w["age_seconds"] <= max_age))
        m.job_outcomes.snapshot = {k: float(v) for k, v in snap["jobs"].items()}
        for remote, state in snap["remotes"].items():
            m.remote_up.labels(remote=remote).set(1 if state["state"] == "up" else 0)
            m.parked_events.labels(remote=remote).set(state["parked_events"])
        m.sync_health.update(snap)
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", public(healthz))
    app.router.add_get("/readyz", public(readyz))
    app.router.add_get("/metrics", public(metrics))
