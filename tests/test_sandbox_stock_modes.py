"""The sandbox Magento's stock through an order's life, with MSI and without, over HTTP with every answer checked
against Adobe's 2.4.9 schema (docs/magento-api-notes.md item 13): with MSI, placing reserves (salable qty
down, source items unchanged), shipping deducts from the shipment's source and compensates, canceling
compensates the unshipped part; without MSI, placing takes the stock item's qty, shipping moves nothing and
canceling gives the unshipped part back. A configurable line moves its child's SKU only."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.test_sandbox_magento import (  # noqa: F401 (receiver, start and swagger are fixtures)
    ADDRESS_TX,
    Api,
    Start,
    receiver,
    sc,
    simple,
    start,
    swagger,
)

SALABLE = "/V1/inventory/get-product-salable-quantity/{sku}/{stockId}"
BILLING = {k: v for k, v in ADDRESS_TX.items() if not k.startswith("default_")}
MODES = [pytest.param(True, id="msi"), pytest.param(False, id="legacy")]


async def open_store(start: Start, msi: bool, **stock: float) -> Api:  # noqa: F811
    """A store with two sources (MSI) and the given SKUs at these quantities in the default source."""
    api = await start(msi=msi, source_codes=["default", "warehouse"] if msi else ["default"])
    for sku, qty in stock.items():
        await api.post("/V1/products", store="all", body=simple(sku, extension_attributes={"stock_item": {"qty": qty}}))
    return api


async def place(api: Api, *lines: tuple[str, float], **line_extra: Any) -> dict[str, Any]:
    items = [{"sku": sku, "qty_ordered": qty, "price": 10, **line_extra} for sku, qty in lines]
    entity = {"customer_email": "ann@example.com", "billing_address": BILLING, "items": items}
    return await api.post("/V1/orders", body={"entity": entity})


async def ship(api: Api, order: dict[str, Any], *lines: tuple[str, float], **body: Any) -> int:
    ids = {row["sku"]: row["item_id"] for row in order["items"] if row.get("parent_item_id") is None}
    if lines:
        body["items"] = [{"order_item_id": ids[sku], "qty": qty} for sku, qty in lines]
    return await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body=body)


async def on_hand(api: Api, sku: str, source: str = "default") -> float:
    """The source item's quantity with MSI; the legacy stock item's qty without."""
    if not api.config.msi:
        return (await api.get("/V1/stockItems/{productSku}", productSku=sku))["qty"]
    found = await api.get("/V1/inventory/source-items", params=sc(("sku", sku), ("source_code", source)))
    return found["items"][0]["quantity"]


async def salable(api: Api, sku: str) -> float:
    return await api.get(SALABLE, sku=sku, stockId=1)


async def reread(api: Api, order: dict[str, Any]) -> dict[str, Any]:
    return await api.get("/V1/orders/{id}", id=order["entity_id"])


# --- placement ----------------------------------------------------------------------------------------------


async def test_placing_an_order_reserves_with_msi(start: Start) -> None:  # noqa: F811
    api = await open_store(start, True, A=10)
    order = await place(api, ("A", 3))
    assert (await on_hand(api, "A"), await salable(api, "A")) == (10, 7)
    stock_item = await api.get("/V1/stockItems/{productSku}", productSku="A")
    assert (stock_item["qty"], stock_item["is_in_stock"]) == (10, True)  # the legacy view is the source item
    [reservation] = api.state.reservations
    assert (reservation.stock_id, reservation.sku, reservation.quantity) == (1, "A", -3)
    assert orjson.loads(reservation.metadata) == {
        "event_type": "order_placed",
        "object_type": "order",
        "object_id": str(order["entity_id"]),
        "object_increment_id": order["increment_id"],
    }


async def test_placing_an_order_takes_the_stock_item_qty_without_msi(start: Start) -> None:  # noqa: F811
    api = await open_store(start, False, A=10, B=2)
    await place(api, ("A", 3), ("B", 2))
    assert (await on_hand(api, "A"), await on_hand(api, "B")) == (7, 0)
    stock_item = await api.get("/V1/stockItems/{productSku}", productSku="B")
    assert stock_item["is_in_stock"] is False  # at 0 without backorders
    product = await api.get("/V1/products/{sku}", sku="B")
    assert product["extension_attributes"]["stock_item"]["is_in_stock"] is False
    assert api.state.reservations == []
    got, body, _ = await api.send("GET", api.url(SALABLE, "default", None, {"sku": "A", "stockId": 1}))
    assert (got, body) == (404, {"message": "Request does not match any route."})


async def test_the_salable_quantity_answers_like_magento(start: Start) -> None:  # noqa: F811
    api = await open_store(start, True, A=4)
    await api.post("/V1/products", store="all", body=simple("CONF", type_id="configurable"))
    await api.post("/V1/products", store="all", body=simple("BARE"))
    assert await salable(api, "BARE") == 0  # no source holds it
    assert await api.get(SALABLE, sku="NOPE", stockId=1, status=404) == {
        "message": "The product that was requested doesn't exist. Verify the product and try again."
    }
    assert await api.get(SALABLE, sku="CONF", stockId=1, status=400) == {
        "message": "Can't check requested quantity for products without Source Items support."
    }
    await place(api, ("A", 6))
    assert await salable(api, "A") == 0  # oversold: unsalable, not negative, without backorders
    assert api.state.reserved_qty("A") == -6


# --- shipment -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("msi", MODES)
async def test_a_shipment_deducts_with_msi_and_moves_nothing_without(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, A=10)
    order = await place(api, ("A", 3))
    shipment_id = await ship(api, order)
    assert isinstance(shipment_id, int)
    assert await on_hand(api, "A") == 7  # MSI: taken now; legacy: it was taken at placement
    if msi:
        assert await salable(api, "A") == 7  # unchanged since placement: the reservation was compensated
        assert [r.quantity for r in api.state.reservations] == [-3, 3]
        assert orjson.loads(api.state.reservations[1].metadata)["event_type"] == "shipment_created"
    assert [row["qty_shipped"] for row in (await reread(api, order))["items"]] == [3]


async def test_a_shipment_from_a_named_source_deducts_there(start: Start) -> None:  # noqa: F811
    api = await open_store(start, True, A=10)
    items = [{"sku": "A", "source_code": "warehouse", "quantity": 5, "status": 1}]
    await api.post("/V1/inventory/source-items", body={"sourceItems": items})
    order = await place(api, ("A", 2))
    assert await salable(api, "A") == 13

    nowhere = {"arguments": {"extension_attributes": {"source_code": "nowhere"}}}
    refused = await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body=nowhere, status=404)
    assert refused == {"message": 'Source with code "%value" does not exist.', "parameters": {"value": "nowhere"}}
    assert (await reread(api, order))["items"][0]["qty_shipped"] == 0

    await ship(api, order, arguments={"extension_attributes": {"source_code": "warehouse"}})
    assert (await on_hand(api, "A", "warehouse"), await on_hand(api, "A", "default")) == (3, 10)
    assert await salable(api, "A") == 13
    assert api.state.shipments[max(api.state.shipments)]["extension_attributes"] == {"source_code": "warehouse"}


async def test_a_source_that_holds_too_little_refuses_the_shipment(start: Start) -> None:  # noqa: F811
    api = await open_store(start, True, A=1)
    order = await place(api, ("A", 2))
    refused = await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body={}, status=400)
    assert refused == {"message": "Not all of your products are available in the requested quantity."}
    assert await on_hand(api, "A") == 1 and len(api.state.shipments) == 0


@pytest.mark.parametrize("msi", MODES)
async def test_a_partial_shipment_of_a_two_line_order(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, A=10, B=10)
    order = await place(api, ("A", 3), ("B", 2))
    await ship(api, order, ("A", 1), ("B", 2))
    shipped = await reread(api, order)
    assert [row["qty_shipped"] for row in shipped["items"]] == [1, 2] and shipped["state"] == "processing"
    if msi:
        assert (await on_hand(api, "A"), await on_hand(api, "B")) == (9, 8)
        assert (await salable(api, "A"), await salable(api, "B")) == (7, 8)
    else:
        assert (await on_hand(api, "A"), await on_hand(api, "B")) == (7, 8)


# --- cancel -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("msi", MODES)
async def test_cancel_gives_back_the_unshipped_part(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, A=10, B=10)
    order = await place(api, ("A", 3), ("B", 2))
    await ship(api, order, ("A", 1))
    assert await api.post("/V1/orders/{id}/cancel", id=order["entity_id"]) is True
    canceled = await reread(api, order)
    assert (canceled["state"], canceled["status"]) == ("canceled", "canceled")
    assert [(row["qty_shipped"], row["qty_canceled"]) for row in canceled["items"]] == [(1, 2), (0, 2)]
    assert canceled["total_canceled"] == 40 and canceled["total_due"] == 0
    # one A left the store with the shipment; everything else is back
    assert (await on_hand(api, "A"), await on_hand(api, "B")) == (9, 10)
    if msi:
        assert (await salable(api, "A"), await salable(api, "B")) == (9, 10)
        assert orjson.loads(api.state.reservations[-1].metadata)["event_type"] == "order_canceled"
        assert sum(r.quantity for r in api.state.reservations) == 0

    # canceled stays canceled: a second cancel is refused, and so are documents that would complete it
    assert await api.post("/V1/orders/{id}/cancel", id=order["entity_id"]) is False
    await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body={}, status=400)
    await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body={}, status=400)
    after = await reread(api, order)
    assert after["state"] == "canceled" and after["updated_at"] == canceled["updated_at"]
    assert await on_hand(api, "A") == 9


@pytest.mark.parametrize("msi", MODES)
async def test_what_cannot_be_canceled(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, A=10)
    invoiced = await place(api, ("A", 2))
    await api.post("/V1/order/{orderId}/invoice", orderId=invoiced["entity_id"], body={"capture": True})
    assert await api.post("/V1/orders/{id}/cancel", id=invoiced["entity_id"]) is False  # nothing uninvoiced
    assert (await reread(api, invoiced))["state"] == "processing"
    await ship(api, invoiced)
    assert await api.post("/V1/orders/{id}/cancel", id=invoiced["entity_id"]) is False  # complete
    assert await api.post("/V1/orders/{id}/cancel", id=424242, status=404) == {
        "message": "The entity that was requested doesn't exist. Verify the entity and try again."
    }
    assert await on_hand(api, "A") == 8


@pytest.mark.parametrize("msi", MODES)
async def test_cancel_of_a_partly_invoiced_order_keeps_it_processing(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, A=10)
    order = await place(api, ("A", 3))
    item_id = order["items"][0]["item_id"]
    invoice = {"items": [{"order_item_id": item_id, "qty": 2}]}
    await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body=invoice)
    assert await api.post("/V1/orders/{id}/cancel", id=order["entity_id"]) is True
    after = await reread(api, order)
    assert after["state"] == "processing" and after["items"][0]["qty_canceled"] == 1  # two are still to ship
    assert await (salable(api, "A") if msi else on_hand(api, "A")) == 8
    await ship(api, after)
    assert (await reread(api, order))["state"] == "complete"
    assert await on_hand(api, "A") == 8


async def test_without_msi_a_cancel_brings_the_product_back_in_stock(start: Start) -> None:  # noqa: F811
    api = await open_store(start, False, A=2)
    order = await place(api, ("A", 2))
    assert (await api.get("/V1/stockItems/{productSku}", productSku="A"))["is_in_stock"] is False
    await api.post("/V1/orders/{id}/cancel", id=order["entity_id"])
    stock_item = await api.get("/V1/stockItems/{productSku}", productSku="A")
    assert (stock_item["qty"], stock_item["is_in_stock"]) == (2, True)


# --- configurable lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize("msi", MODES)
async def test_a_configurable_line_moves_the_childs_stock_only(start: Start, msi: bool) -> None:  # noqa: F811
    api = await open_store(start, msi, **{"TEE-S": 10, "TEE-M": 10})
    await api.post("/V1/products", store="all", body=simple("TEE", type_id="configurable", price=None))
    order = await place(api, ("TEE-S", 2), ("TEE-M", 1), product_type="configurable")
    parent, child = order["items"][0], order["items"][1]
    assert (parent["product_type"], child["product_type"], child["parent_item_id"]) == (
        "configurable",
        "simple",
        parent["item_id"],
    )
    if msi:
        assert (await salable(api, "TEE-S"), await on_hand(api, "TEE-S")) == (8, 10)
        assert {(r.sku, r.quantity) for r in api.state.reservations} == {("TEE-S", -2), ("TEE-M", -1)}
    else:
        assert await on_hand(api, "TEE-S") == 8
    await ship(api, order, ("TEE-S", 2))
    assert await on_hand(api, "TEE-S") == 8
    assert await api.post("/V1/orders/{id}/cancel", id=order["entity_id"]) is True
    assert await on_hand(api, "TEE-M") == 10
    if msi:
        assert (await salable(api, "TEE-S"), await salable(api, "TEE-M")) == (8, 10)
    canceled = await reread(api, order)
    assert [(row["sku"], row["qty_canceled"]) for row in canceled["items"]] == [
        ("TEE-S", 0),
        ("TEE-S", 0),
        ("TEE-M", 1),
        ("TEE-M", 1),
    ]
