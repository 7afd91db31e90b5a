"""The webhook edge against the answer table (docs/design.md, The webhook contract): every row, over real HTTP
and Redis."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from crmcore import keys
from crmcore.entityqueue import JOB_EXPIRE_MS
from crmcore.eventlog import decode_record
from gateway.app import create_app
from tests.conftest import make_settings, post_event
from tests.support.signing import (
    CR_SECRET,
    CR_SECRET_NEXT,
    MAGENTO_SECRET,
    envelope,
    new_id,
    sign_headers,
)

PRODUCT = {"product_id": "P-1", "sku": "SKU-1"}
PROBLEM = "application/problem+json"


async def _problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    body = await resp.json(content_type=None)
    assert body["status"] == status and body["type"].startswith("urn:crmagento:problem:")
    assert body["title"] and body["detail"]
    return body


async def test_queued_then_duplicate(gateway: TestClient, redis: Redis) -> None:
    body = envelope("product.updated", PRODUCT)
    msg_id = new_id()
    first = await post_event(gateway, "cloudretailer", body, msg_id=msg_id)
    assert first.status == 202
    assert await first.json() == {"id": msg_id, "status": "queued"}
    again = await post_event(gateway, "cloudretailer", body, msg_id=msg_id)
    assert again.status == 200
    assert await again.json() == {"id": msg_id, "status": "duplicate"}

    record = decode_record(await redis.hgetall(keys.event(f"cloudretailer:{msg_id}")))
    assert record["status"] == "queued" and record["entity"] == "cloudretailer:product:P-1"
    assert record["attempts"] == 0 and record["updated_at"] == record["received_at"]
    # Kept 7 days, then gone: bounded memory without a sweeper. The record is also the dedupe marker.
    assert 7 * 86400 - 60 < await redis.ttl(keys.event(f"cloudretailer:{msg_id}")) <= 7 * 86400
    assert await redis.zcard("crmagento:queue") == 1


async def test_dedupe_window_is_the_longer_of_the_two_ttls(redis_url: str, redis: Redis) -> None:
    # The event record doubles as the dedupe marker, so a dedupe window longer than the event log's keeps the
    # record that long: a redelivery inside the window is still a duplicate.
    for dedupe, log, kept in ((7200, 3600, 7200), (3600, 5400, 5400)):
        settings = make_settings(redis_url, dedupe_ttl_seconds=dedupe, event_log_ttl_seconds=log)
        async with TestClient(TestServer(create_app(settings))) as client:
            msg_id = new_id()
            body = envelope("customer.updated", {"customer_id": "C-ttl"})
            assert (await post_event(client, "cloudretailer", body, msg_id=msg_id)).status == 202
            assert kept - 60 < await redis.ttl(keys.event(f"cloudretailer:{msg_id}")) <= kept
            assert (await post_event(client, "cloudretailer", body, msg_id=msg_id)).status == 200


async def test_job_is_json_not_pickle(gateway: TestClient, redis: Redis) -> None:
    resp = await post_event(gateway, "cloudretailer", envelope("product.updated", PRODUCT))
    assert resp.status == 202
    (job_id,) = await redis.zrange("crmagento:queue", 0, -1)
    raw = await redis.get(b"arq:job:" + job_id)
    job = orjson.loads(raw)  # a pickle would not parse; JSON can never run code when loaded
    assert job["f"] == "process_entity" and job["a"] == ["cloudretailer:product:P-1"]
    assert 0 < await redis.pttl(b"arq:job:" + job_id) <= JOB_EXPIRE_MS


async def test_dedupe_is_per_source(gateway: TestClient) -> None:
    msg_id = new_id()
    cr = await post_event(gateway, "cloudretailer", envelope("product.updated", PRODUCT), msg_id=msg_id)
    mg = await post_event(
        gateway, "magento", envelope("order.completed", {"order_id": 7, "increment_id": "0007"}), msg_id=msg_id
    )
    assert (cr.status, mg.status) == (202, 202)


async def test_fifty_identical_deliveries_at_once_queue_one(gateway: TestClient, redis: Redis) -> None:
    body = envelope("inventory.updated", {"sku": "SKU-9", "store_id": "S1", "on_hand": 3})
    msg_id = new_id()
    answers = await asyncio.gather(*(post_event(gateway, "cloudretailer", body, msg_id=msg_id) for _ in range(50)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] * 49 + [202]
    assert await redis.zcard("crmagento:queue") == 1
    assert await redis.llen(keys.pending("cloudretailer:inventory:S1:SKU-9")) == 1


async def test_unknown_type_is_ignored_and_not_queued(gateway: TestClient, redis: Redis) -> None:
    msg_id = new_id()
    resp = await post_event(gateway, "cloudretailer", envelope("product.tagged", {"x": 1}), msg_id=msg_id)
    assert resp.status == 202
    assert await resp.json() == {"id": msg_id, "status": "ignored"}
    assert await redis.zcard("crmagento:queue") == 0
    # A Magento-only type sent to the Cloud Retailer endpoint is unknown there too.
    resp = await post_event(gateway, "cloudretailer", envelope("order.completed", {"order_id": 1}))
    assert (await resp.json())["status"] == "ignored"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json at all", None),
        (b'{"type": "product.updated", "timestamp": "2026-01-01T00:00:00Z"', None),
        (b"[1, 2, 3]", "body"),
        (b'{"timestamp": "2026-01-01T00:00:00Z", "data": {}}', "type"),
        (b'{"type": "product.updated", "data": {}}', "timestamp"),
        (b'{"type": "product.updated", "timestamp": "yesterday", "data": {}}', "timestamp"),
        (b'{"type": "product.updated", "timestamp": "2026-01-01T00:00:00Z", "data": [1]}', "data"),
        (b'{"type": "", "timestamp": "2026-01-01T00:00:00Z", "data": {}}', "type"),
    ],
)
async def test_bad_envelope_is_400(gateway: TestClient, redis: Redis, body: bytes, field: str | None) -> None:
    resp = await post_event(gateway, "cloudretailer", body)
    problem = await _problem(resp, 400)
    if field:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert await redis.zcard("crmagento:queue") == 0


@pytest.mark.parametrize(
    ("source", "event_type", "data", "field"),
    [
        ("cloudretailer", "product.updated", {"sku": "S"}, "data.product_id"),
        ("cloudretailer", "product.updated", {"product_id": "P", "sku": ""}, "data.sku"),
        ("cloudretailer", "inventory.updated", {"sku": "S", "store_id": "1", "on_hand": "many"}, "data.on_hand"),
        ("cloudretailer", "customer.created", {}, "data.customer_id"),
        ("cloudretailer", "category.updated", {"category_id": None}, "data.category_id"),
        ("magento", "order.completed", {"order_id": "12", "increment_id": "0012"}, "data.order_id"),
        ("magento", "order.completed", {"order_id": -1, "increment_id": "0012"}, "data.order_id"),
        ("magento", "customer.created", {"customer_id": 1.5}, "data.customer_id"),
        ("magento", "category.created", {}, "data.category_id"),
    ],
)
async def test_known_type_with_bad_data_is_422_naming_the_field(
    gateway: TestClient, redis: Redis, source: str, event_type: str, data: dict, field: str
) -> None:
    msg_id = new_id()
    resp = await post_event(gateway, source, envelope(event_type, data), msg_id=msg_id)
    problem = await _problem(resp, 422)
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"] and problem["id"] == msg_id
    assert await redis.zcard("crmagento:queue") == 0
    # A refused delivery is not remembered: the sender's corrected retry with the same id is accepted.
    assert not await redis.exists(keys.event(f"{source}:{msg_id}"))


async def test_unsigned_stale_future_and_wrong_signatures_are_401(gateway: TestClient, redis: Redis) -> None:
    body = envelope("product.updated", PRODUCT)
    no_headers = await gateway.post("/webhooks/cloudretailer", data=body, headers={"content-type": "application/json"})
    await _problem(no_headers, 401)
    stale = await post_event(gateway, "cloudretailer", body, timestamp=time.time() - 301)
    assert "webhook-timestamp" in (await _problem(stale, 401))["detail"]
    future = await post_event(gateway, "cloudretailer", body, timestamp=time.time() + 301)
    await _problem(future, 401)
    wrong_source = await post_event(gateway, "cloudretailer", body, secret=MAGENTO_SECRET)
    await _problem(wrong_source, 401)
    # A valid signature over a different body.
    headers = sign_headers(CR_SECRET, new_id(), body)
    tampered = await gateway.post("/webhooks/cloudretailer", data=body.replace(b"P-1", b"P-2"), headers=headers)
    await _problem(tampered, 401)
    within = await post_event(gateway, "cloudretailer", body, timestamp=time.time() - 290)
    assert within.status == 202
    assert await redis.zcard("crmagento:queue") == 1


async def test_replayed_delivery_outside_the_window_is_refused(gateway: TestClient) -> None:
    """A captured delivery replayed later fails on its timestamp; within the window it is a duplicate."""
    body = envelope("product.updated", PRODUCT)
    msg_id = new_id()
    headers = sign_headers(CR_SECRET, msg_id, body, timestamp=time.time() - 200)
    assert (await gateway.post("/webhooks/cloudretailer", data=body, headers=headers)).status == 202
    assert (await gateway.post("/webhooks/cloudretailer", data=body, headers=headers)).status == 200
    old = sign_headers(CR_SECRET, msg_id, body, timestamp=time.time() - 3600)
    await _problem(await gateway.post("/webhooks/cloudretailer", data=body, headers=old), 401)


async def test_secret_rotation_accepts_any_configured_secret(redis_url: str, redis: Redis) -> None:
    from pydantic import SecretStr

    settings = make_settings(redis_url, cr_webhook_secrets=[SecretStr(CR_SECRET), SecretStr(CR_SECRET_NEXT)])
    async with TestClient(TestServer(create_app(settings))) as client:
        old = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT), secret=CR_SECRET)
        new = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT), secret=CR_SECRET_NEXT)
        assert (old.status, new.status) == (202, 202)
    # After rotation the old secret is gone from the list and refused.
    settings = make_settings(redis_url, cr_webhook_secrets=[SecretStr(CR_SECRET_NEXT)])
    async with TestClient(TestServer(create_app(settings))) as client:
        old = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT), secret=CR_SECRET)
        assert old.status == 401


async def test_no_secret_configured_refuses_everything(redis_url: str, redis: Redis) -> None:
    settings = make_settings(redis_url, magento_webhook_secrets=[])
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await post_event(
            client, "magento", envelope("customer.created", {"customer_id": 3}), secret=MAGENTO_SECRET
        )
        assert "no secret" in (await _problem(resp, 401))["detail"]


async def test_body_limit_is_413(redis_url: str, redis: Redis) -> None:
    settings = make_settings(redis_url, max_body_bytes=2048)
    async with TestClient(TestServer(create_app(settings))) as client:
        big = envelope("product.updated", {**PRODUCT, "padding": "x" * 4000})
        await _problem(await post_event(client, "cloudretailer", big), 413)

        async def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(10):
                yield b"x" * 1000

        headers = sign_headers(CR_SECRET, new_id(), b"")
        await _problem(await client.post("/webhooks/cloudretailer", data=chunks(), headers=headers), 413)
        small = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT))
        assert small.status == 202
    assert await redis.zcard("crmagento:queue") == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""])
async def test_not_json_content_is_415(gateway: TestClient, content_type: str) -> None:
    resp = await post_event(
        gateway, "cloudretailer", envelope("product.updated", PRODUCT), headers={"content-type": content_type}
    )
    await _problem(resp, 415)


async def test_json_with_charset_and_vendor_types_are_accepted(gateway: TestClient) -> None:
    for ctype in ("application/json; charset=utf-8", "application/webhook+json"):
        resp = await post_event(
            gateway, "cloudretailer", envelope("product.updated", PRODUCT), headers={"content-type": ctype}
        )
        assert resp.status == 202, ctype


async def test_redis_down_is_503_with_retry_after_and_nothing_acknowledged(redis: Redis) -> None:
    # A port nothing listens on: the gateway must refuse to acknowledge rather than pretend.
    settings = make_settings("redis://127.0.0.1:1/0", ingest_timeout_seconds=2)
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT))
        await _problem(resp, 503)
        assert resp.headers["Retry-After"] == "5"


async def test_unknown_paths_and_methods_are_problems(gateway: TestClient) -> None:
    await _problem(await gateway.get("/webhooks/cloudretailer"), 405)
    await _problem(await gateway.post("/webhooks/shopify", data=b"{}"), 404)


async def test_entities_by_event_type(gateway: TestClient, redis: Redis) -> None:
    cases = [
        ("cloudretailer", "product.images.updated", PRODUCT, "cloudretailer:product:P-1"),
        ("cloudretailer", "inventory.updated", {"sku": "A", "store_id": "S"}, "cloudretailer:inventory:S:A"),
        ("cloudretailer", "category.created", {"category_id": "C"}, "cloudretailer:category:C"),
        ("cloudretailer", "customer.updated", {"customer_id": "K"}, "cloudretailer:customer:K"),
        ("magento", "order.completed", {"order_id": 5, "increment_id": "5"}, "magento:order:5"),
        ("magento", "customer.created", {"customer_id": 6}, "magento:customer:6"),
        ("magento", "category.created", {"category_id": 8}, "magento:category:8"),
    ]
    for source, event_type, data, entity in cases:
        msg_id = new_id()
        resp = await post_event(gateway, source, envelope(event_type, data), msg_id=msg_id)
        assert resp.status == 202, (event_type, await resp.text())
        assert await redis.hget(keys.event(f"{source}:{msg_id}"), "entity") == entity.encode()


async def test_garbage_never_gives_500(gateway: TestClient) -> None:
    """Odd but signed inputs: deep nesting, huge numbers, unicode, nulls. Each gets a 2xx or a 4xx."""
    bodies = [
        b'{"type": "product.updated", "timestamp": "2026-01-01T00:00:00Z", "data": ' + b"[" * 500 + b"]" * 500 + b"}",
        b'{"type": "product.updated", "timestamp": 1e999, "data": {}}',
        b'{"type": "product.updated", "timestamp": "2026-01-01T00:00:00Z", "data": {"product_id": "\\u0000"}}',
        b'{"type": "\xff\xfe", "timestamp": 0, "data": {}}',
        b'{"type": null, "timestamp": null, "data": null}',
        b"\x00\x01\x02",
        b"",
        b'{"type": "magento.x", "timestamp": "2026-01-01T00:00:00Z", "data": {"order_id": 99999999999999999999999}}',
    ]
    for body in bodies:
        resp = await post_event(gateway, "cloudretailer", body)
        assert resp.status < 500, (body[:60], resp.status, await resp.text())
    odd_headers = [
        {"webhook-id": "x" * 300},
        {"webhook-id": "bad\nid"},
        {"webhook-timestamp": "not-a-number"},
        {"webhook-signature": "v1,@@@ v2,abc v1,"},
    ]
    for extra in odd_headers:
        body = envelope("product.updated", PRODUCT)
        headers = {**sign_headers(CR_SECRET, new_id(), body), **extra}
        try:
            resp = await gateway.post("/webhooks/cloudretailer", data=body, headers=headers)
        except ValueError:  # the client itself refuses a newline in a header: nothing to test
            continue
        assert resp.status == 401, extra
