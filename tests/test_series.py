"""The per-minute series (crmcore/series.py) on a real Redis with the real gateway and worker: what the accept
script and the dispatcher count, the lag histogram and its percentiles, the bound on its size, and how
/admin/series, /admin/status and /metrics read it."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise

import orjson
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from crmcore import keys, series
from crmcore.clock import now_ms
from crmcore.entityqueue import EntityQueue, QueuedEvent
from crmcore.events import AcceptedEvent, Source
from tests.conftest import post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from workers.errors import PermanentError
from workers.periodic import run_once
from workers.registry import HandlerContext, Registry, handler_context
from workers.services import Services
from workers.worker import HOUSEKEEPING

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _applied(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    return None


async def _refused(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    raise PermanentError("Magento refused the stock item")


async def _send(gateway, event_type: str, data: dict) -> None:
    resp = await post_event(gateway, "cloudretailer", envelope(event_type, data), msg_id=new_id())
    assert resp.status == 202


async def _points(gateway, window: str = "hour") -> list[dict]:
    resp = await gateway.get(f"/admin/series?window={window}", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["points"]


async def test_webhooks_and_settled_jobs_are_counted_per_minute_and_domain(gateway, redis, start_worker) -> None:
    for n in range(3):
        await _send(gateway, "product.updated", {"product_id": f"P-{n}", "sku": f"S-{n}"})
    for n in range(2):
        await _send(gateway, "inventory.updated", {"store_id": "W-1", "sku": f"S-{n}", "on_hand": 1})
    registry = Registry()
    registry.register(CR, "product.updated", _applied)
    registry.register(CR, "inventory.updated", _refused)
    await start_worker(registry)

    async def settled() -> bool:
        points = await _points(gateway)
        return sum(p["applied"] for p in points) == 3 and sum(p["failed"] for p in points) == 2

    await wait_for(settled)
    points = await _points(gateway)
    # A minute may turn during the test: the counts are summed over the hour.
    assert sum(p["received"] for p in points) == 5
    busy = [p for p in points if p["applied"]]
    assert all(p["lag_p50_ms"] is not None and p["lag_p50_ms"] <= p["lag_p99_ms"] for p in busy)

    resp = await gateway.get("/admin/status", headers=AUTH)
    domains = (await resp.json())["domains"]
    assert set(domains) == set(series.DOMAINS)
    products, stock = domains["products"], domains["stock"]
    assert (products["applied_15m"], products["failed_15m"]) == (3, 0)
    assert (stock["applied_15m"], stock["failed_15m"]) == (0, 2)
    assert products["newest_applied_at"].endswith("Z") and 0 <= products["age_seconds"] < 60
    assert products["lag_p50_ms"] is not None and products["lag_p99_ms"] >= products["lag_p50_ms"]
    # Failures are not applied changes: no lag, no newest time.
    assert stock == {
        "newest_applied_at": None,
        "age_seconds": None,
        "lag_p50_ms": None,
        "lag_p99_ms": None,
        "applied_15m": 0,
        "failed_15m": 2,
    }


def test_percentiles_fall_in_the_bucket_of_the_lag() -> None:
    buckets = [0] * (len(series.LAG_BOUNDS_MS) + 1)
    buckets[series.lag_bucket(1_000)] += 98
    buckets[series.lag_bucket(60_000)] += 2
    for q, lag in ((0.5, 1_000), (0.99, 60_000)):
        i = series.lag_bucket(lag)
        assert series.LAG_BOUNDS_MS[i - 1] < series.percentile(buckets, q) <= series.LAG_BOUNDS_MS[i]
    assert series.percentile([0] * len(buckets), 0.5) is None
    overflow = [0] * len(series.LAG_BOUNDS_MS) + [1]
    assert series.percentile(overflow, 0.99) == 3_600_000
    assert series.LAG_BOUNDS_MS[0] == 50 and series.LAG_BOUNDS_MS[-1] == 3_600_000


async def test_lag_is_settle_time_minus_received_summed_over_minutes(redis: Redis) -> None:
    now = now_ms()
    record = {b"entity": b"cloudretailer:inventory:W-1:S-1", b"received_ms": str(now - 200).encode()}
    slow = {b"entity": b"cloudretailer:inventory:W-1:S-2", b"received_ms": str(now - 120_000).encode()}
    async with redis.pipeline(transaction=False) as pipe:
        series.count_settled(pipe, [record] * 9, "done", now_ms=now)
        series.count_settled(pipe, [slow], "skipped", now_ms=now - 60_000)
        series.count_settled(pipe, [record], "processing", now_ms=now)  # not final: nothing
        await pipe.execute()
    minutes = await series.read_minutes(redis, series.minute_of(now), 2)
    assert [m.applied["stock"] for _, m in minutes] == [1, 9]
    window = series.total(m for _, m in minutes)
    assert window.lag_buckets("stock")[series.lag_bucket(200)] == 9
    assert window.lag_buckets("stock")[series.lag_bucket(60_000)] == 1
    assert 141 < series.percentile(window.lag_buckets(), 0.5) <= 200
    assert series.percentile(window.lag_buckets(), 0.99) > 45_000
    assert await series.newest_applied(redis) == {"stock": now}


async def test_old_minutes_expire_so_the_series_stays_bounded(redis: Redis, settings) -> None:
    queue = EntityQueue(redis, settings.queue_name)
    now = now_ms()
    event = QueuedEvent("cloudretailer", new_id(), "product.updated", "cloudretailer:product:P-1", "t", "{}")
    await queue.accept([event], now_ms=now, record_ttl=60, recent_max=100)
    key = keys.series_minute(series.minute_of(now))
    assert await redis.hget(key, "r") == b"1"
    ttl = await redis.ttl(key)
    assert series.KEEP_SECONDS - 5 <= ttl <= series.KEEP_SECONDS + 60
    # A minute older than a day and the margin is gone as soon as it is written, from either path.
    old = now - (series.KEEP_SECONDS + 120) * 1000
    stale = QueuedEvent("cloudretailer", new_id(), "product.updated", "cloudretailer:product:P-2", "t", "{}")
    await queue.accept([stale], now_ms=old, record_ttl=60, recent_max=100)
    async with redis.pipeline(transaction=False) as pipe:
        series.count_settled(pipe, [{b"entity": b"cloudretailer:product:P-2"}], "dead", now_ms=old)
        await pipe.execute()
    assert not await redis.exists(keys.series_minute(series.minute_of(old)))
    assert [k async for k in redis.scan_iter(match=keys.series_minute(0)[:-1] + "*")] == [key.encode()]


async def test_series_answers_60_or_1440_minutes_oldest_first(gateway, redis, settings) -> None:
    await series.sample_queue_depth(redis, settings.queue_name, now_ms=now_ms())
    for window, count in (("hour", 60), ("day", 1440)):
        resp = await gateway.get(f"/admin/series?window={window}", headers=AUTH)
        body = await resp.json()
        assert (body["window"], body["step_seconds"], len(body["points"])) == (window, 60, count)
        times = [datetime.fromisoformat(p["t"]).timestamp() for p in body["points"]]
        assert all(b - a == 60 for a, b in pairwise(times))
        assert times[-1] <= time.time() < times[-1] + 61
        assert set(body["points"][0]) == {
            "t",
            "received",
            "applied",
            "failed",
            "queue_depth",
            "lag_p50_ms",
            "lag_p99_ms",
        }
    assert body["points"][-1]["queue_depth"] == 0 or body["points"][-2]["queue_depth"] == 0
    assert body["points"][0]["queue_depth"] is None
    resp = await gateway.get("/admin/series?window=week", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["errors"] == [{"field": "window", "reason": "must be one of hour, day"}]


async def test_housekeeping_samples_the_queue_depth_into_the_minute(gateway, redis, settings) -> None:
    for n in range(3):
        await _send(gateway, "product.updated", {"product_id": f"P-{n}", "sku": f"S-{n}"})
    worker = {"redis": redis, "settings": settings, "services": Services()}
    report = await run_once(HOUSEKEEPING, handler_context(worker, "housekeeping-1"))
    assert (report["status"], report["queue_depth"]) == ("ok", 3)
    depths = [p["queue_depth"] for p in await _points(gateway)]
    assert depths[-1] == 3 or depths[-2] == 3  # the sample's minute may have just turned


async def test_series_and_status_need_an_admin_token(gateway) -> None:
    for path in ("/admin/series", "/admin/series?window=day", "/admin/status"):
        assert (await gateway.get(path)).status == 401


async def test_metrics_export_lag_age_and_the_last_reconciliation(gateway, redis) -> None:
    now = now_ms()
    record = {b"entity": b"cloudretailer:product:P-1", b"received_ms": str(now - 2_000).encode()}
    async with redis.pipeline(transaction=False) as pipe:
        series.count_settled(pipe, [record], "done", now_ms=now)
        await pipe.execute()
    report = {"name": "reconcile-inventory", "status": "ok", "finished": "2026-12-03T14:02:11.500Z", "drift_found": 7}
    await redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps(report))
    text = await (await gateway.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    p50 = samples[("crmagento_sync_lag_seconds", (("domain", "products"), ("quantile", "0.5")))]
    assert 1.41 < p50 <= 2.0
    assert ("crmagento_sync_lag_seconds", (("domain", "products"), ("quantile", "0.99"))) in samples
    assert ("crmagento_sync_lag_seconds", (("domain", "stock"), ("quantile", "0.5"))) not in samples
    assert 0 <= samples[("crmagento_last_applied_age_seconds", (("domain", "products"),))] < 60
    assert samples[("crmagento_reconcile_drift", ())] == 7
    assert samples[("crmagento_reconcile_last_run_timestamp_seconds", ())] == 1796306531.5
    names = {family.name for family in text_string_to_metric_families(text)}
    # The names the alerts and the dashboard are written against.
    assert {
        "crmagento_jobs",
        "crmagento_webhooks",
        "crmagento_ingest_seconds",
        "crmagento_queue_depth",
        "crmagento_dead_letters",
        "crmagento_workers_alive",
        "crmagento_remote_up",
        "crmagento_parked_events",
    } <= names
