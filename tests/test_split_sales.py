"""Several shops, sales side, end to end: with the stock links W-1:default and S-1:main_street, a completed
Magento order becomes one Cloud Retailer sale per location that shipped part of it (MSI records the source on
each shipment), with stock lowered and sales totals raised there; exactly once per part, whatever is repeated
or wherever a worker dies; an order without source information goes to W-1 as before."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from sandbox import catalog
from tests.conftest import post_event, wait_for
from tests.support.signing import envelope, new_id
from tests.support.stack import Stack, full_stack
from tests.test_orders import (
    QUIET,
    _job_done,
    all_sales,
    cr_calls,
    cr_sandbox,
    handler_ctx,
    orders_only,
    place,
    sales_for,
    settled,
)
from workers.clients.errors import TransientApiError
from workers.registry import HandlerContext
from workers.services import Services
from workers.sync.orders import importer, markers

SKU_A, SKU_B, SKU_C = catalog.product(1).sku, catalog.product(2).sku, catalog.product(3).sku
LINKS = "W-1:default,S-1:main_street"
# With this seed the sandbox's fault rolls on POST /sales let the first through and fail the next ones: the
# first part is created, the second never gets through the client's retries (a worker dying in between).
FAULT_SEED = 93
FIRST_POST_ONLY = {"match": "POST /api/v1/sales", "error_rate": 0.9, "error_status": 503}


@contextlib.asynccontextmanager
async def split_stack(redis_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    magento_config = {"customers": 3, **overrides.pop("magento_config", {})}
    async with full_stack(
        redis_url,
        products=10,
        customers=5,
        magento_products=10,
        magento_config=magento_config,
        stock_links=overrides.pop("stock_links", LINKS),
        **overrides,
    ) as stack:
        yield stack


def _rows(order: dict[str, Any]) -> dict[str, int]:
    return {row["sku"]: row["item_id"] for row in order["items"] if row.get("parent_item_id") is None}


async def stock_at(stack: Stack, source: str, qty: float, *skus: str) -> None:
    items = [{"sku": sku, "source_code": source, "quantity": qty, "status": 1} for sku in skus]
    await stack.magento("POST", "inventory/source-items", json={"sourceItems": items})


async def source_qty(stack: Stack, source: str, sku: str) -> float:
    criteria = {
        "searchCriteria[filterGroups][0][filters][0][field]": "sku",
        "searchCriteria[filterGroups][0][filters][0][value]": sku,
        "searchCriteria[filterGroups][1][filters][0][field]": "source_code",
        "searchCriteria[filterGroups][1][filters][0][value]": source,
    }
    (item,) = (await stack.magento("GET", "inventory/source-items", params=criteria))["items"]
    return float(item["quantity"])


async def invoice(stack: Stack, order: dict[str, Any]) -> None:
    await stack.magento("POST", f"order/{order['entity_id']}/invoice", store="default", json={"capture": True})


async def ship(
    stack: Stack, order: dict[str, Any], source: str | None, items: dict[str, float], *, quiet: bool = False
) -> int:
    """One shipment of `items` (sku -> qty) from `source`, sent the way Adobe's schema shapes it."""
    rows = _rows(order)
    body: dict[str, Any] = {"items": [{"order_item_id": rows[sku], "qty": qty} for sku, qty in items.items()]}
    if source is not None:
        body["arguments"] = {"extension_attributes": {"source_code": source}}
    path = f"order/{order['entity_id']}/ship"
    return int(await stack.magento("POST", path, store="default", json=body, headers=QUIET if quiet else None))


async def on_hand(stack: Stack, location: str, sku: str) -> float:
    return (await stack.cr("GET", f"/inventory/{location}/{sku}"))["on_hand"]


async def totals(stack: Stack, location: str) -> dict[str, Any]:
    return await stack.cr("GET", f"/stores/{location}/sales-totals")


async def sale(stack: Stack, ref: str) -> dict[str, Any] | None:
    found = (await stack.cr("GET", "/sales", params={"external_ref": ref}))["items"]
    return found[0] if found else None


async def booked(stack: Stack, *refs: str, within: float = 10.0) -> list[dict[str, Any]]:
    async def all_there() -> list[dict[str, Any]] | None:
        found = [await sale(stack, ref) for ref in refs]
        return found if all(found) else None  # type: ignore[return-value]

    return await wait_for(all_there, within=within)


async def sales_of(stack: Stack, increment_id: str) -> list[dict[str, Any]]:
    """Every sale Cloud Retailer holds for the order, under any ref."""
    prefix = f"magento:{increment_id}"
    return [s for s in await all_sales(stack) if s["external_ref"].split(":")[:2] == prefix.split(":")]


