"""Call counts per method and route for the sandbox servers (`GET/DELETE /_sandbox/stats`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import orjson
from aiohttp import web

from sandbox.faults import SANDBOX_PREFIX


class Stats:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def key(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else request.path
        return f"{request.method} {path}"

    def count(self, method: str, route: str) -> int:
        return self.calls[f"{method} {route}"]

    def middleware(self) -> web.middleware:
        @web.middleware
        async def count(request: web.Request, handler: Callable) -> web.StreamResponse:
            if not request.path.startswith(SANDBOX_PREFIX):
                self.calls[self.key(request)] += 1
            return await handler(request)

        return count

    async def get(self, request: web.Request) -> web.Response:
        body = {"total": sum(self.calls.values()), "calls": dict(sorted(self.calls.items()))}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def delete(self, request: web.Request) -> web.Response:
        self.calls.clear()
        return web.Response(body=b'{"total":0,"calls":{}}', content_type="application/json")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(SANDBOX_PREFIX + "stats", self.get)
        app.router.add_delete(SANDBOX_PREFIX + "stats", self.delete)
