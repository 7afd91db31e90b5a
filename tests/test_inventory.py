"""Inventory end to end: both sandboxes, the real gateway and real workers with the shipped rules.

On-hand at the linked Cloud Retailer store goes to the Magento source: pushed when Cloud Retailer reports a
change (read back from Cloud Retailer, never taken from the payload), many SKUs per source-items call, and
reconciled in full by a job that writes only what differs.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest

from crmcore import keys
from crmcore.settings import Settings
from sandbox.catalog import LINKED_STORE_ID, sku
from sandbox.magento.app import STATS
from sandbox.magento.routing import STATE
from sandbox.webhooks_out import SUPPRESS_HEADER
from tests.conftest import post_event, wait_for
from tests.support.signing import envelope
from tests.support.stack import Stack, full_stack
from workers.lease import Lease
from workers.registry import HandlerContext, Registry, default_registry
from workers.services import Services
from workers.sync.inventory import reconcile as rec
from workers.sync.inventory.msi import MsiStock

LOST = {SUPPRESS_HEADER: "1"}
SOURCE_ITEMS = "/rest/{store_code}/V1/inventory/source-items"


def magento_stock(stack: Stack, code: str, source: str = "default") -> tuple[float, int] | None:
    item = stack.magento_app[STATE].source_item(code, source)
    return None if item is None else (item.quantity, item.status)


def calls(stack: Stack, method: str, route: str = SOURCE_ITEMS) -> int:
    stats = stack.magento_app[STATS]
    return stats.count(method, route) + stats.count(method, route.replace("/{store_code}", ""))


async def set_on_hand(stack: Stack, code: str, on_hand: float, *, lost: bool = False) -> None:
    await stack.cr(
        "PUT", f"/inventory/{LINKED_STORE_ID}/{code}", json={"on_hand": on_hand}, headers=LOST if lost else None
    )


async def finished_job(stack: Stack, job_id: str, within: float = 30) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        _, job = await stack.admin("GET", f"/admin/jobs/{job_id}")
        return job if job["status"] in ("done", "failed") else None

    return await wait_for(done, within=within)


async def reconcile_now(stack: Stack, *, dry_run: bool = False) -> dict[str, Any]:
    status, body = await stack.admin("POST", f"/admin/reconcile/inventory?dry_run={str(dry_run).lower()}")
    assert status == 202, body
    return await finished_job(stack, body["job_id"])


async def event_statuses(stack: Stack, type_: str = "inventory.updated") -> list[str]:
    _, body = await stack.admin("GET", "/admin/events", params={"limit": "500"})
    return [e["status"] for e in body["items"] if e["type"] == type_]


# --- push on change ----------------------------------------------------------------------------------------


async def test_a_change_in_cloud_retailer_is_pushed_to_the_magento_source(redis_url: str) -> None:
    async with full_stack(redis_url, products=10, magento_products=10) as stack:
        await stack.start_worker()
        others = [sku(n) for n in range(1, 11) if n not in (3, 4)]
        before = {code: magento_stock(stack, code) for code in others}
        await set_on_hand(stack, sku(3), 77)
        await set_on_hand(stack, sku(4), 0)
        await wait_for(lambda: magento_stock(stack, sku(3)) == (77, 1) and magento_stock(stack, sku(4)) == (0, 0))
        await wait_for(lambda: _all_done(stack, 2))
        # Nothing else was touched: every other SKU holds what it held before, and no event was about it.
        assert {code: magento_stock(stack, code) for code in others} == before
        _, body = await stack.admin("GET", "/admin/events", params={"limit": "500"})
        assert sorted(e["entity"] for e in body["items"]) == sorted(
            f"cloudretailer:inventory:{LINKED_STORE_ID}:{code}" for code in (sku(3), sku(4))
        )


async def _all_done(stack: Stack, n: int) -> bool:
    statuses = await event_statuses(stack)
    return len(statuses) >= n and all(s == "done" for s in statuses)


async def test_the_on_hand_in_the_payload_is_not_trusted(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.start_worker()
        await set_on_hand(stack, sku(2), 12, lost=True)
        # A delivery claiming 999 (forged, stale or reordered): the worker reads 12 from Cloud Retailer.
        body = orjson.dumps(
            {
                "type": "inventory.updated",
                "timestamp": "2026-01-01T00:00:00Z",
                "data": {"sku": sku(2), "store_id": LINKED_STORE_ID, "on_hand": 999},
            }
        )
        resp = await post_event(stack.gateway, "cloudretailer", body)
        assert resp.status == 202
        await wait_for(lambda: _all_done(stack, 1))
        assert magento_stock(stack, sku(2)) == (12, 1)


async def test_changes_to_many_skus_arriving_together_share_source_items_calls(redis_url: str) -> None:
    async with full_stack(redis_url, products=60, magento_products=60, inventory_batch_wait_seconds=0.2) as stack:
        await stack.start_worker()
        await asyncio.gather(*(set_on_hand(stack, sku(i), 100 + i) for i in range(1, 41)))
        await wait_for(lambda: all(magento_stock(stack, sku(i)) == (100 + i, 1) for i in range(1, 41)), within=20)
        await wait_for(lambda: _all_done(stack, 40), within=20)
        posts = calls(stack, "POST")
        # 40 SKUs, 20 per call at most: a handful of calls, not 40.
        assert 2 <= posts <= 8, posts


async def test_a_store_other_than_the_linked_one_is_skipped(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.start_worker()
        await stack.cr("PUT", f"/inventory/S-1/{sku(1)}", json={"on_hand": 41})
        await wait_for(lambda: event_statuses(stack))
        assert await wait_for(lambda: _statuses_are(stack, ["skipped"]))
        assert calls(stack, "POST") == 0


async def _statuses_are(stack: Stack, wanted: list[str]) -> bool:
    return await event_statuses(stack) == wanted


async def test_a_sku_magento_does_not_have_is_skipped_never_created(redis_url: str) -> None:
    async with full_stack(redis_url, products=6, magento_products=4) as stack:
        await stack.start_worker()
        await set_on_hand(stack, sku(6), 9)
        await wait_for(lambda: _statuses_are(stack, ["skipped"]))
        assert magento_stock(stack, sku(6)) is None
        assert stack.magento_app[STATE].product(sku(6)) is None
        assert calls(stack, "POST") == 0


async def test_a_sku_cloud_retailer_does_not_know_is_skipped_and_magento_untouched(redis_url: str) -> None:
    async with full_stack(redis_url, products=3, magento_products=5) as stack:
        await stack.start_worker()
        # sku(4) is a Magento-only product; a lower-case spelling of sku(2) is a SKU Cloud Retailer lacks too,
        # though Magento, whose SKUs ignore case, would take it for sku(2).
        named = [sku(4), sku(2).lower()]
        before = {code: magento_stock(stack, code) for code in named}
        for code in named:
            data = {"sku": code, "store_id": LINKED_STORE_ID, "on_hand": 50}
            assert (await post_event(stack.gateway, "cloudretailer", envelope("inventory.updated", data))).status == 202
        await wait_for(lambda: _statuses_are(stack, ["skipped", "skipped"]))
        _, body = await stack.admin("GET", "/admin/events", params={"limit": "500"})
        assert all("Cloud Retailer has no on-hand for SKU" in e["last_error"] for e in body["items"]), body
        assert {code: magento_stock(stack, code) for code in named} == before
        assert calls(stack, "POST") == 0


async def test_without_msi_the_legacy_stock_item_is_written(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5, magento_config={"msi": False}) as stack:
        await stack.start_worker()
        await set_on_hand(stack, sku(2), 31)
        await wait_for(lambda: magento_stock(stack, sku(2)) == (31, 1))
        await wait_for(lambda: _all_done(stack, 1))
        assert calls(stack, "PUT", "/rest/{store_code}/V1/products/{productSku}/stockItems/{itemId}") == 1

        await set_on_hand(stack, sku(3), 0, lost=True)
        await set_on_hand(stack, sku(4), 5, lost=True)
        job = await reconcile_now(stack)
        assert job["status"] == "done", job
        report = job["result"]
        assert report["mode"] == "legacy"
        assert (report["compared"], report["drift_found"], report["drift_fixed"]) == (5, 2, 2)
        assert magento_stock(stack, sku(3)) == (0, 0) and magento_stock(stack, sku(4)) == (5, 1)


# --- reconciliation --------------------------------------------------------------------------------------


async def test_reconciliation_fixes_the_drift_a_lost_webhook_left(redis_url: str) -> None:
    async with full_stack(redis_url, products=30, magento_products=30) as stack:
        await stack.start_worker()
        for i, on_hand in ((3, 50), (7, 0), (11, 2.5)):
            await set_on_hand(stack, sku(i), on_hand, lost=True)
        assert magento_stock(stack, sku(3)) != (50, 1)
        before = calls(stack, "POST")

        job = await reconcile_now(stack)
        assert job["status"] == "done", job
        report = job["result"]
        assert report["status"] == "ok"
        assert (report["cr_skus"], report["magento_skus"], report["compared"]) == (30, 30, 30)
        assert (report["drift_found"], report["drift_fixed"]) == (3, 3)
        assert {d["sku"] for d in report["drift"]} == {sku(3), sku(7), sku(11)}
        assert report["missing_in_magento"] == {"count": 0, "skus": []}
        assert report["missing_in_cr"] == {"count": 0, "skus": []}
        assert report["magento_writes"] == 1 and report["items_written"] == 3  # one batch
        assert calls(stack, "POST") - before == 1
        assert magento_stock(stack, sku(3)) == (50, 1)
        assert magento_stock(stack, sku(7)) == (0, 0)
        assert magento_stock(stack, sku(11)) == (2.5, 1)
        assert job["progress"]["done"] == job["progress"]["total"] == 30

        # The report is the last one shown by GET /admin/status; a second run finds nothing to do.
        _, status = await stack.admin("GET", "/admin/status")
        assert status["reports"]["reconcile-inventory"]["run_id"] == report["run_id"]
        again = (await reconcile_now(stack))["result"]
        assert (again["drift_found"], again["magento_writes"]) == (0, 0)
        assert calls(stack, "POST") - before == 1


async def test_a_dry_run_reports_the_drift_and_writes_nothing(redis_url: str) -> None:
    async with full_stack(redis_url, products=12, magento_products=12) as stack:
        await stack.start_worker()
        await set_on_hand(stack, sku(5), 44, lost=True)
        was = magento_stock(stack, sku(5))
        job = await reconcile_now(stack, dry_run=True)
        report = job["result"]
        assert report["dry_run"] is True and report["status"] == "ok"
        assert report["drift_found"] == 1 and report["drift_fixed"] == 0
        assert report["drift"] == [
            {"sku": sku(5), "magento": was[0], "cloud_retailer": 44, "held": 0, "written": 44}  # type: ignore[index]
        ]
        assert calls(stack, "POST") == 0 and report["magento_writes"] == 0
        assert magento_stock(stack, sku(5)) == was
        _, status = await stack.admin("GET", "/admin/status")
        assert status["reports"]["reconcile-inventory"]["dry_run"] is True


async def test_skus_missing_on_either_side_are_reported_and_no_product_is_created(redis_url: str) -> None:
    async with full_stack(redis_url, products=10, magento_products=8) as stack:
        await stack.start_worker()
        # Magento-only: a product with a source item that Cloud Retailer does not have at the store.
        await stack.magento(
            "POST",
            "/products",
            json={"product": {"sku": "MG-ONLY-1", "name": "Magento only", "price": 3, "attribute_set_id": 4}},
        )
        await stack.magento(
            "POST",
            "/inventory/source-items",
            json={"sourceItems": [{"sku": "MG-ONLY-1", "source_code": "default", "quantity": 4, "status": 1}]},
        )
        # A product Magento has without a source item at the source: it gets its first one.
        state = stack.magento_app[STATE]
        state.source_items["default"].pop(sku(8).lower())
        products_before = len(state.products)

        report = (await reconcile_now(stack))["result"]
        assert report["missing_in_magento"] == {"count": 2, "skus": [sku(9), sku(10)]}
        assert report["missing_in_cr"] == {"count": 1, "skus": ["MG-ONLY-1"]}
        assert report["compared"] == 8 and report["drift_found"] == 1 and report["drift_fixed"] == 1
        level = await stack.cr("GET", f"/inventory/{LINKED_STORE_ID}/{sku(8)}")
        quantity = max(float(level["on_hand"]), 0.0)
        assert magento_stock(stack, sku(8)) == (quantity, 1 if quantity > 0 else 0)
        assert magento_stock(stack, sku(9)) is None and state.product(sku(9)) is None
        assert len(state.products) == products_before
        assert magento_stock(stack, "MG-ONLY-1") == (4, 1)  # left alone


async def test_magento_5xx_mid_run(redis_url: str) -> None:
    async with full_stack(redis_url, products=20, magento_products=20, inventory_batch_size=2) as stack:
        await stack.start_worker()
        for i in range(1, 7):
            await set_on_hand(stack, sku(i), 200 + i, lost=True)
        # Every write fails (after the client's retries) with a 500, Magento's answer to a save it cannot make (a
        # 503 would be Magento down, which skips the run: tests/test_cron_outage.py): the run reports them and
        # the next run fixes them.
        await _faults(stack, {"match": "POST */inventory/source-items", "error_rate": 1.0, "error_status": 500})
        job = await reconcile_now(stack)
        assert job["status"] == "done"
        report = job["result"]
        assert report["status"] == "partial"
        assert report["drift_found"] == 6 and report["drift_fixed"] == 0
        assert report["error_count"] == 3  # three batches of two
        assert "500" in report["errors"][0]["error"]
        assert magento_stock(stack, sku(1)) != (201, 1)

        # The listing fails: the run stops, writes nothing, and says so.
        await _faults(stack, {"match": "GET */inventory/source-items", "error_rate": 1.0, "error_status": 500})
        job = await reconcile_now(stack)
        assert job["status"] == "failed" and "500" in job["error"]
        assert job["result"]["status"] == "failed"
        _, status = await stack.admin("GET", "/admin/status")
        assert status["reports"]["reconcile-inventory"]["status"] == "failed"

        # A 503 that clears while the client retries: the run completes.
        await _faults(stack, {"match": "POST */inventory/source-items", "error_rate": 1.0, "error_status": 503})
        status_code, body = await stack.admin("POST", "/admin/reconcile/inventory")
        assert status_code == 202
        await wait_for(lambda: calls(stack, "POST") >= 7, within=20)  # the 7th try: this run's first write
        await _faults(stack)
        report = (await finished_job(stack, body["job_id"]))["result"]
        assert report["status"] == "ok" and report["drift_fixed"] == 6, report
        assert all(magento_stock(stack, sku(i)) == (200 + i, 1) for i in range(1, 7))


async def _faults(stack: Stack, *rules: dict[str, Any]) -> None:
    async with stack.magento_api.put(f"{stack.magento_url}/_sandbox/faults", json=list(rules)) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_run_still_going_is_not_started_twice(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.start_worker()
        lock = Lease(stack.redis, rec.LOCK_KEY, "rec-held-by-another")
        assert await lock.take()
        job = await reconcile_now(stack)
        assert job["status"] == "done"
        assert job["result"]["status"] == "skipped" and job["result"]["running"] == "rec-held-by-another"
        assert await stack.redis.hget(keys.REPORTS, "reconcile-inventory") is None
        await lock.release()
        assert (await reconcile_now(stack))["result"]["status"] == "ok"


async def test_two_workers_running_the_schedule_make_one_run_per_interval(redis_url: str) -> None:
    def registry(settings: Settings) -> Registry:
        r = default_registry(settings)
        # 2-second intervals instead of 30 minutes (the scheduler ticks every half second for it).
        r.register_periodic(replace(rec.RECONCILE, interval=lambda _: 2.0))
        return r

    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.start_worker(registry(stack.settings))
        await stack.start_worker(registry(stack.settings))
        await asyncio.sleep(8.5)
        runs = await rec.recent_runs(stack.redis)
        # A run still going (its lock held) when the next one is due: the due ticks do not start another.
        held = Lease(stack.redis, rec.LOCK_KEY, "rec-still-going")
        await wait_for(held.take, within=5)
        held_since, due = time.time(), await _due(stack)
        # Two due times pass while the lock is held: the scheduler meets each (it moves `due` on) and starts
        # nothing.
        await wait_for(lambda: _due_is_past(stack, due + 2 * 2.0), within=10)
        assert [r for r in await rec.recent_runs(stack.redis) if _epoch(r["started"]) >= held_since] == []
        await held.release()
        await stack.stop_workers()
    # The first tick sets the cadence; then one run every 2 s: about 3, whatever the number of workers.
    assert runs and all(r["trigger"] == "schedule" and r["status"] == "ok" for r in runs)
    assert 2 <= len(runs) <= 4, runs
    spans = sorted((_epoch(r["started"]), _epoch(r["finished"])) for r in runs)
    assert all(b[0] - a[0] > 1.5 for a, b in itertools.pairwise(spans)), spans  # one per interval
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # never two at once


async def _due(stack: Stack) -> float:
    return float(await stack.redis.hget(keys.schedule(rec.REPORT_NAME), "due"))


async def _due_is_past(stack: Stack, moment: float) -> bool:
    return await _due(stack) >= moment


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- races -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stale_writer", ["reconciliation", "push"])
async def test_a_push_and_a_reconciliation_on_one_sku_end_with_the_newest_count(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, stale_writer: str
) -> None:
    """The worst interleaving, forced: one writer's older count reaches Magento after the other wrote the
    newer one. The writer of the older count reads Cloud Retailer again afterwards and corrects it."""
    target = sku(4)
    async with full_stack(redis_url, products=8, magento_products=8) as stack:
        await stack.start_worker()
        services = Services.from_settings(stack.settings)
        ctx = HandlerContext(redis=stack.redis, settings=stack.settings, job_id="test", attempt=1, services=services)
        real_write = MsiStock.write
        held = {"done": False}
        written: list[float] = []  # the target's counts in the order they landed in Magento

        async def write(self: MsiStock, targets: Any) -> Any:
            stale = [t for t in targets if t.sku.lower() == target.lower() and t.quantity == 10]
            if stale and not held["done"]:
                held["done"] = True
                if stale_writer == "reconciliation":
                    # Before the reconciliation's write of 10 lands, the count becomes 20 and is pushed.
                    await set_on_hand(stack, target, 20)
                    await wait_for(lambda: magento_stock(stack, target) == (20, 1))
                else:
                    # Before the push of 10 lands, the count becomes 20 (webhook lost) and a reconciliation
                    # writes it.
                    await set_on_hand(stack, target, 20, lost=True)
                    await rec.run_reconciliation(ctx, dry_run=False, trigger="test")
                    assert magento_stock(stack, target) == (20, 1)
            outcomes = await real_write(self, targets)
            written.extend(t.quantity for t in targets if t.sku.lower() == target.lower())
            return outcomes

        monkeypatch.setattr(MsiStock, "write", write)
        try:
            if stale_writer == "reconciliation":
                await set_on_hand(stack, target, 10, lost=True)
                report = await rec.run_reconciliation(ctx, dry_run=False, trigger="test")
                assert report["changed_during_run"] == 1
            else:
                await set_on_hand(stack, target, 10)
            await wait_for(lambda: held["done"] and magento_stock(stack, target) == (20, 1))
            await wait_for(lambda: _none_pending(stack))
            # Every writer is done (its job settled after its write returned): the older count landed between
            # two writes of the newer one, and the newer one landed last.
            assert written == [20, 10, 20]
            assert magento_stock(stack, target) == (20, 1)
        finally:
            await services.close()


async def _none_pending(stack: Stack) -> bool:
    statuses = await event_statuses(stack)
    return bool(statuses) and all(s in ("done", "skipped") for s in statuses)
