"""The order -> sale mapper on its own: lines, configurable rows, discounts, tax, shipping and totals that add
up to Magento's grand total, on orders shaped the way the sandbox Magento (and Magento) builds them."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.order_build import build_order
from sandbox.magento.routing import resolve_scope
from sandbox.magento.seed import build_state
from workers.errors import PermanentError
from workers.sync.orders.mapper import OrderNotMappable, completed_at, map_order


def _order(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An order as the sandbox Magento's POST /V1/orders builds it (rows, totals, configurable children)."""
    state = build_state(MagentoSandboxConfig(products=3))
    return build_order(
        state, resolve_scope(state, "default"), {"customer_email": "g@example.com", "items": items, **extra}
    )


def _sale(order: dict[str, Any], customer_id: str | None = None) -> Any:
    return map_order(order, store_id="W-1", tender="Web Orders", customer_id=customer_id)


def test_lines_shipping_tax_and_total_add_up_to_the_grand_total() -> None:
    order = _order(
        [
            {"sku": "CR-000001", "product_type": "configurable", "qty_ordered": 2, "price": 20, "tax_amount": 3.3,
             "discount_amount": 4},
            {"sku": "CR-000002", "qty_ordered": 1, "price": 8.5, "tax_amount": 0.7},
        ],
        shipping_amount=5,
        shipping_tax_amount=0.4,
    )  # fmt: skip
    assert len(order["items"]) == 3  # the configurable line is a parent and a child row
    sale = _sale(order, "CU-1")
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.discount, ln.tax) for ln in sale.lines] == [
        ("CR-000001", 2, 20, 4, 3.3),
        ("CR-000002", 1, 8.5, 0, 0.7),
    ]
    assert (sale.shipping, sale.tax_total, sale.total) == (5, 4.4, 53.9)
    assert sale.total == pytest.approx(order["grand_total"])
    net = sum(ln.quantity * ln.unit_price - ln.discount for ln in sale.lines)
    assert net + sale.shipping + sale.tax_total == pytest.approx(sale.total)
    assert [(t.type, t.amount) for t in sale.tenders] == [("Web Orders", 53.9)]
    assert sale.external_ref == f"magento:{order['increment_id']}" and sale.customer_id == "CU-1"
    assert sale.store_id == "W-1"
    assert sale.completed_at.endswith("Z") and "T" in sale.completed_at


def test_payment_details_are_never_copied() -> None:
    order = _order([{"sku": "CR-000001", "price": 10}], payment={"method": "checkmo"})
    body = _sale(order).model_dump(exclude_none=True)
    assert "payment" not in str(body) and "checkmo" not in str(body)
    assert set(body) == {
        "store_id",
        "external_ref",
        "lines",
        "shipping",
        "tax_total",
        "total",
        "tenders",
        "completed_at",
    }


def test_base_currency_amounts_win_and_tax_compensation_reduces_the_discount() -> None:
    row = {"sku": "A-1", "qty_ordered": 2, "price": 99, "base_price": 50.0, "discount_amount": 12,
           "base_discount_amount": 6.0, "base_discount_tax_compensation_amount": 1.0, "base_tax_amount": 9.0,
           "tax_amount": 18}  # fmt: skip
    order = {
        "entity_id": 7, "increment_id": "000000007", "updated_at": "2026-05-01 10:03:00", "items": [row],
        "grand_total": 999, "base_grand_total": 113.0, "base_tax_amount": 10.0, "base_shipping_amount": 10.0,
        "base_shipping_discount_amount": -2.0, "base_shipping_discount_tax_compensation_amount": 0.0,
    }  # fmt: skip
    sale = _sale(order)
    (line,) = sale.lines
    assert (line.unit_price, line.discount, line.tax) == (50, 5, 9)  # 6 off incl. tax, 1 of it was tax
    assert (sale.shipping, sale.tax_total, sale.total) == (8, 10, 113)  # 95 + 8 + 10
    assert sale.completed_at == "2026-05-01T10:03:00Z"


def test_amounts_that_do_not_add_up_fail_the_order_naming_them() -> None:
    order = _order([{"sku": "CR-000001", "price": 10}], shipping_amount=5)
    order["grand_total"] = order["base_grand_total"] = 5.0  # a 10.00 gift card took the rest
    with pytest.raises(OrderNotMappable) as err:
        _sale(order)
    assert isinstance(err.value, PermanentError)
    assert "lines 10.00 + shipping 5.00 + tax 0.00 = 15.00, but the grand total is 5.00" in str(err.value)


def test_a_rounding_cent_is_tolerated_and_the_grand_total_is_what_is_tendered() -> None:
    order = _order([{"sku": "CR-000001", "qty_ordered": 3, "price": 3.3333}])
    assert order["grand_total"] == pytest.approx(9.9999)
    sale = _sale(order)
    assert sale.total == 10.0 and sale.tenders[0].amount == 10.0 and sale.lines[0].unit_price == 3.3333


def test_orders_that_cannot_be_sales() -> None:
    with pytest.raises(OrderNotMappable, match="no order rows"):
        _sale({"entity_id": 1, "increment_id": "1", "updated_at": "2026-05-01 10:00:00", "items": []})
    bad_qty = {"sku": "A", "qty_ordered": 0, "price": 1}
    with pytest.raises(OrderNotMappable, match=r"row 1 \(A\) has quantity 0"):
        _sale({"entity_id": 1, "increment_id": "1", "updated_at": "2026-05-01 10:00:00", "items": [bad_qty]})


def test_completed_at_accepts_magento_and_iso_times() -> None:
    assert completed_at({"updated_at": "2026-05-01 23:59:59"}) == "2026-05-01T23:59:59Z"
    assert completed_at({"updated_at": "2026-05-02T01:00:00+02:00"}) == "2026-05-01T23:00:00Z"
    assert completed_at({"created_at": "2026-05-01 08:00:00"}) == "2026-05-01T08:00:00Z"
