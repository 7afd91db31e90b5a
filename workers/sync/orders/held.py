"""What one Magento order has taken out of Magento's own stock count that Cloud Retailer does not know yet.
Pure: no I/O.

Magento moves its count before the order is a Cloud Retailer sale, and how depends on the inventory API:
- with MSI, placing an order only adds a reservation (Magento's own business: the salable quantity is the
  source quantity minus reservations, so subtracting ordered units here would count them twice); the source
  quantity drops when a shipment leaves that source. Held: units shipped, per source.
- with legacy stock (no MSI) the quantity drops when the order is placed and comes back when it is cancelled
  or refunded. Held: units ordered, minus cancelled and refunded.
Both are computed for every order, each under its own place (`msi:{source}` or `legacy`): which one the stock
sync reads depends on what the store has, and the ledger need not know.

Nothing is held for an order whose sale Cloud Retailer has recorded (its on-hand already counts it), nor for a
cancelled or closed one (Magento has put its units back, or they came back as a refund: they never left
Cloud Retailer's count).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from workers.sync.orders.mapper import top_rows

LEGACY = "legacy"
DEFAULT_SOURCE = "default"  # the source MSI deducts from when a shipment names none
RELEASED_STATES = frozenset({"canceled", "closed"})

Place = str
Units = dict[tuple[Place, str], float]


def msi_place(source_code: str) -> Place:
    return f"msi:{source_code}"


def _qty(row: Mapping[str, Any], field: str) -> float:
    value = row.get(field)
    return float(value) if value is not None else 0.0


def _top_rows(order: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    # The rows the sale's lines come from (mapper.top_rows): a configurable parent row carries the quantities and
    # the chosen child's SKU, which is the stock that moves.
    return {int(r["item_id"]): r for r in top_rows(order)}


def order_units(order: Mapping[str, Any], shipments: Iterable[Mapping[str, Any]]) -> Units:
    """(place, sku) -> units this order holds while it is not a Cloud Retailer sale."""
    if str(order.get("state")) in RELEASED_STATES:
        return {}
    units: defaultdict[tuple[Place, str], float] = defaultdict(float)
    rows = _top_rows(order)
    for row in rows.values():
        ordered = _qty(row, "qty_ordered") - _qty(row, "qty_canceled") - _qty(row, "qty_refunded")
        if ordered > 0:
            units[(LEGACY, str(row["sku"]))] += ordered
    for shipment in shipments:
        source = (shipment.get("extension_attributes") or {}).get("source_code") or DEFAULT_SOURCE
        for item in shipment.get("items") or []:
            row = rows.get(int(item.get("order_item_id") or 0))
            if row is None:  # a configurable's child row, when a shipment lists it too: counted by its parent
                continue
            units[(msi_place(str(source)), str(row["sku"]))] += _qty(item, "qty")
    return {key: round(qty, 4) for key, qty in units.items() if qty > 0}


def has_shipped(order: Mapping[str, Any]) -> bool:
    """Whether the order's shipments are worth reading (MSI moves stock only at shipment)."""
    return any(_qty(row, "qty_shipped") > 0 for row in _top_rows(order).values())
