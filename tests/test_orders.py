"""Orders end to end: an order placed, invoiced and shipped in the sandbox Magento calls the real gateway back,
a real worker imports it, and the sandbox Cloud Retailer records exactly one sale (stock lowered, totals
raised). Also: duplicates, a lost callback found by the poll, a crash mid-import, racing importers, guest
and configurable orders, an unknown SKU replayed from the dead letters, and the admin resync."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from crmcore import keys
from crmcore.events import AcceptedEvent, Source
from sandbox import catalog
from sandbox.magento.routing import STATE
from tests.conftest import post_event, wait_for
from tests.support.signing import envelope, new_id
from tests.support.stack import Stack, full_stack
from workers.clients.magento_time import magento_time, parse_time
from workers.periodic import Run
from workers.registry import HandlerContext, Registry
from workers.services import Services
from workers.sync import orders
from workers.sync.orders import importer, markers, poll, resync

SKU_A, SKU_B, SKU_C = catalog.product(1).sku, catalog.product(2).sku, catalog.product(3).sku
QUIET = {"X-Sandbox-Suppress-Webhook": "1"}


def orders_only() -> Registry:
    """Only this domain's rules: the tests do not depend on the other domains' handlers."""
    registry = Registry()
    orders.register(registry, None)
    return registry


@contextlib.asynccontextmanager
async def stack_for_orders(redis_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    async with full_stack(
        redis_url, products=10, customers=5, magento_products=10, magento_config={"customers": 3}, **overrides
    ) as stack:
        yield stack


@contextlib.asynccontextmanager
async def handler_ctx(stack: Stack, job_id: str = "test") -> AsyncIterator[HandlerContext]:
    services = Services.from_settings(stack.settings)
    try:
        yield HandlerContext(redis=stack.redis, settings=stack.settings, job_id=job_id, attempt=1, services=services)
    finally:
        await services.close()


def magento_customer(stack: Stack, email: str) -> int:
    state = stack.magento_app[STATE]
    return next(c.id for c in state.customers.values() if c.email == email)


async def place(stack: Stack, items: list[dict[str, Any]], **entity: Any) -> dict[str, Any]:
    entity.setdefault("shipping_amount", 5)
    if "customer_id" not in entity:
        entity.setdefault("customer_email", "walk.in@example.com")
        entity.setdefault("customer_firstname", "Walk")
        entity.setdefault("customer_lastname", "In")
    return await stack.magento("POST", "orders", store="default", json={"entity": {**entity, "items": items}})


async def complete(stack: Stack, order: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
    """Invoice and ship: the order becomes complete and the sandbox sends order.completed (unless quiet)."""
    await stack.magento("POST", f"order/{order['entity_id']}/invoice", store="default", json={"capture": True})
    headers = QUIET if quiet else None
    await stack.magento("POST", f"order/{order['entity_id']}/ship", store="default", json={}, headers=headers)
    done = await stack.magento("GET", f"orders/{order['entity_id']}", store="default")
    assert done["state"] == "complete"
    return done


async def sales_for(stack: Stack, increment_id: str) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/sales", params={"external_ref": f"magento:{increment_id}"}))["items"]


async def imported(stack: Stack, increment_id: str, within: float = 10.0) -> dict[str, Any]:
    async def one() -> dict[str, Any] | None:
        sales = await sales_for(stack, increment_id)
        return sales[0] if sales else None

    return await wait_for(one, within=within)


async def all_sales(stack: Stack) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/sales", params={"limit": "1000"}))["items"]


async def on_hand(stack: Stack, sku: str) -> float:
    return (await stack.cr("GET", f"/inventory/W-1/{sku}"))["on_hand"]


async def events_for(stack: Stack, entity: str) -> list[dict[str, Any]]:
    _, body = await stack.admin("GET", "/admin/events", params={"limit": "200"})
    return [e for e in body["items"] if e["entity"] == entity]


async def settled(stack: Stack, entity: str, n: int) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]] | None:
        found = [e for e in await events_for(stack, entity) if e["status"] in ("done", "skipped", "dead")]
        return found if len(found) >= n else None

    return await wait_for(ready)


async def cr_sandbox(stack: Stack, method: str, path: str, **kwargs: Any) -> Any:
    async with stack.cr_api.request(method, stack.cr_server.make_url(f"/_sandbox/{path}"), **kwargs) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def cr_calls(stack: Stack, route: str) -> int:
    return (await cr_sandbox(stack, "GET", "stats"))["calls"].get(route, 0)


# --- the main path -------------------------------------------------------------------------------------------


async def test_completed_order_becomes_one_sale_with_lines_totals_tender_stock_and_sales_totals(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        email = catalog.customer(1).email
        buyer = (await stack.cr("GET", "/customers", params={"email": email}))["items"][0]
        before_a, before_b = await on_hand(stack, SKU_A), await on_hand(stack, SKU_B)
        totals_before = await stack.cr("GET", "/stores/W-1/sales-totals")

        order = await place(
            stack,
            [
                # a configurable line: Magento stores it as the parent row (child's SKU, the money) + a child row
                {"sku": SKU_A, "product_type": "configurable", "qty_ordered": 2, "price": 20, "tax_amount": 3.3,
                 "discount_amount": 4},
                {"sku": SKU_B, "qty_ordered": 1, "price": 8.5, "tax_amount": 0.7},
            ],
            customer_id=magento_customer(stack, email),
            shipping_amount=5,
            shipping_tax_amount=0.4,
            payment={"method": "checkmo", "additional_information": ["Check / Money order"]},
        )  # fmt: skip
        assert [r["sku"] for r in order["items"]] == [SKU_A, SKU_A, SKU_B]
        done = await complete(stack, order)

        sale = await imported(stack, order["increment_id"])
        assert sale["store_id"] == "W-1" and sale["customer_id"] == buyer["id"]
        assert [(ln["sku"], ln["quantity"], ln["unit_price"], ln["discount"], ln["tax"]) for ln in sale["lines"]] == [
            (SKU_A, 2, 20, 4, 3.3),
            (SKU_B, 1, 8.5, 0, 0.7),
        ]
        assert (sale["shipping"], sale["tax_total"]) == (5, 4.4)
        assert sale["total"] == pytest.approx(done["grand_total"]) == pytest.approx(53.9)
        assert sale["tenders"] == [{"type": "Web Orders", "amount": sale["total"]}]
        assert sale["completed_at"].startswith(done["updated_at"].replace(" ", "T"))
        assert "payment" not in sale and "checkmo" not in str(sale)

        assert await on_hand(stack, SKU_A) == before_a - 2  # the configurable line counted once
        assert await on_hand(stack, SKU_B) == before_b - 1
        totals = await stack.cr("GET", "/stores/W-1/sales-totals")
        assert totals["sales_count"] == totals_before["sales_count"] + 1
        assert totals["gross"] == pytest.approx(totals_before["gross"] + 53.9)
        assert totals["by_tender"]["Web Orders"] == pytest.approx(
            totals_before["by_tender"].get("Web Orders", 0) + 53.9
        )
        assert totals["shipping"] == pytest.approx(totals_before["shipping"] + 5)

        (event,) = await settled(stack, f"magento:order:{order['entity_id']}", 1)
        assert event["status"] == "done" and event["attempts"] == 1
        marker = await markers.get(stack.redis, order["increment_id"])
        assert marker is not None and (marker.state, marker.sale_id) == ("imported", sale["id"])


async def test_guest_order_has_no_customer_and_a_new_account_is_created_once(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        customers_before = len((await stack.cr("GET", "/customers", params={"limit": "1000"}))["items"])

        guest = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 10}], customer_email="g@example.com"))
        assert guest["customer_is_guest"] == 1
        sale = await imported(stack, guest["increment_id"])
        assert sale.get("customer_id") is None

        # A Magento account Cloud Retailer does not know yet: created there (matched by email) on the first order,
        # found by email on the second.
        account = await stack.magento(
            "POST", "customers", store="default",
            json={"customer": {"email": "New.Buyer@Example.com", "firstname": "Nia", "lastname": "Buyer"}},
            headers=QUIET,
        )  # fmt: skip
        first = await complete(stack, await place(stack, [{"sku": SKU_B, "price": 7}], customer_id=account["id"]))
        second = await complete(stack, await place(stack, [{"sku": SKU_C, "price": 9}], customer_id=account["id"]))
        one, two = await imported(stack, first["increment_id"]), await imported(stack, second["increment_id"])
        created = (await stack.cr("GET", "/customers", params={"email": "new.buyer@example.com"}))["items"]
        assert len(created) == 1 and (created[0]["first_name"], created[0]["last_name"]) == ("Nia", "Buyer")
        assert one["customer_id"] == two["customer_id"] == created[0]["id"]
        customers_after = len((await stack.cr("GET", "/customers", params={"limit": "1000"}))["items"])
        assert customers_after == customers_before + 1


# --- exactly once --------------------------------------------------------------------------------------------


async def test_duplicate_callbacks_and_later_changes_leave_one_sale(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        order = await complete(stack, await place(stack, [{"sku": SKU_A, "qty_ordered": 3, "price": 4}]))
        sale = await imported(stack, order["increment_id"])
        on_hand_after = await on_hand(stack, SKU_A)
        entity = f"magento:order:{order['entity_id']}"
        await settled(stack, entity, 1)

        data = {"order_id": order["entity_id"], "increment_id": order["increment_id"]}
        same_id = new_id()
        for msg_id in (same_id, same_id, new_id(), new_id()):  # the sender's retry, and fresh duplicates
            resp = await post_event(stack.gateway, "magento", envelope("order.completed", data), msg_id=msg_id)
            assert resp.status in (200, 202)
        events = await settled(stack, entity, 4)
        skipped = [e for e in events if e["status"] == "skipped"]
        assert len(skipped) == 3 and all(f"imported as sale {sale['id']}" in e["last_error"] for e in skipped)
        assert await sales_for(stack, order["increment_id"]) == [sale]
        assert await on_hand(stack, SKU_A) == on_hand_after
        assert await cr_calls(stack, "POST /api/v1/sales") == 1


async def test_a_crash_after_the_sale_is_created_does_not_create_a_second_one(redis_url):
    """The first try records the sale, then dies before writing "imported" (as a worker killed at that moment
    would); the retry finds the sale in Cloud Retailer by external_ref and only writes the marker."""
    registry = Registry()
    crashed: list[int] = []

    async def crash_once(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        if not crashed:
            crashed.append(ctx.attempt)
            order_id = int(events[-1].data["order_id"])
            pending = await importer.check(ctx, order_id)
            await markers.importing(ctx.redis, pending.increment_id, order_id, ctx.job_id)
            await importer.record_sales(ctx, pending)
            raise RuntimeError("worker died between 'sale created' and 'marker written'")
        await importer.on_order_completed(ctx, events)

    registry.register(Source.MAGENTO, "order.completed", crash_once)
    registry.register_job("resync-orders", resync.resync_orders)
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(registry)
        before = await on_hand(stack, SKU_B)
        order = await complete(stack, await place(stack, [{"sku": SKU_B, "qty_ordered": 2, "price": 6}]))
        (event,) = await settled(stack, f"magento:order:{order['entity_id']}", 1)
        assert (event["status"], event["attempts"]) == ("done", 2)
        (sale,) = await sales_for(stack, order["increment_id"])
        assert await cr_calls(stack, "POST /api/v1/sales") == 1
        assert await on_hand(stack, SKU_B) == before - 2
        marker = await markers.get(stack.redis, order["increment_id"])
        assert marker is not None and (marker.state, marker.sale_id) == ("imported", sale["id"])

        # Redis lost every marker: a resync re-checks, and Cloud Retailer's record still stops a second sale.
        await stack.redis.delete(markers.marker_key(order["increment_id"]))
        status, job = await stack.admin("POST", "/admin/resync/orders", json={"order_ids": [order["entity_id"]]})
        assert status == 202
        await wait_for(lambda: _job_done(stack, job["job_id"]))
        await settled(stack, f"magento:order:{order['entity_id']}", 2)
        assert await sales_for(stack, order["increment_id"]) == [sale]
        assert await cr_calls(stack, "POST /api/v1/sales") == 1


async def _job_done(stack: Stack, job_id: str) -> dict[str, Any] | None:
    _, body = await stack.admin("GET", f"/admin/jobs/{job_id}")
    assert body["status"] != "failed", body
    return body if body["status"] == "done" else None


async def test_racing_importers_end_with_one_sale_through_cloud_retailers_409(redis_url):
    """Two importers outside the queue both look (and find nothing) before either creates: the second POST
    gets Cloud Retailer's 409 with the existing sale, the last guard."""
    async with stack_for_orders(redis_url) as stack:
        order = await complete(stack, await place(stack, [{"sku": SKU_C, "price": 12}]), quiet=True)
        await cr_sandbox(stack, "PUT", "faults", json=[{"match": "GET /api/v1/sales", "latency_ms": 300}])
        async with handler_ctx(stack, "a") as a, handler_ctx(stack, "b") as b:
            results = await asyncio.gather(
                importer.import_order(a, order["entity_id"], order["increment_id"]),
                importer.import_order(b, order["entity_id"], order["increment_id"]),
            )
        (sale,) = await sales_for(stack, order["increment_id"])
        assert sorted(results) == [(sale["id"], False), (sale["id"], True)]
        assert await cr_calls(stack, "POST /api/v1/sales") == 2
        totals = await stack.cr("GET", "/stores/W-1/sales-totals")
        assert totals["sales_count"] == 1


