"""The types the gateway and the workers share instead of strings and tuples: the queue row (`QueuedEvent`),
the admin job kinds, and where a fed change's job is kept (the event types: tests/test_events.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from crmcore import eventlog, keys
from crmcore.entityqueue import JOB_EXPIRE_MS, EntityQueue, QueuedEvent
from crmcore.events import AcceptedEvent, CloudRetailerEventType, ProductEvent, Source
from crmcore.jobrecords import AdminJobKind, FeedOrigin, feed_origin
from crmcore.settings import Settings
from gateway.adminjobs import RESYNCS
from workers import feed as feeding
from workers.feed import Feeder, feed
from workers.registry import HandlerContext, Progress, Registry, default_registry

ROW = (
    "cloudretailer",
    "msg_2abc",
    "product.updated",
    "cloudretailer:product:P-1",
    "2026-11-29T12:00:00+00:00",
    '{"product_id":"P-1","sku":"S-1"}',
)


def test_a_batch_of_queued_events_is_the_same_argv_as_bare_tuples(redis: Redis, settings: Settings) -> None:
    # The accept script reads rows by position (docs/performance.md: one JSON argument per batch); the named
    # row must not change a byte of what the gateway sends.
    queue = EntityQueue(redis, settings.queue_name)
    named = queue.accept_args([QueuedEvent(*ROW)] * 3, now_ms=1, record_ttl=2, recent_max=3)
    bare = queue.accept_args([ROW] * 3, now_ms=1, record_ttl=2, recent_max=3)  # type: ignore[list-item]
    assert named == bare == [1, 2, 3, settings.queue_name, JOB_EXPIRE_MS, orjson.dumps([ROW] * 3)]
    row = QueuedEvent(*ROW)
    assert (row.id, row.type, row.ref) == ("msg_2abc", "product.updated", "cloudretailer:msg_2abc")


def test_every_admin_job_the_gateway_starts_is_one_the_shipped_workers_run(settings: Settings) -> None:
    started = {r.kind for r in RESYNCS.values()} | {AdminJobKind.RECONCILE_INVENTORY, AdminJobKind.INITIAL_SYNC}
    assert started == set(AdminJobKind) - {AdminJobKind.CATCHUP_CRON}
    assert set(default_registry(settings).admin_jobs) == started


def test_the_registry_takes_the_catalogue_types_and_finds_them_by_the_strings_records_hold() -> None:
    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None: ...

    async def job(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        return {}

    registry = Registry()
    registry.register(Source.CLOUDRETAILER, CloudRetailerEventType.PRODUCT_UPDATED, handler)
    registry.register(Source.MAGENTO, "order.completed", handler)  # type: ignore[arg-type]  # not yet switched
    registry.register_job(AdminJobKind.RESYNC_PRODUCTS, job)
    assert registry.get(Source.CLOUDRETAILER, "product.updated") is handler
    assert registry.get(Source.MAGENTO, "order.completed") is handler
    assert registry.get(Source.MAGENTO, "product.updated") is None  # a type means something with its source
    assert registry.admin_jobs.get("resync-products") is job
    with pytest.raises(ValueError):
        registry.register(Source.MAGENTO, "product.updated", handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        registry.register_job("resync-everything", job)  # type: ignore[arg-type]


async def test_fed_changes_carry_their_job_in_the_record_and_keep_their_ids(redis: Redis, settings: Settings) -> None:
    change = [(Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id="P-1", sku="S-1"))]
    assert await feed(redis, settings, feed_origin("resync-products-1"), change) == 1
    assert await feed(redis, settings, FeedOrigin("sweep", "run-7").within("products"), change) == 1
    assert await feed(redis, settings, "stock:cron-1", change) == 1
    records = {ref: await redis.hgetall(keys.event(ref)) for ref in await _refs(redis)}
    jobs = {ref: eventlog.admin_job_of(raw) for ref, raw in records.items()}
    assert jobs == {
        "cloudretailer:job:resync-products-1:0": "resync-products-1",
        "cloudretailer:sweep:products:0": "run-7",
        "cloudretailer:stock:cron-1:0": None,
    }
    # Not part of what the admin API shows of an event.
    assert "admin_job" not in eventlog.decode_record(records["cloudretailer:job:resync-products-1:0"])


async def test_a_feeder_numbers_across_chunks_and_reports_each_chunk(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeding, "CHUNK", 2)
    totals: list[int | None] = []

    async def progress(done: int | None = None, total: int | None = None) -> None:
        totals.append(total)

    def change(n: int) -> tuple[Source, str, ProductEvent]:
        return Source.CLOUDRETAILER, "product.updated", ProductEvent(product_id=f"P-{n}", sku=f"S-{n}")

    async with Feeder(redis, settings, feed_origin("resync-1"), progress=progress) as feeder:
        for n in range(5):
            await feeder.add(*change(n))
    assert (feeder.fed, feeder.queued, totals) == (5, 5, [2, 4, 5])
    assert sorted(await _refs(redis)) == [f"cloudretailer:job:resync-1:{n}" for n in range(5)]

    # The same job fed again (a retried job): the same ids, so nothing is queued twice.
    async with Feeder(redis, settings, feed_origin("resync-1")) as again:
        for n in range(3):
            await again.add(*change(n))
    assert (again.fed, again.queued) == (3, 0)

    # A block that fails sends nothing of its last chunk.
    with pytest.raises(RuntimeError):
        async with Feeder(redis, settings, feed_origin("resync-2")) as failing:
            await failing.add(*change(0))
            raise RuntimeError("the listing failed")
    assert failing.fed == 0 and not any("resync-2" in ref for ref in await _refs(redis))


async def _refs(redis: Redis) -> list[str]:
    return [ref.decode() for ref in await redis.zrange(keys.RECENT_EVENTS, 0, -1)]
