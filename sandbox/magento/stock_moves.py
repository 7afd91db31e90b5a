"""What a sale does to stock, in the mode the store runs (docs/magento-api-notes.md, item 13).

With MSI (`Magento_Inventory*`): placing an order appends a reservation of -qty per SKU on the stock, so the
salable quantity drops and the source items do not move; a shipment deducts from the source item of the
shipment's source (`SourceDeductionService`, refused when the source holds too little) and appends +qty, so
the salable quantity does not drop a second time; a cancel appends +qty for what was canceled.

Without MSI (legacy CatalogInventory): placing an order takes the qty off the stock item at once
(`StockManagement::registerProductsSale`, out of stock at the minimum unless backorders), a shipment moves
nothing, a cancel puts back what was canceled (`CancelOrderItemObserver` -> `backItemQty`).

Stock moves on the rows that carry stock: the simple child of a configurable line, never its parent. A
product the store does not have, or one with `manage_stock` off, moves nothing; nor does a SKU the sandbox
holds no stock record for (no source item at the source; a real store would have one at 0 and refuse the
shipment) other than by its MSI reservations. The sandbox's order create
stands in for checkout, so it applies the placement; unlike checkout it does not refuse a quantity the
stock cannot cover (the salable quantity, or the legacy qty, goes below zero instead).
"""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.magento.errors import MagentoError, product_not_found
from sandbox.magento.state import DEFAULT_STOCK_ID, MagentoState
from sandbox.magento.stock import DEFAULT_SETTINGS, DEFAULT_SOURCE

# Product types that hold a quantity of their own (`IsSourceItemManagementAllowedForProductType`)
QTY_TYPES = frozenset({"simple", "virtual", "downloadable"})
NOT_ENOUGH = "Not all of your products are available in the requested quantity."

Move = tuple[str, float]  # (SKU, qty)


def msi(state: MagentoState) -> bool:
    return state.config.msi


def setting(state: MagentoState, sku: str, name: str) -> Any:
    return state.stock_flags.get(sku.lower(), {}).get(name, DEFAULT_SETTINGS[name])


def _managed(state: MagentoState, sku: str) -> bool:
    return state.product(sku) is not None and bool(setting(state, sku, "manage_stock"))