# --- what is not imported -----------------------------------------------------------------------------------


async def test_callbacks_for_orders_not_complete_or_of_another_website_are_recorded_and_ignored(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        pending = await place(stack, [{"sku": SKU_A, "price": 10}])
        await stack.magento("POST", f"order/{pending['entity_id']}/invoice", store="default", json={})
        outlet = await stack.magento(
            "POST", "orders", store="outlet", json={"entity": {"customer_email": "o@example.com", "items": [
                {"sku": SKU_A, "price": 10}]}}
        )  # fmt: skip
        await complete(stack, outlet, quiet=True)
        for order in (pending, outlet):
            data = {"order_id": order["entity_id"], "increment_id": order["increment_id"]}
            assert (await post_event(stack.gateway, "magento", envelope("order.completed", data))).status == 202
        (not_complete,) = await settled(stack, f"magento:order:{pending['entity_id']}", 1)
        assert not_complete["status"] == "skipped"
        assert "'processing'" in not_complete["last_error"] and "not complete" in not_complete["last_error"]
        (other,) = await settled(stack, f"magento:order:{outlet['entity_id']}", 1)
        assert other["status"] == "skipped" and "not of the linked website" in other["last_error"]
        assert await all_sales(stack) == []


async def test_unknown_sku_is_a_dead_letter_replayed_once_the_product_exists(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        await stack.magento("POST", "products", json={"product": {"sku": "MG-ONLY-1", "name": "Magento only",
            "price": 15, "attribute_set_id": 4, "type_id": "simple"}})  # fmt: skip
        order = await complete(
            stack, await place(stack, [{"sku": SKU_A, "price": 5}, {"sku": "MG-ONLY-1", "price": 15}])
        )
        entity = f"magento:order:{order['entity_id']}"
        (event,) = await settled(stack, entity, 1)
        assert event["status"] == "dead"
        _, dead = await stack.admin("GET", "/admin/dead-letters")
        (letter,) = [d for d in dead["items"] if d["entity"] == entity]
        assert f"order {order['increment_id']}: Cloud Retailer has no product with SKU 'MG-ONLY-1'" in letter["reason"]
        assert await sales_for(stack, order["increment_id"]) == []

        # The poll leaves it to the operator (no second dead letter every few minutes).
        async with handler_ctx(stack) as ctx:
            await stack.redis.set(poll.CURSOR_KEY, order["updated_at"])
            report = await poll.poll(ctx)
        assert (report["in_dead_letters"], report["queued"]) == (1, 0)

        await stack.cr("POST", "/products", json={"sku": "MG-ONLY-1", "name": "Magento only", "price": 15})
        status, _ = await stack.admin("POST", f"/admin/dead-letters/{letter['id']}/replay")
        assert status == 202
        sale = await imported(stack, order["increment_id"])
        assert [ln["sku"] for ln in sale["lines"]] == [SKU_A, "MG-ONLY-1"]
        assert (await markers.get(stack.redis, order["increment_id"])).state == "imported"  # type: ignore[union-attr]


# --- events are change signals: the increment id an event carries is not trusted -----------------------------


async def test_a_callback_for_an_order_magento_does_not_have_writes_no_marker_and_hides_no_real_order(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        real = await place(stack, [{"sku": SKU_A, "price": 7}])
        # A callback naming an order id Magento does not have, with the number of a real order not complete yet.
        data = {"order_id": 987654, "increment_id": real["increment_id"]}
        assert (await post_event(stack.gateway, "magento", envelope("order.completed", data))).status == 202
        (event,) = await settled(stack, "magento:order:987654", 1)
        assert event["status"] == "skipped" and "Magento has no order 987654" in event["last_error"], event
        assert not await stack.redis.exists(keys.order_marker(real["increment_id"]))
        _, dead = await stack.admin("GET", "/admin/dead-letters")
        assert dead["total"] == 0

        # The real order completes and its callback is lost: the poll still imports it under that number.
        done = await complete(stack, real, quiet=True)
        async with handler_ctx(stack) as ctx:
            await stack.redis.set(poll.CURSOR_KEY, done["updated_at"])
            report = await poll.poll(ctx)
        assert (report["queued"], report["in_dead_letters"]) == (1, 0)
        sale = await imported(stack, real["increment_id"])
        assert [ln["sku"] for ln in sale["lines"]] == [SKU_A]


async def test_a_callback_naming_an_imported_orders_number_still_imports_the_order_it_names(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        first = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 3}]))
        first_sale = await imported(stack, first["increment_id"])
        other = await complete(stack, await place(stack, [{"sku": SKU_B, "price": 4}]), quiet=True)

        data = {"order_id": other["entity_id"], "increment_id": first["increment_id"]}
        assert (await post_event(stack.gateway, "magento", envelope("order.completed", data))).status == 202
        (event,) = await settled(stack, f"magento:order:{other['entity_id']}", 1)
        assert event["status"] == "done", event
        sale = await imported(stack, other["increment_id"])
        assert [ln["sku"] for ln in sale["lines"]] == [SKU_B]
        assert await sales_for(stack, first["increment_id"]) == [first_sale]
        marker = await markers.get(stack.redis, first["increment_id"])
        assert marker is not None and (marker.state, marker.entity_id) == ("imported", first["entity_id"])


