"""Fault injection for the sandbox servers: latency, errors, 429 storms, dropped connections, timeouts, and
a proxy's maintenance page (200 text/html instead of the API's JSON).

Rules are set at start or live through `/_sandbox/faults`. A rule applies to the requests whose
"METHOD /path" matches its glob (`*` for all), e.g. `"POST /rest/*/V1/inventory/source-items"`.
Per matching rule, in this order: the delay, then drop, timeout, 429, error, page (the first that rolls true
wins; a rate of 0 never rolls, so adding a kind of fault leaves the rolls of the others unchanged).
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections.abc import Callable
from typing import Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SANDBOX_PREFIX = "/_sandbox/"
# What a reverse proxy or CDN in front of a store in maintenance serves: 200, HTML, not the API's JSON.
MAINTENANCE_PAGE = (
    "<!doctype html><html><head><title>Service Temporarily Unavailable</title></head><body>"
    "<h1>Service Temporarily Unavailable</h1>"
    "<p>The server is temporarily unable to service your request due to maintenance downtime.</p>"
    "</body></html>"
)


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: str = Field(default="*", description='glob on "METHOD /path", e.g. "GET /rest/*/V1/products*"')
    latency_ms: float = Field(default=0, ge=0)
    jitter_ms: float = Field(default=0, ge=0)
    error_rate: float = Field(default=0, ge=0, le=1)
    error_status: Literal[500, 502, 503, 504] = 503
    rate_limit_rate: float = Field(default=0, ge=0, le=1, description="share of requests answered 429")
    retry_after_seconds: int = Field(default=1, ge=0)
    drop_rate: float = Field(default=0, ge=0, le=1, description="share of connections closed without answer")
    timeout_rate: float = Field(default=0, ge=0, le=1, description="share of requests that never answer")
    page_rate: float = Field(
        default=0, ge=0, le=1, description="share answered 200 text/html with a maintenance page (a proxy's)"
    )

    def matches(self, key: str) -> bool:
        return self.match == "*" or fnmatch.fnmatchcase(key, self.match)


RULES = TypeAdapter(list[FaultRule])
ErrorBody = Callable[[int, str], web.Response]


class Faults:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = list(rules or [])
        self.random = random.Random(seed)

    def for_request(self, key: str) -> list[FaultRule]:
        return [r for r in self.rules if r.matches(key)]

    def middleware(self, error_body: ErrorBody) -> web.middleware:
        @web.middleware
        async def inject(request: web.Request, handler: Callable) -> web.StreamResponse:
            if request.path.startswith(SANDBOX_PREFIX) or not self.rules:
                return await handler(request)
            for rule in self.for_request(f"{request.method} {request.path}"):
                delay = rule.latency_ms + (self.random.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0)
                if delay:
                    await asyncio.sleep(delay / 1000)
                roll = self.random.random
                if rule.drop_rate and roll() < rule.drop_rate:
                    if request.transport is not None:
                        request.transport.close()
                    raise ConnectionResetError("sandbox fault: connection dropped")
                if rule.timeout_rate and roll() < rule.timeout_rate:
                    await asyncio.sleep(3600)
                if rule.rate_limit_rate and roll() < rule.rate_limit_rate:
                    resp = error_body(429, "Too many requests. Retry later.")
                    resp.headers["Retry-After"] = str(rule.retry_after_seconds)
                    return resp
                if rule.error_rate and roll() < rule.error_rate:
                    return error_body(rule.error_status, "Sandbox fault: internal error.")
                if rule.page_rate and roll() < rule.page_rate:
                    return maintenance_page()
            return await handler(request)

        return inject

    async def get(self, request: web.Request) -> web.Response:
        return _json([r.model_dump() for r in self.rules])

    async def put(self, request: web.Request) -> web.Response:
        """Replace the rules with the JSON list in the body."""
        try:
            self.rules = RULES.validate_json(await request.read())
        except ValidationError as exc:
            errors = [
                {"field": ".".join(map(str, e["loc"])), "reason": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            return web.Response(
                status=422,
                body=orjson.dumps({"title": "invalid fault rules", "status": 422, "errors": errors}),
                content_type="application/problem+json",
            )
        return _json([r.model_dump() for r in self.rules])

    async def delete(self, request: web.Request) -> web.Response:
        self.rules = []
        return _json([])

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(SANDBOX_PREFIX + "faults", self.get)
        app.router.add_put(SANDBOX_PREFIX + "faults", self.put)
        app.router.add_delete(SANDBOX_PREFIX + "faults", self.delete)


def maintenance_page() -> web.Response:
    """200 with a proxy's HTML page, the same for both sandboxes (it never reaches the API behind it)."""
    return web.Response(text=MAINTENANCE_PAGE, content_type="text/html", charset="utf-8")


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
