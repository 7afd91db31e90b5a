"""Admin jobs end to end: POST /admin/resync/... and /admin/reconcile/inventory queue a job that a real arq
worker runs, with progress and result at GET /admin/jobs/{id}; bad bodies get problem+json. Also the
binder (id mapping) and feeding resync changes through the webhook pipeline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from crmcore import jobrecords, keys
from crmcore.events import AcceptedEvent, ProductEvent, Source
from crmcore.jobrecords import AdminJobKind, feed_origin
from tests.conftest import post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope
from workers.binder import Binder
from workers.errors import PermanentError
from workers.feed import Feeder, feed
from workers.registry import HandlerContext, Progress, Registry

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROBLEM = "application/problem+json"


async def _job(gateway: TestClient, job_id: str) -> dict[str, Any]:
    resp = await gateway.get(f"/admin/jobs/{job_id}", headers=AUTH)
    assert resp.status == 200
    return await resp.json()


async def _finished(gateway: TestClient, job_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = await _job(gateway, job_id)
        return job if job["status"] in ("done", "failed") else None

    return await wait_for(done, within=15)


async def _settled(redis: Redis, job_id: str, count: int) -> bool:
    return int(await redis.hget(keys.admin_job(job_id), "done") or 0) >= count


async def test_resync_job_feeds_changes_through_the_handlers_with_progress(gateway, redis, settings, start_worker):
    seen: list[list[str]] = []

    async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        ids = params["product_ids"]
        changes = [(Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id=i, sku=f"S-{i}")) for i in ids]
        queued = await feed(ctx.redis, ctx.settings, feed_origin(ctx.job_id), changes)
        # Let the workers settle every change before reporting the total: a progress call must never undo
        # the counts the workers made (a fast fan-out settles changes while it is still feeding).
        await wait_for(lambda: _settled(ctx.redis, ctx.job_id, queued))
        await progress(total=queued)
        return {"queued": queued}

    async def on_product(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        seen.append([e.data["product_id"] for e in events])

    registry = Registry()
    registry.register_job("resync-products", resync_products)
    registry.register(Source.CLOUDRETAILER, "product.updated", on_product)
    await start_worker(registry)

    resp = await gateway.post("/admin/resync/products", json={"product_ids": ["P-1", "P-2", "P-3"]}, headers=AUTH)
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "queued" and body["href"] == f"/admin/jobs/{body['job_id']}"
    job = await _finished(gateway, body["job_id"])
    assert job["status"] == "done", job
    assert job["result"] == {"queued": 3}
    # Done only once every fanned-out change is settled by its entity's job.
    assert job["progress"] == {"done": 3, "failed": 0, "total": 3}
    assert job["params"] == {"product_ids": ["P-1", "P-2", "P-3"]}
    await wait_for(lambda: len(seen) == 3)
    assert sorted(x for batch in seen for x in batch) == ["P-1", "P-2", "P-3"]
    # The fed changes are in the event log like webhooks.
    events = await (await gateway.get("/admin/events", headers=AUTH)).json()
    assert {e["id"].split(":")[0] for e in events["items"]} == {"job"}


async def test_a_failing_job_and_a_job_without_handler_are_failed_with_the_reason(gateway, redis, start_worker):
    async def broken(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        raise PermanentError("Magento is not configured: set CRMAGENTO_MAGENTO_URL")

    registry = Registry()
    registry.register_job("reconcile-inventory", broken)
    await start_worker(registry)
    first = await (await gateway.post("/admin/reconcile/inventory?dry_run=true", headers=AUTH)).json()
    second = await (
        await gateway.post("/admin/resync/orders", json={"since": "2026-01-01T00:00:00Z"}, headers=AUTH)
    ).json()
    job = await _finished(gateway, first["job_id"])
    assert job["status"] == "failed" and "CRMAGENTO_MAGENTO_URL" in job["error"]
    assert job["params"] == {"dry_run": True}
    job = await _finished(gateway, second["job_id"])
    assert job["status"] == "failed" and "no handler" in job["error"]
    listed = await (await gateway.get("/admin/jobs", headers=AUTH)).json()
    assert {j["id"] for j in listed["items"]} >= {first["job_id"], second["job_id"]}


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/admin/resync/products", b"{not json", 400, None),
        ("/admin/resync/products", b'{"product_ids": "P-1"}', 422, "product_ids"),
        ("/admin/resync/products", b'{"skus": ["a"], "colour": 1}', 422, "colour"),
        ("/admin/resync/products", b'{"skus": [""]}', 422, "skus.0"),
        ("/admin/resync/orders", b'{"order_ids": ["12"]}', 422, "order_ids.0"),
        ("/admin/resync/orders", b'{"since": "yesterday"}', 422, "since"),
        ("/admin/resync/customers", b'{"customer_ids": [""]}', 422, "customer_ids.0"),
        ("/admin/resync/widgets", b"{}", 404, None),
        ("/admin/reconcile/inventory?dry_run=maybe", b"", 400, "dry_run"),
    ],
)
async def test_bad_admin_job_requests_are_problems_and_queue_nothing(gateway, redis, path, body, status, field):
    resp = await gateway.post(path, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    problem = await resp.json(content_type=None)
    if field:
        assert field in [e["field"] for e in problem["errors"]]
    assert await redis.zcard("crmagento:queue") == 0


async def test_admin_jobs_need_the_token(gateway, redis):
    resp = await gateway.post("/admin/resync/products", json={})
    assert resp.status == 401
    assert await redis.zcard("crmagento:queue") == 0


async def test_binder_keeps_both_directions_and_bind_new_picks_one_winner(redis: Redis):
    binder = Binder(redis)
    assert await binder.bind_new("category", "CR-1", 10) is None
    assert await binder.magento_id("category", "CR-1") == "10"
    assert await binder.cr_id("category", 10) == "CR-1"
    # A racing creator of the same CR record, or of the same Magento record, learns the existing side.
    assert await binder.bind_new("category", "CR-1", 11) == ("cr", "10")
    assert await binder.bind_new("category", "CR-2", 10) == ("mg", "CR-1")
    results = await asyncio.gather(*(binder.bind_new("customer", "C-9", 100 + i) for i in range(10)))
    assert sum(r is None for r in results) == 1
    # A corrected binding drops the old counterpart in both directions.
    await binder.bind("category", "CR-1", 12)
    assert await binder.cr_id("category", 10) is None
    assert await binder.cr_id("category", 12) == "CR-1"
    await binder.unbind("category", "CR-1")
    assert await binder.magento_id("category", "CR-1") is None and await binder.cr_id("category", 12) is None


async def test_feeding_the_same_origin_twice_queues_once(redis: Redis, settings):
    changes = [(Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id="P-7", sku="S-7"))]
    assert await feed(redis, settings, feed_origin("job-1"), changes) == 1
    assert await feed(redis, settings, feed_origin("job-1"), changes) == 0


async def _idle(redis: Redis, *product_ids: str) -> bool:
    """Every change of these products settled and its job over (so its job record counts are written)."""
    return not any([await redis.exists(keys.entity(f"cloudretailer:product:{p}")) for p in product_ids])


async def test_only_the_job_that_fed_a_change_counts_it(gateway, redis, settings, start_worker):
    async def on_product(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        pass

    registry = Registry()
    registry.register(Source.CLOUDRETAILER, "product.updated", on_product)
    await start_worker(registry)
    await jobrecords.create(redis, "resync-1", AdminJobKind.RESYNC_PRODUCTS, {})
    # A webhook whose id looks like a fed change's: the job is a field of a fed change's record, never read
    # out of an id, so a sender cannot move a job's progress (nor create a record for a job that is not there).
    data = {"product_id": "P-9", "sku": "S-9"}
    for msg_id in ("job:resync-1:0", "job:no-such-job:0"):
        resp = await post_event(gateway, "cloudretailer", envelope("product.updated", data), msg_id=msg_id)
        assert resp.status == 202
    fed = [(Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id="P-8", sku="S-8"))]
    # Numbered from 1: the webhook above took the id a first fed change would have had.
    async with Feeder(redis, settings, feed_origin("resync-1"), start=1) as feeder:
        await feeder.add(*fed[0])
    assert feeder.queued == 1
    await wait_for(lambda: _idle(redis, "P-9", "P-8"))
    assert await redis.hmget(keys.admin_job("resync-1"), ["done", "failed"]) == [b"1", None]
    assert not await redis.exists(keys.admin_job("no-such-job"))


async def test_a_change_settling_after_its_job_record_expired_does_not_bring_it_back(redis, settings, start_worker):
    async def on_product(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        pass

    await jobrecords.create(redis, "resync-old", AdminJobKind.RESYNC_PRODUCTS, {})
    fed = [(Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id=f"P-{i}", sku="S")) for i in range(2)]
    assert await feed(redis, settings, feed_origin("resync-old"), fed) == 2
    await redis.delete(keys.admin_job("resync-old"))  # what its 7-day TTL does
    registry = Registry()
    registry.register(Source.CLOUDRETAILER, "product.updated", on_product)
    await start_worker(registry)
    await wait_for(lambda: _idle(redis, "P-0", "P-1"))
    assert await redis.hget(keys.event("cloudretailer:job:resync-old:1"), "status") == b"done"
    assert not await redis.exists(keys.admin_job("resync-old"))


async def test_status_shows_the_last_report_of_each_run(gateway, redis):
    await redis.hset(keys.REPORTS, "reconcile-inventory", b'{"run_id": "r-1", "drift_fixed": 3}')
    status = await (await gateway.get("/admin/status", headers=AUTH)).json()
    assert status["reports"] == {"reconcile-inventory": {"run_id": "r-1", "drift_fixed": 3}}
