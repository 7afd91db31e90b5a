"""Several stock links end to end (CRMAGENTO_STOCK_LINKS): each linked Cloud Retailer location's on-hand goes to
its own Magento MSI source and to no other, pushed on change and healed by the reconciliation link by link, less
the units held for orders shipped from that source; and a link that cannot work is refused at start-up, naming
the setting. Both sandboxes, the real gateway and real workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from crmcore.remotes import Remote
from crmcore.settings import StockLink
from gateway.app import create_app
from sandbox.catalog import sku
from tests import test_catalog as cat
from tests import test_inventory as inv
from tests import test_no_oversell as no_oversell
from tests import test_orders as ords
from tests.conftest import post_event, wait_for
from tests.support.gateway_server import GatewayServer
from tests.support.signing import envelope
from tests.support.stack import ADMIN, Stack, full_stack
from tests.test_admin_cli import _cli_for
from tests.test_openapi import check
from tests.test_outage import TIGHT, misconfigured
from workers import sync
from workers.sync import orders
from workers.sync.inventory.reconcile.report import Report

LINKS = "W-1:default,S-1:main_street"
SHOP, SHOP_SOURCE = "S-1", "main_street"
WEB, WEB_SOURCE = "W-1", "default"


async def set_at(stack: Stack, location: str, code: str, on_hand: float, *, lost: bool = False) -> None:
    headers = inv.LOST if lost else None
    await stack.cr("PUT", f"/inventory/{location}/{code}", json={"on_hand": on_hand}, headers=headers)


async def on_hand_at(stack: Stack, location: str, code: str) -> float:
    return float((await stack.cr("GET", f"/inventory/{location}/{code}"))["on_hand"])


def qty(stack: Stack, code: str, source: str) -> float | None:
    found = inv.magento_stock(stack, code, source)
    return None if found is None else found[0]


async def settled(stack: Stack) -> bool:
    statuses = await inv.event_statuses(stack)
    return bool(statuses) and all(s in ("done", "skipped") for s in statuses)


@contextlib.asynccontextmanager
async def linked_gateway(stack: Stack) -> AsyncIterator[TestClient]:
    """A gateway started with the stack's settings (the stack's own one was started before the sandboxes,
    without the links), reading the same Redis."""
    client = TestClient(GatewayServer(create_app(stack.settings)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def by_source(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["source_code"]: line for line in report["links"]}


# --- push on change ----------------------------------------------------------------------------------------


async def test_a_change_at_a_location_lands_on_its_own_source_and_not_on_the_other(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5, stock_links=LINKS) as stack:
        assert stack.settings.links == [StockLink(WEB, WEB_SOURCE), StockLink(SHOP, SHOP_SOURCE)]
        await stack.start_worker()
        web_before = qty(stack, sku(2), WEB_SOURCE)
        await set_at(stack, SHOP, sku(2), 7)
        await wait_for(lambda: qty(stack, sku(2), SHOP_SOURCE) == 7)
        await wait_for(lambda: settled(stack))
        assert qty(stack, sku(2), WEB_SOURCE) == web_before != 7

        # The reverse: the web location's change reaches `default` only.
        shop_on_hand = await on_hand_at(stack, SHOP, sku(3))
        await set_at(stack, WEB, sku(3), 11)
        await wait_for(lambda: qty(stack, sku(3), WEB_SOURCE) == 11)
        await wait_for(lambda: settled(stack))
        assert qty(stack, sku(3), SHOP_SOURCE) in (None, shop_on_hand)  # never the web's 11
        assert shop_on_hand != 11
        _, body = await stack.admin("GET", "/admin/events", params={"limit": "50"})
        assert {e["entity"] for e in body["items"]} == {
            f"cloudretailer:inventory:{SHOP}:{sku(2)}",
            f"cloudretailer:inventory:{WEB}:{sku(3)}",
        }


async def test_a_location_no_link_names_is_skipped_saying_which_are_linked(redis_url: str) -> None:
    async with full_stack(redis_url, products=3, magento_products=3, stock_links=LINKS) as stack:
        await stack.start_worker()
        body = envelope("inventory.updated", {"sku": sku(1), "store_id": "X-9", "on_hand": 5})
        assert (await post_event(stack.gateway, "cloudretailer", body)).status == 202
        await wait_for(lambda: settled(stack))
        _, events = await stack.admin("GET", "/admin/events", params={"limit": "10"})
        (event,) = events["items"]
        assert event["status"] == "skipped"
        assert "X-9 is not linked" in event["last_error"] and "S-1 -> main_street" in event["last_error"]
        assert inv.calls(stack, "POST") == 0


async def test_a_product_new_to_magento_gets_its_stock_at_every_linked_source(redis_url: str) -> None:
    registry = cat.catalog_rules()
    sync.inventory.register(registry)
    async with full_stack(redis_url, products=3, stock_links=LINKS) as stack:
        await stack.start_worker(registry)
        product = next(p for p in await cat.cr_products(stack) if not cat.is_shoes(p))
        code = product["sku"]
        # Quantities Magento cannot have by accident (a new product's default source item holds 0).
        await set_at(stack, WEB, code, 37, lost=True)
        await set_at(stack, SHOP, code, 41, lost=True)
        await stack.admin("POST", "/admin/resync/products", json={"skus": [code]})
        await wait_for(lambda: qty(stack, code, WEB_SOURCE) == 37 and qty(stack, code, SHOP_SOURCE) == 41, within=20)


# --- reconciliation ----------------------------------------------------------------------------------------


async def test_the_reconciliation_heals_a_lost_change_on_either_source_and_reports_each_link(
    redis_url: str, tmp_path: Path
) -> None:
    async with full_stack(redis_url, products=5, magento_products=5, stock_links=LINKS) as stack:
        await stack.start_worker()
        first = (await inv.reconcile_now(stack))["result"]  # the shop's source gets its first items
        assert [(x["store_id"], x["source_code"]) for x in first["links"]] == [(WEB, WEB_SOURCE), (SHOP, SHOP_SOURCE)]
        await set_at(stack, SHOP, sku(1), 21, lost=True)
        await set_at(stack, WEB, sku(2), 13, lost=True)

        dry = (await inv.reconcile_now(stack, dry_run=True))["result"]
        lines = by_source(dry)
        assert (lines[SHOP_SOURCE]["drift_found"], lines[WEB_SOURCE]["drift_found"]) == (1, 1)
        assert [d["sku"] for d in lines[SHOP_SOURCE]["drift"]] == [sku(1)]
        assert dry["drift_found"] == 2 and dry["drift_fixed"] == 0
        assert qty(stack, sku(1), SHOP_SOURCE) != 21 and qty(stack, sku(2), WEB_SOURCE) != 13

        report = (await inv.reconcile_now(stack))["result"]
        assert qty(stack, sku(1), SHOP_SOURCE) == 21 and qty(stack, sku(2), WEB_SOURCE) == 13
        lines = by_source(report)
        assert (lines[SHOP_SOURCE]["drift_fixed"], lines[WEB_SOURCE]["drift_fixed"]) == (1, 1)
        (shop_drift,) = lines[SHOP_SOURCE]["drift"]
        assert (shop_drift["sku"], shop_drift["cloud_retailer"], shop_drift["held"], shop_drift["written"]) == (
            sku(1),
            21,
            0,
            21,
        )
        assert report["drift_fixed"] == 2 == sum(x["drift_fixed"] for x in report["links"])
        assert report["compared"] == sum(x["compared"] for x in report["links"]) == 10
        # Nothing crossed over: the shop's count never reached `default`, nor the web's `main_street`.
        assert qty(stack, sku(1), WEB_SOURCE) != 21 and qty(stack, sku(2), SHOP_SOURCE) != 13

        again = (await inv.reconcile_now(stack))["result"]
        assert again["drift_found"] == 0 and [x["drift_found"] for x in again["links"]] == [0, 0]

        async with linked_gateway(stack) as gateway:
            resp = await gateway.get("/admin/status", headers=ADMIN)
            assert resp.status == 200
            status = await check(resp, "GET", "/admin/status")  # against the spec
            table = await _cli_for(f"http://{gateway.host}:{gateway.port}", tmp_path)("status")
        assert [(x["location_id"], x["source_code"], x["default"]) for x in status["stock_links"]] == [
            (WEB, WEB_SOURCE, True),
            (SHOP, SHOP_SOURCE, False),
        ]
        assert all(x["drift_found"] == 0 and x["last_reconcile"] for x in status["stock_links"])
        assert table.code == 0, table.err
        assert "Stock links" in table.out
        shop_row = next(line for line in table.out.splitlines() if SHOP_SOURCE in line and SHOP in line)
        assert "W-1 (default)" in table.out and " 0 " in shop_row


# --- no oversell, per source -------------------------------------------------------------------------------


async def test_units_shipped_from_the_shop_lower_only_the_shops_source(redis_url: str) -> None:
    code = no_oversell.SKU_A
    async with full_stack(redis_url, products=5, magento_products=5, stock_links=LINKS) as stack:
        await stack.start_worker()
        await set_at(stack, SHOP, code, 30, lost=True)
        await set_at(stack, WEB, code, 40, lost=True)
        await inv.reconcile_now(stack)
        assert (qty(stack, code, SHOP_SOURCE), qty(stack, code, WEB_SOURCE)) == (30, 40)

        order = await ords.place(stack, [{"sku": code, "qty_ordered": 3, "price": 10}])
        body = {"arguments": {"extension_attributes": {"source_code": SHOP_SOURCE}}}
        await stack.magento("POST", f"order/{order['entity_id']}/ship", store="default", json=body, headers=ords.QUIET)
        assert qty(stack, code, SHOP_SOURCE) == 27  # Magento deducted the shipment from the shop's source
        assert await no_oversell.held_now(stack, orders.msi_place(SHOP_SOURCE)) == {code: 3}
        assert await no_oversell.held_now(stack, orders.msi_place(WEB_SOURCE)) == {}

        # A lost change at each location: the shop's source gets on-hand less the 3 units, the web's all of it.
        await set_at(stack, SHOP, code, 50, lost=True)
        await set_at(stack, WEB, code, 60, lost=True)
        report = (await inv.reconcile_now(stack))["result"]
        assert (qty(stack, code, SHOP_SOURCE), qty(stack, code, WEB_SOURCE)) == (47, 60)
        lines = by_source(report)
        assert (lines[SHOP_SOURCE]["held_skus"], lines[WEB_SOURCE]["held_skus"]) == (1, 0)
        (shop_drift,) = lines[SHOP_SOURCE]["drift"]
        assert (shop_drift["cloud_retailer"], shop_drift["held"], shop_drift["written"]) == (50, 3, 47)

        # Pushed changes too.
        await set_at(stack, SHOP, code, 52)
        await set_at(stack, WEB, code, 45)
        await wait_for(lambda: qty(stack, code, SHOP_SOURCE) == 49 and qty(stack, code, WEB_SOURCE) == 45)


# --- start-up checks ---------------------------------------------------------------------------------------


async def test_a_linked_source_magento_does_not_have_is_refused_naming_the_setting(redis_url: str) -> None:
    async with full_stack(redis_url, products=3, stock_links="W-1:default,S-1:backroom", **TIGHT) as stack:
        await stack.start_worker()
        state = await misconfigured(stack, Remote.MAGENTO)
        assert state.setting == "CRMAGENTO_STOCK_LINKS"
        assert "'backroom' is not an inventory source" in state.error and "main_street" in state.error


async def test_a_linked_location_cloud_retailer_does_not_have_is_refused_naming_the_setting(redis_url: str) -> None:
    async with full_stack(redis_url, products=3, stock_links="W-1:default,X-9:main_street", **TIGHT) as stack:
        await stack.start_worker()
        state = await misconfigured(stack, Remote.CLOUDRETAILER)
        assert state.setting == "CRMAGENTO_STOCK_LINKS"
        assert "'X-9' is not a store of this Cloud Retailer" in state.error and "S-1" in state.error


async def test_several_links_on_a_magento_without_msi_are_refused(redis_url: str) -> None:
    async with full_stack(
        redis_url, products=3, magento_config={"msi": False}, stock_links="W-1:default,S-1:main_street", **TIGHT
    ) as stack:
        await stack.start_worker()
        state = await misconfigured(stack, Remote.MAGENTO)
        assert state.setting == "CRMAGENTO_STOCK_LINKS"
        assert "2 links" in state.error and "no MSI" in state.error


async def test_a_single_old_link_keeps_naming_the_old_variables(redis_url: str) -> None:
    async with full_stack(redis_url, products=3, magento_source_code="backroom", **TIGHT) as stack:
        await stack.start_worker()
        state = await misconfigured(stack, Remote.MAGENTO)
        assert state.setting == "CRMAGENTO_MAGENTO_SOURCE_CODE"
        assert state.error.startswith("CRMAGENTO_MAGENTO_SOURCE_CODE: not an inventory source of this Magento")


def test_the_totals_add_the_links_up_and_count_the_mode_read_once() -> None:
    # The totals hold the one read that found the mode; each link's part only its stock adapter's reads.
    total = Report(dry_run=False, store_id=WEB, source_code=WEB_SOURCE, magento_reads=1)
    for location, source, drift in ((WEB, WEB_SOURCE, 2), (SHOP, SHOP_SOURCE, 3)):
        part = Report(dry_run=False, store_id=location, source_code=source, drift_found=drift, magento_reads=3)
        total.add(part)
    assert total.drift_found == 5 and total.magento_reads == 7  # the mode was read once
    assert orjson.loads(orjson.dumps(total.as_dict()))["links"][1]["source_code"] == SHOP_SOURCE