def cents(value: float) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


async def split_order(stack: Stack) -> dict[str, Any]:
    """2 x A and 1 x B from default, 2 x B from main_street (completed quietly: no callback)."""
    order = await place(
        stack,
        [
            {"sku": SKU_A, "qty_ordered": 2, "price": 9.99, "tax_amount": 1.6, "discount_amount": 1},
            {"sku": SKU_B, "qty_ordered": 3, "price": 4.5, "tax_amount": 1.08},
        ],
        shipping_amount=10,
        shipping_tax_amount=0.8,
    )
    await invoice(stack, order)
    await ship(stack, order, "default", {SKU_A: 2, SKU_B: 1}, quiet=True)
    await ship(stack, order, "main_street", {SKU_B: 2}, quiet=True)
    done = await stack.magento("GET", f"orders/{order['entity_id']}", store="default")
    assert done["state"] == "complete"
    return done


# --- where it shipped from ----------------------------------------------------------------------------------


async def test_an_order_shipped_wholly_from_main_street_is_one_sale_at_S1_lowering_S1s_stock(redis_url):
    async with split_stack(redis_url) as stack:
        await stack.start_worker(orders_only())
        await stock_at(stack, "main_street", 10, SKU_A)
        before = {loc: await on_hand(stack, loc, SKU_A) for loc in ("W-1", "S-1")}
        totals_before = {loc: await totals(stack, loc) for loc in ("W-1", "S-1")}

        order = await place(stack, [{"sku": SKU_A, "qty_ordered": 2, "price": 8}])
        await invoice(stack, order)
        shipment_id = await ship(stack, order, "main_street", {SKU_A: 2})  # completes it: the callback goes
        (recorded,) = await booked(stack, f"magento:{order['increment_id']}")

        assert recorded["store_id"] == "S-1" and recorded["total"] == 21  # 16 + 5 shipping
        assert [(t["type"], t["amount"]) for t in recorded["tenders"]] == [("Web Orders", 21)]
        assert await on_hand(stack, "S-1", SKU_A) == before["S-1"] - 2
        assert await on_hand(stack, "W-1", SKU_A) == before["W-1"]
        s1, w1 = await totals(stack, "S-1"), await totals(stack, "W-1")
        assert s1["sales_count"] == totals_before["S-1"]["sales_count"] + 1
        assert w1["sales_count"] == totals_before["W-1"]["sales_count"]
        assert await sales_of(stack, order["increment_id"]) == [recorded]
        # Magento deducted it at main_street, and records the source where Adobe's schema puts it
        assert await source_qty(stack, "main_street", SKU_A) == 8
        detail = await stack.magento("GET", f"shipment/{shipment_id}")
        assert detail["extension_attributes"] == {"source_code": "main_street"}
        assert (detail["order_id"], detail["store_id"]) == (order["entity_id"], order["store_id"])
        assert [(i["order_item_id"], i["qty"]) for i in detail["items"]] == [(_rows(order)[SKU_A], 2)]
        criteria = {
            "searchCriteria[filterGroups][0][filters][0][field]": "store_id",
            "searchCriteria[filterGroups][0][filters][0][value]": str(order["store_id"]),
        }
        (listed,) = (await stack.magento("GET", "shipments", params=criteria))["items"]
        assert listed["entity_id"] == shipment_id and "extension_attributes" not in listed  # the list may omit it
        marker = await markers.get(stack.redis, order["increment_id"])
        assert marker is not None and marker.state == "imported"
        assert (marker.sale_id, marker.parts) == (recorded["id"], {"S-1": recorded["id"]})


