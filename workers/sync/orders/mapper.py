"""A completed Magento order -> the Cloud Retailer sale that records it. Pure: no I/O.

Money comes from the base-currency amounts (`base_*`, the store's books) when Magento sends them, else from
the order-currency ones; the two are the same unless the shopper paid in a display currency.

What the sale holds and why:
- one line per top-level order row. A configurable line is two rows in Magento: the parent row (sku = the
  chosen child's SKU) carries price, tax and discount, the child row (parent_item_id set) carries nothing,
  so child rows are skipped and the line is imported once.
- a line's discount is the row's discount minus its discount tax compensation (with tax-inclusive prices
  Magento discounts the gross price and gives the tax part back in that field): what stays is the net
  discount, so quantity x unit price - discount is what the row really earned before tax.
- shipping is net of its discount in the same way; tax_total is the order's tax (lines plus shipping).
- the total is the order's grand total. If the parts do not add up to it (gift cards, store credit or an
  extension's fee reduce or raise it), the order fails with the amounts named: a sale with the wrong money
  is worse than a dead letter an operator can look at.
- payment details are never copied: the tender is the configured "Web Orders" type for the whole total.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from workers.clients.cloudretailer_models import Sale, SaleLine, Tender
from workers.clients.magento_time import parse_time
from workers.errors import PermanentError

CENT = Decimal("0.01")
EXTERNAL_REF_PREFIX = "magento:"


class OrderNotMappable(PermanentError):
    """The order cannot become a sale as it is (no lines, amounts that do not add up...)."""


def external_ref(increment_id: str) -> str:
    return f"{EXTERNAL_REF_PREFIX}{increment_id}"


def money(record: Mapping[str, Any], field: str) -> Decimal:
    """The base-currency amount when present, else the order-currency one; absent or null is 0."""
    value = record.get(f"base_{field}")
    if value is None:
        value = record.get(field)
    return Decimal(str(value)) if value is not None else Decimal(0)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def top_rows(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows that carry the money: a child row (parent_item_id set) is its configurable parent's variant."""
    return [row for row in order.get("items") or [] if row.get("parent_item_id") is None]


def completed_at(order: Mapping[str, Any]) -> str:
    """Magento's `Y-m-d H:i:s` (UTC, docs/magento-api-notes.md item 7) as ISO-8601 with its zone, as Cloud
    Retailer requires."""
    raw = order.get("updated_at") or order.get("created_at")
    if not raw:
        raise OrderNotMappable(f"order {order.get('increment_id')}: no updated_at or created_at")
    return parse_time(str(raw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sale_lines(order: Mapping[str, Any]) -> list[SaleLine]:
    increment_id = order.get("increment_id")
    lines = []
    for n, row in enumerate(top_rows(order)):
        sku = str(row.get("sku") or "").strip()
        if not sku:
            raise OrderNotMappable(f"order {increment_id}: row {n + 1} has no SKU")
        quantity = Decimal(str(row.get("qty_ordered") or 0))
        if quantity <= 0:
            raise OrderNotMappable(f"order {increment_id}: row {n + 1} ({sku}) has quantity {quantity}")
        unit_price = money(row, "price")
        discount = abs(money(row, "discount_amount")) - money(row, "discount_tax_compensation_amount")
        lines.append(
            SaleLine(
                sku=sku,
                quantity=float(quantity),
                # 4 decimals as Magento stores it: quantity x unit price is then the row total to the cent
                unit_price=float(unit_price.quantize(Decimal("0.0001"))),
                discount=float(cents(max(discount, Decimal(0)))),
                tax=float(cents(money(row, "tax_amount"))),
            )
        )
    if not lines:
        raise OrderNotMappable(f"order {increment_id}: no order rows to import")
    return lines


def map_order(order: Mapping[str, Any], *, store_id: str, tender: str, customer_id: str | None) -> Sale:
    """`order` is GET /V1/orders/{id} as a dict. Raises OrderNotMappable with the reason."""
    increment_id = str(order.get("increment_id") or "")
    if not increment_id:
        raise OrderNotMappable(f"order {order.get('entity_id')}: no increment_id")
    lines = sale_lines(order)
    shipping = (
        money(order, "shipping_amount")
        - abs(money(order, "shipping_discount_amount"))
        + money(order, "shipping_discount_tax_compensation_amount")
    )
    shipping = cents(max(shipping, Decimal(0)))
    line_tax = sum((Decimal(str(line.tax)) for line in lines), Decimal(0))
    tax_total = max(cents(money(order, "tax_amount")), line_tax)
    total = cents(money(order, "grand_total"))
    net = sum(
        (cents(Decimal(str(line.quantity)) * Decimal(str(line.unit_price))) - Decimal(str(line.discount)))
        for line in lines
    )
    parts = net + shipping + tax_total
    if abs(parts - total) > CENT:
        raise OrderNotMappable(
            f"order {increment_id}: lines {net} + shipping {shipping} + tax {tax_total} = {parts}, "
            f"but the grand total is {total} (gift card, store credit or an extension's amount?)"
        )
    return Sale(
        store_id=store_id,
        external_ref=external_ref(increment_id),
        customer_id=customer_id,
        lines=lines,
        shipping=float(shipping),
        tax_total=float(tax_total),
        total=float(total),
        tenders=[Tender(type=tender, amount=float(total))],
        completed_at=completed_at(order),
    )