def stock_rows(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows whose SKU holds the stock: a row with children (a configurable parent) never does."""
    parents = {r["parent_item_id"] for r in order["items"] if r.get("parent_item_id") is not None}
    return [r for r in order["items"] if r["item_id"] not in parents and r["product_type"] in QTY_TYPES]


def stock_row_of(order: dict[str, Any], top: dict[str, Any]) -> dict[str, Any] | None:
    """The row that carries a top-level row's stock: its child for a configurable line, else itself."""
    child = next((r for r in order["items"] if r.get("parent_item_id") == top["item_id"]), None)
    row = child or top
    return row if row["product_type"] in QTY_TYPES else None


def _reserve(state: MagentoState, order: dict[str, Any], moves: list[Move], event_type: str, sign: float) -> None:
    metadata = orjson.dumps(
        {
            "event_type": event_type,
            "object_type": "order",
            "object_id": str(order["entity_id"]),
            "object_increment_id": order["increment_id"],
        }
    ).decode()
    for sku, qty in moves:
        if qty > 0 and _managed(state, sku):
            state.add_reservation(DEFAULT_STOCK_ID, sku, sign * qty, metadata)


def _legacy_add(state: MagentoState, sku: str, delta: float) -> None:
    """The stock item's qty moves by delta; the stock status follows it as the legacy save rules set it."""
    item = state.source_item(sku, DEFAULT_SOURCE)
    if item is None or not _managed(state, sku):
        return
    quantity = item.quantity + delta
    status = item.status
    backorders = bool(setting(state, sku, "backorders"))
    flags = state.stock_flags.setdefault(sku.lower(), {})
    if delta < 0 and status and quantity <= setting(state, sku, "min_qty") and not backorders:
        status = 0
        flags["stock_status_changed_auto"] = 1  # so that a return may bring it back in stock
    elif (
        delta > 0
        and not status
        and flags.get("stock_status_changed_auto")
        and quantity > setting(state, sku, "min_qty")
    ):
        status = 1
        flags["stock_status_changed_auto"] = 0
    state.put_source_item(item.sku, DEFAULT_SOURCE, quantity, status)


def placed(state: MagentoState, order: dict[str, Any]) -> None:
    moves = [(r["sku"], r["qty_ordered"]) for r in stock_rows(order)]
    if msi(state):
        _reserve(state, order, moves, "order_placed", -1.0)
        return
    for sku, qty in moves:
        _legacy_add(state, sku, -qty)


def shipment_source(state: MagentoState, data: dict[str, Any]) -> str | None:
    """`arguments.extension_attributes.source_code` (MSI only; the attribute does not exist without it)."""
    if not msi(state):
        return None
    arguments = data.get("arguments") if isinstance(data.get("arguments"), dict) else {}
    extension = arguments.get("extension_attributes") if isinstance(arguments.get("extension_attributes"), dict) else {}
    code = extension.get("source_code")
    if code in (None, ""):
        return DEFAULT_SOURCE
    if str(code) not in state.sources:
        raise MagentoError(404, 'Source with code "%value" does not exist.', {"value": str(code)})
    return str(code)


def check_deduction(state: MagentoState, moves: list[Move], source_code: str | None) -> None:
    """Refuse the shipment before anything changes when the source cannot give what it ships."""
    if source_code is None:
        return
    needed: dict[str, float] = {}
    for sku, qty in moves:
        if _managed(state, sku):
            needed[sku] = needed.get(sku, 0.0) + qty
    for sku, qty in needed.items():
        item = state.source_item(sku, source_code)
        if item is not None and item.quantity - qty < 0 and not setting(state, sku, "backorders"):
            raise MagentoError(400, NOT_ENOUGH)


def shipped(state: MagentoState, order: dict[str, Any], moves: list[Move], source_code: str | None) -> None:
    if source_code is None:
        return  # legacy: the qty left the stock item when the order was placed
    for sku, qty in moves:
        item = state.source_item(sku, source_code)
        if item is None or not _managed(state, sku):
            continue
        quantity = item.quantity - qty
        in_stock = quantity > setting(state, sku, "min_qty") or bool(setting(state, sku, "backorders"))
        state.put_source_item(item.sku, source_code, quantity, int(in_stock))
    _reserve(state, order, moves, "shipment_created", 1.0)


def canceled(state: MagentoState, order: dict[str, Any], moves: list[Move]) -> None:
    if msi(state):
        _reserve(state, order, moves, "order_canceled", 1.0)
        return
    for sku, qty in moves:
        if qty > 0:
            _legacy_add(state, sku, qty)


def salable_qty(state: MagentoState, sku: str, stock_id: int) -> float:
    """`GetProductSalableQty`: the stock's in-stock source quantity plus its reservations, less min_qty; 0
    when no source holds the SKU in stock or the reservations made it unsalable (unless backorders)."""
    if stock_id != DEFAULT_STOCK_ID:
        raise MagentoError(400, "Could not receive Stock Item data")
    product = state.product(sku)
    if product is None:
        raise product_not_found()
    if product.type_id not in QTY_TYPES:
        raise MagentoError(400, "Can't check requested quantity for products without Source Items support.")
    items = [state.source_item(sku, code) for code, source in state.sources.items() if source.enabled]
    in_stock = [item.quantity for item in items if item is not None and item.status]
    if not in_stock:
        return 0.0
    qty = sum(in_stock) + state.reserved_qty(sku, stock_id) - float(setting(state, sku, "min_qty"))
    return qty if qty > 0 or setting(state, sku, "backorders") else 0.0
