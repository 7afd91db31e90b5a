"""GET /admin/trace?q=: what happened to the entity an operator names by a SKU, an order number, an email, an
event id or its entity name. Read from Redis alone (crmcore/trace.py); the gateway never asks the remotes."""

from __future__ import annotations

import orjson
from aiohttp import web

from crmcore import trace
from gateway.appkeys import REDIS
from gateway.guards import admin_only
from gateway.problems import bad_parameter, problem

MAX_QUERY_CHARS = 256  # the longest alias or event id kept (crmcore/timeline.py, crmcore/events.py)


async def get_trace(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    if not q:
        return bad_parameter("q", "required: a SKU, an order number, an email, an event id or an entity name")
    if len(q) > MAX_QUERY_CHARS:
        return bad_parameter("q", f"at most {MAX_QUERY_CHARS} characters")
    matches = await trace.lookup(request.app[REDIS], q)
    if not matches:
        return problem(
            404, "trace-not-found", "no entity, alias or event kept in the event log goes by this name", query=q
        )
    body = {"query": q, "matches": matches}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/trace", admin_only(get_trace))