# --- the poll and the resync ---------------------------------------------------------------------------------


async def test_lost_callbacks_are_picked_up_by_the_poll_with_its_overlap_and_paging(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        lost = [
            await complete(stack, await place(stack, [{"sku": SKU_A, "price": 3 + n}]), quiet=True) for n in range(5)
        ]
        # As if an earlier poll had already seen an order saved in the very second these were: `updated_at > cursor`
        # alone would miss them all.
        newest = max(o["updated_at"] for o in lost)
        await stack.redis.set(poll.CURSOR_KEY, newest)
        async with handler_ctx(stack, "cron:order-poll:1") as ctx:
            report = await poll.poll(ctx, page_size=2)
            for order in lost:
                await imported(stack, order["increment_id"])
            assert (report["status"], report["checked"], report["queued"]) == ("ok", 5, 5)
            overlap = timedelta(seconds=stack.settings.order_poll_overlap_seconds)
            assert report["since"] == magento_time(parse_time(newest) - overlap)
            assert report["cursor"] == newest == (await stack.redis.get(poll.CURSOR_KEY)).decode()

            again = await poll.poll(ctx, page_size=2)
        assert (again["checked"], again["queued"], again["already_imported"]) == (5, 0, 5)
        assert len(await all_sales(stack)) == 5
        _, status = await stack.admin("GET", "/admin/status")
        shown = status["reports"]["order-poll"]
        assert shown["already_imported"] == 5 and shown["cursor"] == newest


async def test_resync_by_ids_and_since_imports_what_is_missing_and_never_duplicates(redis_url):
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        lost = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 11}]), quiet=True)
        seen = await complete(stack, await place(stack, [{"sku": SKU_B, "price": 12}]))
        await imported(stack, seen["increment_id"])
        open_order = await place(stack, [{"sku": SKU_C, "price": 13}])

        ids = [lost["entity_id"], seen["entity_id"], open_order["entity_id"], 999, lost["entity_id"]]
        status, job = await stack.admin("POST", "/admin/resync/orders", json={"order_ids": ids})
        assert status == 202
        result = (await wait_for(lambda: _job_done(stack, job["job_id"])))["result"]
        assert (result["checked"], result["queued"], result["already_imported"]) == (2, 1, 1)
        assert result["not_complete"] == [f"{open_order['increment_id']} (new)"] and result["not_found"] == ["999"]
        await imported(stack, lost["increment_id"])

        later = await complete(stack, await place(stack, [{"sku": SKU_C, "price": 14}]), quiet=True)
        status, job = await stack.admin("POST", "/admin/resync/orders", json={"since": "2000-01-01T00:00:00Z"})
        result = (await wait_for(lambda: _job_done(stack, job["job_id"])))["result"]
        assert (result["checked"], result["queued"], result["already_imported"]) == (3, 1, 2)
        await imported(stack, later["increment_id"])
        assert len(await all_sales(stack)) == 3
        assert await cr_calls(stack, "POST /api/v1/sales") == 3

        status, job = await stack.admin("POST", "/admin/resync/orders", json={})
        assert status == 202

        async def failed() -> dict[str, Any] | None:
            _, body = await stack.admin("GET", f"/admin/jobs/{job['job_id']}")
            return body if body["status"] == "failed" else None

        assert "give order_ids and/or since" in (await wait_for(failed))["error"]


