"""Admin API, health, readiness and metrics over real HTTP and Redis."""

from __future__ import annotations

import socket

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from crmcore import keys
from gateway.app import create_app
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET, envelope, new_id
from workers.registry import Registry

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ADMIN_GETS = ["/admin/status", "/admin/events", "/admin/events/x", "/admin/dead-letters", "/admin/dead-letters/x"]


@pytest.mark.parametrize("path", ADMIN_GETS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    ],
)
async def test_admin_needs_a_configured_bearer_token(gateway: TestClient, path: str, headers: dict) -> None:
    resp = await gateway.get(path, headers=headers)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_replay_needs_a_token_too(gateway: TestClient) -> None:
    assert (await gateway.post("/admin/dead-letters/x/replay")).status == 401


async def test_status_shows_queue_workers_and_no_secret(gateway: TestClient, start_worker) -> None:
    await post_event(gateway, "cloudretailer", envelope("product.updated", {"product_id": "P", "sku": "S"}))
    resp = await gateway.get("/admin/status", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200
    assert body["redis"] == "ok" and body["queue_depth"] == 1 and body["workers"] == []
    assert body["dead_letters"] == 0

    await start_worker(Registry())
    await wait_for(lambda: _status_workers(gateway))
    text = await (await gateway.get("/admin/status", headers=AUTH)).text()
    for secret in (ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET, "redis://"):
        assert secret not in text
    body = await (await gateway.get("/admin/status", headers=AUTH)).json()
    (worker,) = body["workers"]
    assert worker["age_seconds"] < 5 and worker["pid"] > 0 and body["queue_depth"] == 0


async def _status_workers(gateway: TestClient) -> bool:
    body = await (await gateway.get("/admin/status", headers=AUTH)).json()
    return bool(body["workers"]) and body["queue_depth"] == 0


async def test_event_log_record_and_listing(gateway: TestClient, start_worker) -> None:
    msg_id = new_id()
    await post_event(gateway, "cloudretailer", envelope("customer.updated", {"customer_id": "C-9"}), msg_id=msg_id)
    resp = await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)
    record = await resp.json()
    assert resp.status == 200
    assert record["id"] == msg_id and record["source"] == "cloudretailer" and record["type"] == "customer.updated"
    assert record["entity"] == "cloudretailer:customer:C-9" and record["status"] == "queued"
    assert record["attempts"] == 0 and record["last_error"] is None and record["data"] == {"customer_id": "C-9"}
    assert record["received_at"].endswith("Z")

    await start_worker(Registry())
    await wait_for(lambda: _event_status(gateway, msg_id, "skipped"))
    listing = await (await gateway.get("/admin/events?limit=5", headers=AUTH)).json()
    assert [i["id"] for i in listing["items"]] == [msg_id]
    skipped = await (await gateway.get("/admin/events?status=skipped", headers=AUTH)).json()
    assert len(skipped["items"]) == 1


async def _event_status(gateway: TestClient, msg_id: str, status: str) -> bool:
    body = await (await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)).json()
    return body.get("status") == status


async def test_same_id_from_both_sources_needs_a_source(gateway: TestClient) -> None:
    msg_id = new_id()
    await post_event(gateway, "cloudretailer", envelope("category.created", {"category_id": "D1"}), msg_id=msg_id)
    await post_event(gateway, "magento", envelope("category.created", {"category_id": 4}), msg_id=msg_id)
    ambiguous = await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)
    assert ambiguous.status == 409 and ambiguous.content_type == "application/problem+json"
    chosen = await gateway.get(f"/admin/events/{msg_id}?source=magento", headers=AUTH)
    assert (await chosen.json())["entity"] == "magento:category:4"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/admin/events?limit=0", "limit"),
        ("/admin/events?limit=abc", "limit"),
        ("/admin/events?status=happy", "status"),
        ("/admin/events/x?source=shopify", "source"),
        ("/admin/dead-letters?offset=-1", "offset"),
        ("/admin/dead-letters?limit=100000", "limit"),
    ],
)
async def test_bad_admin_parameters_are_400_naming_the_field(gateway: TestClient, path: str, field: str) -> None:
    resp = await gateway.get(path, headers=AUTH)
    assert resp.status == 400
    body = await resp.json(content_type=None)
    assert body["errors"][0]["field"] == field


async def test_unknown_ids_are_404(gateway: TestClient) -> None:
    for resp in (
        await gateway.get("/admin/events/nope", headers=AUTH),
        await gateway.get("/admin/dead-letters/nope", headers=AUTH),
        await gateway.post("/admin/dead-letters/nope/replay", headers=AUTH),
    ):
        assert resp.status == 404 and resp.content_type == "application/problem+json"


async def test_healthz_readyz_and_metrics(gateway: TestClient, redis: Redis, start_worker) -> None:
    assert (await gateway.get("/healthz")).status == 200
    not_ready = await gateway.get("/readyz")
    assert not_ready.status == 503
    assert "no worker" in (await not_ready.json(content_type=None))["detail"]

    await start_worker(Registry())
    await wait_for(lambda: _ready(gateway))
    # A heartbeat older than the limit makes the gateway unready again.
    await redis.zadd(keys.WORKERS, {"old-worker": 1})
    await post_event(gateway, "cloudretailer", envelope("product.updated", {"product_id": "P", "sku": "S"}))
    await post_event(gateway, "cloudretailer", b"nope")
    await wait_for(lambda: _metric(gateway, 'crmagento_jobs_total{outcome="skipped"} 1.0'))
    text = await (await gateway.get("/metrics")).text()
    assert 'crmagento_webhooks_total{outcome="queued",source="cloudretailer",type="product.updated"} 1.0' in text
    assert 'crmagento_webhooks_total{outcome="bad_request",source="cloudretailer",type="unknown"} 1.0' in text
    assert "crmagento_ingest_seconds_bucket" in text and "crmagento_queue_depth 0.0" in text
    assert "crmagento_workers_alive 1.0" in text


async def _ready(gateway: TestClient) -> bool:
    return (await gateway.get("/readyz")).status == 200


async def _metric(gateway: TestClient, line: str) -> bool:
    return line in await (await gateway.get("/metrics")).text()


async def test_readyz_reports_a_stale_worker(gateway: TestClient, redis: Redis) -> None:
    import time

    await redis.zadd(keys.WORKERS, {"host:1:abcd": time.time() - 120})
    resp = await gateway.get("/readyz")
    assert resp.status == 503
    assert "120 s old" in (await resp.json(content_type=None))["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/events"),
        ("GET", "/admin/events/some-id"),
        ("GET", "/admin/dead-letters"),
        ("GET", "/admin/dead-letters/dl-1"),
        ("POST", "/admin/dead-letters/dl-1/replay"),
    ],
)
async def test_admin_calls_answer_503_problem_when_redis_is_down(method: str, path: str) -> None:
    # A port nothing listens on: every Redis call fails to connect.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(f"redis://127.0.0.1:{port}/0")
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        resp = await client.request(method, path, headers=AUTH)
        assert resp.status == 503, await resp.text()
        assert resp.content_type == "application/problem+json"
        assert resp.headers["Retry-After"] == str(settings.retry_after_seconds)
        assert (await resp.json(content_type=None))["type"] == "urn:crmagento:problem:redis-unavailable"
    finally:
        await client.close()
