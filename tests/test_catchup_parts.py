"""Catch-up sync parts: the clocks and cursors, Magento's keyset paging by created_at against the
sandbox Magento, the lease, the interval and what the domain registers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from crmcore.jobrecords import feed_origin
from tests.support.signing import ADMIN_TOKEN
from tests.support.stack import full_stack
from workers.binder import Binder
from workers.clients.search_criteria import Filter
from workers.feed import resolve_origin
from workers.lease import Lease
from workers.periodic import new_run_id
from workers.registry import HandlerContext, Registry, default_registry
from workers.services import Services
from workers.sync import catchup
from workers.sync.catchup import clock, run, streams

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_each_side_keeps_its_own_time_format_and_the_overlap_is_taken_from_it() -> None:
    assert clock.CLOUDRETAILER.minus("2024-05-01T12:00:00.000001Z", 120) == "2024-05-01T11:58:00.000001Z"
    assert clock.CLOUDRETAILER.minus("2024-05-01T00:00:30+02:00", 60) == "2024-04-30T21:59:30.000000Z"
    assert clock.MAGENTO.minus("2024-05-01 00:00:00", 1) == "2024-04-30 23:59:59"
    # fixed width: string order is time order, which is what keeps the cursors monotonic in Redis
    assert len(clock.CLOUDRETAILER.now_minus(0)) == len("2024-05-01T12:00:00.000000Z")
    assert len(clock.MAGENTO.now_minus(0)) == len("2024-05-01 12:00:00")


async def test_cursors_only_move_forward(redis) -> None:
    await clock.advance(redis, "magento:customers", "2024-05-01 12:00:05")
    await clock.advance(redis, "magento:customers", "2024-05-01 12:00:04")
    await clock.advance(redis, "cloudretailer:products", "2024-05-01T12:00:00.000002Z")
    await clock.advance(redis, "cloudretailer:products", "2024-05-01T12:00:00.000010Z")
    assert await clock.cursors(redis) == {
        "magento:customers": "2024-05-01 12:00:05",
        "cloudretailer:products": "2024-05-01T12:00:00.000010Z",
    }


async def test_the_lease_is_one_holders_and_its_own_retry_may_take_it_over(redis) -> None:
    first, second = Lease(redis, run.LOCK_KEY, "run-a"), Lease(redis, run.LOCK_KEY, "run-b")
    assert await first.take()
    assert not await second.take() and await second.held_by() == "run-a"
    assert await Lease(redis, run.LOCK_KEY, "run-a").take()  # the same run, retried
    async with first.kept(every_s=0.01):
        pass
    assert await redis.get(run.LOCK_KEY) is None  # released at the end
    assert await second.take()
    await first.release()  # not its lease: nothing happens
    assert await second.held_by() == "run-b"


def test_run_ids_fit_in_event_ids() -> None:
    # `job:<run id>:...`: the workers find the job between the first two colons
    run_id = new_run_id(run.REPORT)
    assert run_id.startswith("catchup-") and ":" not in run_id
    assert resolve_origin(f"{feed_origin(run_id)}:magento:customers").job_id == run_id


def test_the_shipped_schedule_follows_the_interval_setting(settings) -> None:
    assert run.CATCHUP.name == "catchup" and run.CATCHUP.interval(settings) == 30 * 60
    every90 = settings.model_copy(update={"catchup_interval_minutes": 90})
    assert run.CATCHUP.interval(every90) == 90 * 60  # due times, not the clock's minutes: no gap at the hour
    registry = Registry()
    catchup.register(registry, settings)
    assert list(registry.periodic) == ["catchup"] and list(registry.admin_jobs) == ["resync-catchup"]
    shipped = default_registry(settings)
    assert "catchup" in shipped.periodic and "resync-catchup" in shipped.admin_jobs


async def test_the_admin_endpoint_takes_no_parameters(gateway, redis) -> None:
    resp = await gateway.post("/admin/resync/catchup", json={"since": "2024-01-01T00:00:00Z"}, headers=AUTH)
    assert resp.status == 422, await resp.text()
    resp = await gateway.post("/admin/resync/catchup", headers=AUTH)
    assert resp.status == 202
    assert (await resp.json())["kind"] == "resync-catchup"


@contextlib.asynccontextmanager
async def magento_ctx(redis_url: str, customers: int) -> AsyncIterator[HandlerContext]:
    async with full_stack(redis_url, products=1, customers=0, magento_config={"customers": customers}) as stack:
        services = Services.from_settings(stack.settings)
        try:
            yield HandlerContext(redis=stack.redis, settings=stack.settings, job_id="t", attempt=1, services=services)
        finally:
            await services.close()


async def test_magento_creations_are_paged_by_key_and_none_is_missed_or_repeated(redis_url) -> None:
    async with magento_ctx(redis_url, customers=7) as ctx:
        website = [Filter("website_id", ctx.settings.magento_website_id)]
        since = clock.MAGENTO.now_minus(3600)
        pages = [p async for p in streams.created_since(ctx, "customers/search", since, website, page_size=3)]
        ids = [int(c["id"]) for page in pages for c in page]
        # the seeded accounts share one created_at second: the key's entity_id part does the paging
        assert [len(p) for p in pages] == [3, 3, 1] and ids == sorted(set(ids)) and len(ids) == 7
        later = clock.MAGENTO.now_minus(-3600)
        assert [p async for p in streams.created_since(ctx, "customers/search", later, website)] == []


async def test_magento_records_the_gateway_links_are_counted_but_not_fed(redis_url) -> None:
    async with magento_ctx(redis_url, customers=2) as ctx:
        stream = next(s for s in streams.STREAMS if s.name == "magento:customers")
        since = clock.MAGENTO.now_minus(3600)
        [page] = [p async for p in stream.pages(ctx, since)]
        first, second = (int(f.key) for f in page)
        await Binder(ctx.redis).bind("customer", "CU-9", first)
        [page] = [p async for p in stream.pages(ctx, since)]
        assert [(int(f.key), f.change is None) for f in page] == [(first, True), (second, False)]
        assert all(len(f.at) == len("2024-05-01 12:00:00") for f in page)