@pytest.mark.slow
async def test_the_poll_runs_once_per_interval_across_two_workers(redis_url):
    """The scheduler claims each due run once, whatever the number of workers. Every second here (the shipped
    interval is CRMAGENTO_ORDER_POLL_INTERVAL_MINUTES) to see several runs."""

    async def recorded(run: Run) -> str:
        await run.ctx.redis.rpush("test:poll-runs", run.run_id)
        return await poll.POLL.run(run)

    registry = orders_only()
    registry.register_periodic(replace(poll.POLL, interval=lambda _: 1.0, run=recorded))
    async with stack_for_orders(redis_url) as stack:
        order = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 21}]), quiet=True)
        await stack.start_worker(registry)
        await stack.start_worker(registry)
        await imported(stack, order["increment_id"], within=15)
        await wait_for(lambda: _runs_at_least(stack, 3), within=15)
        await stack.stop_workers()
        _, status = await stack.admin("GET", "/admin/status")
        runs = [r.decode() for r in await stack.redis.lrange("test:poll-runs", 0, -1)]
        assert len(runs) == len(set(runs)) >= 3
        assert await cr_calls(stack, "POST /api/v1/sales") == 1
        shown = status["reports"]["order-poll"]
        assert shown["run_id"] in runs and shown["trigger"] == "schedule" and shown["status"] == "ok"


async def _runs_at_least(stack: Stack, n: int) -> bool:
    return await stack.redis.llen("test:poll-runs") >= n


def test_the_shipped_schedule_follows_the_interval_setting(settings) -> None:
    assert poll.POLL.name == "order-poll" and poll.POLL.interval(settings) == 5 * 60
    every90 = settings.model_copy(update={"order_poll_interval_minutes": 90})
    assert poll.POLL.interval(every90) == 90 * 60  # due times, not the clock's minutes: no gap at the hour
    registry = orders_only()
    assert list(registry.periodic) == ["order-poll"] and "resync-orders" in registry.admin_jobs
