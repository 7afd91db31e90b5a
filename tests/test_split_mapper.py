"""Splitting a completed order into one sale per location that shipped it, on its own (split.py, pure): which
location books which units, and money shared in cents so that the parts add up exactly to the grand total."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from crmcore.settings import StockLink
from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.order_build import build_order
from sandbox.magento.routing import resolve_scope
from sandbox.magento.seed import build_state
from workers.clients.cloudretailer_models import Sale
from workers.sync.orders import split
from workers.sync.orders.mapper import map_order

LINKS = [StockLink("W-1", "default"), StockLink("S-1", "main_street"), StockLink("S-2", "north")]


def _order(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    state = build_state(MagentoSandboxConfig(products=3))
    return build_order(
        state, resolve_scope(state, "default"), {"customer_email": "g@example.com", "items": items, **extra}
    )


def _shipment(source: str | None, *rows: tuple[dict[str, Any], float]) -> dict[str, Any]:
    shipment: dict[str, Any] = {"items": [{"order_item_id": row["item_id"], "qty": qty} for row, qty in rows]}
    if source is not None:
        shipment["extension_attributes"] = {"source_code": source}
    return shipment


def _rows(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in order["items"] if row.get("parent_item_id") is None]


def _sales(order: dict[str, Any], shipments: list[dict[str, Any]]) -> tuple[split.Plan, Sale, list[Sale]]:
    plan = split.plan(order, shipments, LINKS, "W-1")
    whole = map_order(order, store_id="W-1", tender="Web Orders", customer_id="CU-1")
    return plan, whole, split.split_sale(whole, order, plan)


def _c(value: float) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def assert_adds_up(whole: Sale, parts: list[Sale]) -> None:
    """Exactly, in cents: each part on its own (as Cloud Retailer checks it) and the parts together."""
    for part in parts:
        net = sum(_c(ln.quantity * ln.unit_price) - _c(ln.discount) for ln in part.lines)
        assert net + _c(part.shipping) + _c(part.tax_total) == _c(part.total), part
        assert [(t.type, _c(t.amount)) for t in part.tenders] == [("Web Orders", _c(part.total))]
        assert sum(_c(ln.tax) for ln in part.lines) <= _c(part.tax_total)
        assert part.customer_id == whole.customer_id and part.completed_at == whole.completed_at
    assert sum(_c(p.total) for p in parts) == _c(whole.total)
    assert sum(_c(p.shipping) for p in parts) == _c(whole.shipping)
    assert sum(_c(p.tax_total) for p in parts) == _c(whole.tax_total)
    for field in ("quantity", "discount", "tax"):
        per_sku: defaultdict[str, int] = defaultdict(int)
        for part in parts:
            for line in part.lines:
                per_sku[line.sku] += _c(getattr(line, field))
        assert dict(per_sku) == {ln.sku: _c(getattr(ln, field)) for ln in whole.lines}, field


def test_an_order_without_source_information_is_the_one_sale_it_always_was_at_the_default_location() -> None:
    order = _order([{"sku": "CR-000001", "qty_ordered": 2, "price": 10}], shipping_amount=5)
    row = _rows(order)[0]
    for shipments in ([], [_shipment(None, (row, 2))]):  # no shipment (legacy stock), or one without a source
        plan, whole, (sale,) = _sales(order, shipments)
        assert not plan.split and plan.unlinked == []
        assert sale == whole.model_copy(update={"store_id": "W-1"})
        assert sale.external_ref == f"magento:{order['increment_id']}"


def test_an_order_shipped_wholly_from_one_source_is_one_sale_at_its_location_under_the_plain_ref() -> None:
    order = _order([{"sku": "CR-000001", "price": 10}, {"sku": "CR-000002", "price": 4}], shipping_amount=5)
    a, b = _rows(order)
    plan, whole, (sale,) = _sales(order, [_shipment("main_street", (a, 1)), _shipment("main_street", (b, 1))])
    assert [p.location_id for p in plan.parts] == ["S-1"]
    assert split.refs(order["increment_id"], plan) == [f"magento:{order['increment_id']}"]
    assert sale.store_id == "S-1" and sale.lines == whole.lines and sale.total == whole.total


def test_a_source_no_link_names_is_booked_at_the_default_location_and_named() -> None:
    order = _order([{"sku": "CR-000001", "price": 10}, {"sku": "CR-000002", "price": 4}])
    a, b = _rows(order)
    plan, _whole, sales = _sales(order, [_shipment("pop_up", (a, 1)), _shipment("main_street", (b, 1))])
    assert plan.unlinked == ["pop_up"]
    assert [(s.store_id, [ln.sku for ln in s.lines]) for s in sales] == [("W-1", ["CR-000001"]), ("S-1", ["CR-000002"])]


def test_three_parts_share_10_00_shipping_in_cents_and_the_last_takes_the_remainder() -> None:
    order = _order(
        [{"sku": "CR-000001", "price": 10}, {"sku": "CR-000002", "price": 10}, {"sku": "CR-000003", "price": 10}],
        shipping_amount=10,
    )
    a, b, c = _rows(order)
    shipments = [_shipment("north", (c, 1)), _shipment("main_street", (b, 1)), _shipment("default", (a, 1))]
    plan, whole, sales = _sales(order, shipments)
    # parts in the links' order, whatever order the shipments came in
    assert [(s.store_id, s.external_ref) for s in sales] == [
        ("W-1", f"magento:{order['increment_id']}:W-1"),
        ("S-1", f"magento:{order['increment_id']}:S-1"),
        ("S-2", f"magento:{order['increment_id']}:S-2"),
    ]
    assert split.refs(order["increment_id"], plan) == [s.external_ref for s in sales]
    assert [s.shipping for s in sales] == [3.33, 3.33, 3.34]
    assert [s.total for s in sales] == [13.33, 13.33, 13.34]
    assert_adds_up(whole, sales)


def test_a_line_shipped_from_two_sources_is_split_by_shipped_quantity_with_its_discount_and_tax() -> None:
    order = _order(
        [{"sku": "CR-000001", "qty_ordered": 3, "price": 4.99, "discount_amount": 1, "tax_amount": 1}],
        shipping_amount=7,
        shipping_tax_amount=0.7,
    )
    (row,) = _rows(order)
    plan, whole, (here, there) = _sales(order, [_shipment("default", (row, 2)), _shipment("main_street", (row, 1))])
    assert [(p.location_id, dict(p.quantities)) for p in plan.parts] == [
        ("W-1", {row["item_id"]: 2}),
        ("S-1", {row["item_id"]: 1}),
    ]
    assert [(ln.quantity, ln.unit_price, ln.discount, ln.tax) for ln in here.lines] == [(2, 4.99, 0.66, 0.66)]
    assert [(ln.quantity, ln.unit_price, ln.discount, ln.tax) for ln in there.lines] == [(1, 4.99, 0.34, 0.34)]
    assert_adds_up(whole, [here, there])


def test_discounts_on_lines_and_shipping_and_awkward_cents_still_add_up_exactly() -> None:
    order = _order(
        [
            {"sku": "CR-000001", "qty_ordered": 7, "price": 3.17, "discount_amount": 2.01, "tax_amount": 1.93},
            {"sku": "CR-000002", "qty_ordered": 2, "price": 0.99, "discount_amount": 0.33, "tax_amount": 0.11},
            {"sku": "CR-000003", "qty_ordered": 1, "price": 12.5, "tax_amount": 1.01},
        ],
        shipping_amount=6.67,
        shipping_tax_amount=0.57,
    )
    grand_total = round(order["grand_total"] - 1.01, 4)
    for prefix in ("", "base_"):  # a cart rule took 1.01 off the shipping
        order[f"{prefix}shipping_discount_amount"] = -1.01
        order[f"{prefix}grand_total"] = grand_total
    a, b, c = _rows(order)
    shipments = [
        _shipment("default", (a, 3), (b, 1)),
        _shipment("main_street", (a, 2), (c, 1)),
        _shipment("north", (a, 2), (b, 1)),
    ]
    _plan, whole, sales = _sales(order, shipments)
    assert [s.store_id for s in sales] == ["W-1", "S-1", "S-2"]
    assert whole.shipping == 5.66
    assert_adds_up(whole, sales)


def test_a_configurable_line_is_split_by_its_parent_row_even_when_a_shipment_lists_the_child_too() -> None:
    order = _order([{"sku": "CR-000001", "product_type": "configurable", "qty_ordered": 2, "price": 20}])
    parent = _rows(order)[0]
    child = next(row for row in order["items"] if row.get("parent_item_id") == parent["item_id"])
    _plan, whole, sales = _sales(
        order, [_shipment("default", (parent, 1), (child, 1)), _shipment("main_street", (parent, 1), (child, 1))]
    )
    assert [(s.store_id, [(ln.sku, ln.quantity) for ln in s.lines]) for s in sales] == [
        ("W-1", [("CR-000001", 1)]),
        ("S-1", [("CR-000001", 1)]),
    ]
    assert_adds_up(whole, sales)


def test_units_never_shipped_stay_at_the_default_location() -> None:
    order = _order([{"sku": "CR-000001", "qty_ordered": 3, "price": 5}])
    (row,) = _rows(order)
    _plan, whole, sales = _sales(order, [_shipment("main_street", (row, 1))])
    assert [(s.store_id, s.lines[0].quantity) for s in sales] == [("W-1", 2), ("S-1", 1)]
    assert_adds_up(whole, sales)


def test_apportion_rounds_down_and_gives_the_remainder_to_the_last_share() -> None:
    third = [Decimal(1)] * 3
    assert split.apportion(1000, third) == [333, 333, 334]
    assert split.apportion(1, [Decimal(1), Decimal(1)]) == [0, 1]
    assert split.apportion(500, [Decimal(0), Decimal(0)]) == [250, 250]  # nothing to weigh by: equal shares
    assert split.apportion(1001, [Decimal(3), Decimal(1)]) == [750, 251]
    assert split.apportion(0, third) == [0, 0, 0]


def test_a_cent_lost_to_four_decimal_unit_prices_goes_to_the_last_part_so_the_totals_still_add_up() -> None:
    order = _order([{"sku": "CR-000001", "qty_ordered": 3, "price": 3.3333}])  # grand total 9.9999 -> 10.00
    (row,) = _rows(order)
    shipments = [_shipment("default", (row, 1)), _shipment("main_street", (row, 1)), _shipment("north", (row, 1))]
    _plan, whole, sales = _sales(order, shipments)
    assert whole.total == 10.0
    assert [(s.lines[0].quantity, s.lines[0].unit_price) for s in sales] == [(1, 3.3333)] * 3  # 3.33 each
    assert [(s.shipping, s.total) for s in sales] == [(0, 3.33), (0, 3.33), (0.01, 3.34)]
    assert sum(_c(s.total) for s in sales) == 1000
    for part in sales:
        assert _c(part.lines[0].quantity * part.lines[0].unit_price) + _c(part.shipping) == _c(part.total)
