"""GET /admin/series: the per-minute series (crmcore/series.py) of the last hour or day, for the dashboard."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from crmcore import series
from crmcore.clock import iso_ms, now_ms
from gateway.appkeys import REDIS
from gateway.guards import admin_only
from gateway.problems import bad_parameter

WINDOWS = {"hour": 60, "day": series.DAY_MINUTES}


def point(minute: int, counted: series.Minute) -> dict[str, Any]:
    """One minute as the API shows it: all domains summed; `queue_depth` null when no sample fell in it."""
    buckets = counted.lag_buckets()
    return {
        "t": iso_ms(minute * series.MINUTE_MS),
        "received": counted.received,
        "applied": sum(counted.applied.values()),
        "failed": sum(counted.failed.values()),
        "queue_depth": counted.queue_depth,
        "lag_p50_ms": series.percentile(buckets, 0.5),
        "lag_p99_ms": series.percentile(buckets, 0.99),
    }


async def get_series(request: web.Request) -> web.Response:
    window = request.query.get("window", "hour")
    if window not in WINDOWS:
        return bad_parameter("window", f"must be one of {', '.join(WINDOWS)}")
    # A Redis error is the guard's to answer (503 redis-unavailable, gateway/guards.py).
    minutes = await series.read_minutes(request.app[REDIS], series.minute_of(now_ms()), WINDOWS[window])
    body = {"window": window, "step_seconds": 60, "points": [point(m, counted) for m, counted in minutes]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/series", admin_only(get_series))