async def test_a_split_shipment_becomes_two_sales_adding_up_to_the_grand_total_each_at_its_location(redis_url):
    async with split_stack(redis_url) as stack:
        await stack.start_worker(orders_only())
        await stock_at(stack, "main_street", 10, SKU_B)
        before = {(loc, sku): await on_hand(stack, loc, sku) for loc in ("W-1", "S-1") for sku in (SKU_A, SKU_B)}
        order = await split_order(stack)
        data = {"order_id": order["entity_id"], "increment_id": order["increment_id"]}
        resp = await post_event(stack.gateway, "magento", envelope("order.completed", data), msg_id=new_id())
        assert resp.status in (200, 202)

        inc = order["increment_id"]
        here, there = await booked(stack, f"magento:{inc}:W-1", f"magento:{inc}:S-1")
        assert (here["store_id"], there["store_id"]) == ("W-1", "S-1")
        assert cents(here["total"]) + cents(there["total"]) == cents(order["grand_total"])
        assert [(ln["sku"], ln["quantity"]) for ln in here["lines"]] == [(SKU_A, 2), (SKU_B, 1)]
        assert [(ln["sku"], ln["quantity"]) for ln in there["lines"]] == [(SKU_B, 2)]
        assert cents(here["shipping"]) + cents(there["shipping"]) == 1000
        assert cents(here["tax_total"]) + cents(there["tax_total"]) == cents(order["tax_amount"])
        for part in (here, there):
            assert [(t["type"], cents(t["amount"])) for t in part["tenders"]] == [("Web Orders", cents(part["total"]))]
        assert await sale(stack, f"magento:{inc}") is None
        assert await sales_of(stack, inc) == [here, there]

        assert await on_hand(stack, "W-1", SKU_A) == before[("W-1", SKU_A)] - 2
        assert await on_hand(stack, "W-1", SKU_B) == before[("W-1", SKU_B)] - 1
        assert await on_hand(stack, "S-1", SKU_B) == before[("S-1", SKU_B)] - 2
        assert await on_hand(stack, "S-1", SKU_A) == before[("S-1", SKU_A)]
        marker = await markers.get(stack.redis, inc)
        assert marker is not None and marker.state == "imported"
        assert marker.parts == {"W-1": here["id"], "S-1": there["id"]}
        assert marker.sale_id == f"{here['id']},{there['id']}"


# --- exactly once per part ----------------------------------------------------------------------------------


async def test_a_crash_between_the_parts_repeated_callbacks_and_a_replayed_job_create_nothing_more(redis_url):
    async with split_stack(redis_url, cr_config={"fault_seed": FAULT_SEED, "faults": [FIRST_POST_ONLY]}) as stack:
        order = await split_order(stack)
        inc = order["increment_id"]

        # The first part is created, the second never gets through: the job dies between the two.
        async with handler_ctx(stack, "first") as ctx:
            with pytest.raises(TransientApiError):
                await importer.import_order(ctx, order["entity_id"], inc)
        first = await sale(stack, f"magento:{inc}:W-1")
        assert first is not None and await sale(stack, f"magento:{inc}:S-1") is None
        marker = await markers.get(stack.redis, inc)
        assert marker is not None and marker.state == "importing"  # not imported: a part is missing
        await cr_sandbox(stack, "PUT", "faults", json=[])
        posts_before = await cr_calls(stack, "POST /api/v1/sales")

        # The callback arrives: the retry creates only the second part. Then it arrives again (the sender's
        # retry under the same id, and a fresh duplicate): nothing more.
        await stack.start_worker(orders_only())
        data = {"order_id": order["entity_id"], "increment_id": inc}
        entity = f"magento:order:{order['entity_id']}"
        same = new_id()
        for msg_id, events_then in ((same, 1), (same, 1), (new_id(), 2)):
            resp = await post_event(stack.gateway, "magento", envelope("order.completed", data), msg_id=msg_id)
            assert resp.status in (200, 202)
            events = await settled(stack, entity, events_then)
        assert sorted(e["status"] for e in events) == ["done", "skipped"]
        here, there = await booked(stack, f"magento:{inc}:W-1", f"magento:{inc}:S-1")
        assert here == first
        assert await cr_calls(stack, "POST /api/v1/sales") == posts_before + 1
        marker = await markers.get(stack.redis, inc)
        assert marker is not None and marker.parts == {"W-1": here["id"], "S-1": there["id"]}

        # Redis lost every marker, and the job is replayed: each part is found by its external_ref.
        await stack.redis.delete(markers.marker_key(inc))
        status, job = await stack.admin("POST", "/admin/resync/orders", json={"order_ids": [order["entity_id"]]})
        assert status == 202
        await wait_for(lambda: _job_done(stack, job["job_id"]))
        await settled(stack, entity, 3)
        assert await sales_of(stack, inc) == [here, there]
        assert await cr_calls(stack, "POST /api/v1/sales") == posts_before + 1
        assert (await totals(stack, "S-1"))["sales_count"] == 1
        marker = await markers.get(stack.redis, inc)
        assert marker is not None and (marker.state, marker.parts) == (
            "imported",
            {"W-1": here["id"], "S-1": there["id"]},
        )


