"""gateway/guards.py: without middlewares, every route must still answer errors as problem+json, every admin
route must still need a token, and what no route matches must still get 404 or 405 with Allow."""

from __future__ import annotations

import re

import orjson
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from crmcore.events import Source
from gateway.appkeys import METRICS, VERIFIERS
from gateway.guards import FALLBACK_ROUTE
from tests.conftest import post_event
from tests.support.signing import ADMIN_TOKEN, envelope

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROBLEM = "application/problem+json"


async def _problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    return orjson.loads(await resp.read())


def _routes(gateway: TestClient) -> list[tuple[str, str]]:
    app = gateway.server.app
    assert app is not None
    out = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None or route.resource.name == FALLBACK_ROUTE:
            continue
        out.append((route.method, re.sub(r"\{[^}]+\}", "x", route.resource.canonical)))
    return out


async def test_every_admin_route_needs_a_token(gateway: TestClient) -> None:
    admin = [(m, p) for m, p in _routes(gateway) if p.startswith("/admin/") and not p.startswith("/admin/ui")]
    assert len(admin) >= 10
    for method, path in admin:
        resp = await gateway.request(method, path)
        await _problem(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)


async def test_unknown_admin_paths_need_a_token_before_they_are_404(gateway: TestClient) -> None:
    await _problem(await gateway.get("/admin/nope"), 401)
    await _problem(await gateway.delete("/admin/status"), 401)
    await _problem(await gateway.get("/admin/nope", headers=AUTH), 404)


async def test_the_dashboard_files_are_public(gateway: TestClient) -> None:
    assert (await gateway.get("/admin/ui")).status == 200
    resp = await gateway.post("/admin/ui")  # the page's own route: a wrong method, not a missing token
    await _problem(resp, 405)
    assert resp.headers["Allow"] == "GET,HEAD"
    await _problem(await gateway.get("/admin/ui/nope.js"), 404)


async def test_no_route_is_404_and_a_wrong_method_is_405_with_allow(gateway: TestClient) -> None:
    for path in ("/", "/nope", "/webhooks", "/webhooks/shopify", "/healthz/x", "/%2e%2e/etc/passwd"):
        body = await _problem(await gateway.get(path), 404)
        assert body["type"] == "urn:crmagento:problem:not-found"
    cases = [
        ("GET", "/webhooks/cloudretailer", "POST"),
        ("PUT", "/webhooks/magento", "POST"),
        ("POST", "/healthz", "GET,HEAD"),
        ("DELETE", "/metrics", "GET,HEAD"),
    ]
    for method, path, allow in cases:
        resp = await gateway.request(method, path)
        body = await _problem(resp, 405)
        assert resp.headers["Allow"] == allow and body["type"] == "urn:crmagento:problem:method-not-allowed"
    resp = await gateway.delete("/admin/events/x", headers=AUTH)
    await _problem(resp, 405)
    assert resp.headers["Allow"] == "GET,HEAD"


async def test_a_bug_on_the_webhook_path_is_a_logged_500_problem(gateway: TestClient, redis: Redis) -> None:
    class Broken:
        def verify(self, headers: object, body: bytes) -> None:
            raise RuntimeError("a bug, not an input")

    app = gateway.server.app
    assert app is not None
    app[VERIFIERS][Source.MAGENTO] = Broken()  # type: ignore[assignment]
    resp = await post_event(gateway, "magento", envelope("order.completed", {"order_id": 5, "increment_id": "5"}))
    body = await _problem(resp, 500)
    assert body["type"] == "urn:crmagento:problem:internal-error" and "bug" not in body["detail"]
    assert app[METRICS].webhooks.counts[("magento", "unknown", "error")] == 1
    # The other source is untouched.
    assert (
        await post_event(gateway, "cloudretailer", envelope("customer.updated", {"customer_id": "C"}))
    ).status == 202