async def test_racing_importers_of_a_split_order_end_with_one_sale_per_part(redis_url):
    """Two importers both look (and find nothing) before either creates: Cloud Retailer's 409 hands back each
    part the other made."""
    async with split_stack(redis_url) as stack:
        order = await split_order(stack)
        inc = order["increment_id"]
        await cr_sandbox(stack, "PUT", "faults", json=[{"match": "GET /api/v1/sales", "latency_ms": 200}])
        async with handler_ctx(stack, "a") as a, handler_ctx(stack, "b") as b:
            results = await asyncio.gather(
                importer.import_order(a, order["entity_id"], inc), importer.import_order(b, order["entity_id"], inc)
            )
        here, there = await booked(stack, f"magento:{inc}:W-1", f"magento:{inc}:S-1")
        assert [ids for ids, _ in results] == [f"{here['id']},{there['id']}"] * 2
        assert any(created for _, created in results)
        assert await cr_calls(stack, "POST /api/v1/sales") == 4  # each part posted by both, created once
        assert await sales_of(stack, inc) == [here, there]
        assert (await totals(stack, "W-1"))["sales_count"] == 1 and (await totals(stack, "S-1"))["sales_count"] == 1


# --- no source information, a source no link names ---------------------------------------------------------


async def test_an_order_without_source_information_goes_to_W1_as_before(redis_url):
    """Legacy stock (no MSI, so one link: more is refused at start): shipments carry no source, and the sale
    is the one it always was."""
    async with split_stack(redis_url, magento_config={"msi": False}, stock_links="W-1:default") as stack:
        await stack.start_worker(orders_only())
        before = {loc: await on_hand(stack, loc, SKU_C) for loc in ("W-1", "S-1")}
        order = await place(stack, [{"sku": SKU_C, "qty_ordered": 3, "price": 2}])
        await invoice(stack, order)
        shipment_id = await ship(stack, order, None, {SKU_C: 3})
        (recorded,) = await booked(stack, f"magento:{order['increment_id']}")
        assert recorded["store_id"] == "W-1" and recorded["total"] == 11
        assert "extension_attributes" not in await stack.magento("GET", f"shipment/{shipment_id}")
        assert await on_hand(stack, "W-1", SKU_C) == before["W-1"] - 3
        assert await on_hand(stack, "S-1", SKU_C) == before["S-1"]
        assert await sales_for(stack, order["increment_id"]) == [recorded]


async def test_a_source_no_link_names_is_booked_at_W1_and_the_timeline_says_so(redis_url):
    magento_config = {"source_codes": ["default", "main_street", "pop_up"]}
    async with split_stack(redis_url, magento_config=magento_config) as stack:
        await stack.start_worker(orders_only())
        order = await place(stack, [{"sku": SKU_A, "price": 3}, {"sku": SKU_B, "price": 4}])
        await invoice(stack, order)
        await ship(stack, order, "pop_up", {SKU_A: 1}, quiet=True)
        await ship(stack, order, "main_street", {SKU_B: 1})
        inc = order["increment_id"]
        here, there = await booked(stack, f"magento:{inc}:W-1", f"magento:{inc}:S-1")
        assert [ln["sku"] for ln in here["lines"]] == [SKU_A] and [ln["sku"] for ln in there["lines"]] == [SKU_B]
        (event,) = await settled(stack, f"magento:order:{order['entity_id']}", 1)
        _, body = await stack.admin("GET", "/admin/trace", params={"q": inc})
        match = next(m for m in body["matches"] if m["kind"] == "order")
        (done,) = [e for e in match["timeline"] if e["what"] == "done"]
        assert "source 'pop_up' is not linked: its units booked at W-1" in done["detail"]
        assert event["status"] == "done"


async def test_an_order_booked_as_one_sale_before_its_shops_were_linked_is_never_booked_again(redis_url):
    """Imported with the single old link, then re-checked (marker lost) once S-1 is linked: the whole-order
    sale is found first and no part is created."""
    async with split_stack(redis_url) as stack:
        order = await split_order(stack)
        inc = order["increment_id"]
        one_link = stack.settings.model_copy(update={"stock_links": []})
        services = Services.from_settings(one_link)
        try:
            ctx = HandlerContext(redis=stack.redis, settings=one_link, job_id="before", attempt=1, services=services)
            sale_id, created = await importer.import_order(ctx, order["entity_id"], inc)
        finally:
            await services.close()
        (whole,) = await booked(stack, f"magento:{inc}")
        assert (sale_id, created, whole["store_id"]) == (whole["id"], True, "W-1")

        await stack.redis.delete(markers.marker_key(inc))
        async with handler_ctx(stack, "after") as ctx:
            assert await importer.import_order(ctx, order["entity_id"], inc) == (whole["id"], False)
        assert await sales_of(stack, inc) == [whole]
        assert await cr_calls(stack, "POST /api/v1/sales") == 1
