"""Invoicing and shipping an order, and the state machine they drive (`Sales/Model/ResourceModel/Order/Handler/
State::check`): new -> processing once invoiced or shipped; processing -> complete when nothing is left to
invoice and nothing is left to ship (virtual orders complete on invoice). updated_at moves on every change.
Cancel (`Order::canCancel`, `registerCancellation`) cancels what is neither invoiced nor shipped.

What shipping and canceling do to stock depends on the store's mode: stock_moves.py.
"""

from __future__ import annotations

from typing import Any

from sandbox.magento import stock_moves
from sandbox.magento.errors import MagentoError
from sandbox.magento.state import MagentoState

CLOSED_STATES = frozenset({"complete", "closed", "canceled", "holded"})
NOT_CANCELABLE = frozenset({"complete", "closed", "canceled", "holded", "payment_review"})
NOT_ALLOWED = {
    "Invoice": "The order does not allow an invoice to be created.",
    "Shipment": "The order does not allow a shipment to be created.",
}


def _top_rows(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in order["items"] if r.get("parent_item_id") is None]


def _children(order: dict[str, Any], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in order["items"] if r.get("parent_item_id") == parent["item_id"]]


def _open_qty(row: dict[str, Any], done_field: str) -> float:
    return max(0.0, row["qty_ordered"] - row[done_field] - row["qty_refunded"] - row["qty_canceled"])


def _requested(order: dict[str, Any], data: dict[str, Any], done_field: str, what: str) -> dict[int, float]:
    """item id -> qty for this document: the sent items, or everything still open."""
    rows = {r["item_id"]: r for r in _top_rows(order)}
    sent = data.get("items")
    if not sent:
        wanted = {item_id: _open_qty(r, done_field) for item_id, r in rows.items()}
        if done_field == "qty_shipped":
            wanted = {i: q for i, q in wanted.items() if not rows[i]["is_virtual"]}
        return {i: q for i, q in wanted.items() if q > 0}
    wanted = {}
    for item in sent:
        item_id, qty = int(item.get("order_item_id") or 0), float(item.get("qty") or 0)
        row = rows.get(item_id)
        if row is None:
            raise _document_error(what, NOT_ALLOWED[what])
        if qty > _open_qty(row, done_field):
            raise _document_error(
                what,
                f"The quantity to {'invoice' if what == 'Invoice' else 'ship'} must not be greater than the "
                f'un{"invoiced" if what == "Invoice" else "shipped"} quantity for product SKU "{row["sku"]}".',
            )
        if qty > 0:
            wanted[item_id] = qty
    return wanted


def _document_error(what: str, message: str) -> MagentoError:
    return MagentoError(400, f"{what} Document Validation Error(s):\n{message}")


def _refresh_parent_snapshots(order: dict[str, Any]) -> None:
    by_id = {r["item_id"]: r for r in order["items"]}
    for row in order["items"]:
        if row.get("parent_item_id") is not None:
            parent = by_id[row["parent_item_id"]]
            row["parent_item"] = {k: v for k, v in parent.items() if k != "parent_item"}


def is_complete(order: dict[str, Any]) -> bool:
    rows = _top_rows(order)
    invoiced = all(_open_qty(r, "qty_invoiced") == 0 for r in rows)
    shipped = all(r["is_virtual"] or _open_qty(r, "qty_shipped") == 0 for r in rows)
    return invoiced and shipped


def _advance(state: MagentoState, order: dict[str, Any], now: str) -> bool:
    """Move the state after a document; True when the order just became complete."""
    was = order["state"]
    if is_complete(order):
        order["state"] = order["status"] = "complete"
    elif order["state"] in ("new", "pending_payment"):
        order["state"] = order["status"] = "processing"
    order["updated_at"] = now
    for row in order["items"]:
        row["updated_at"] = now
    _refresh_parent_snapshots(order)
    state.touched("orders")
    return was != "complete" and order["state"] == "complete"


def invoice(state: MagentoState, order: dict[str, Any], data: dict[str, Any]) -> tuple[int, bool]:
    """Returns the invoice id and whether the order became complete."""
    if order["state"] in CLOSED_STATES:
        raise _document_error("Invoice", NOT_ALLOWED["Invoice"])
    wanted = _requested(order, data, "qty_invoiced", "Invoice")
    if not wanted:
        raise _document_error("Invoice", NOT_ALLOWED["Invoice"])
    now = state.now()
    rows = {r["item_id"]: r for r in order["items"]}
    subtotal = tax = discount = 0.0
    lines = []
    for item_id, qty in wanted.items():
        row = rows[item_id]
        share = qty / row["qty_ordered"]
        line_total, line_tax, line_discount = (
            row["row_total"] * share,
            row["tax_amount"] * share,
            row["discount_amount"] * share,
        )
        subtotal, tax, discount = subtotal + line_total, tax + line_tax, discount + line_discount
        for target in [row, *_children(order, row)]:
            target["qty_invoiced"] += qty
        row["row_invoiced"] = round(row["row_invoiced"] + line_total, 4)
        row["base_row_invoiced"] = row["row_invoiced"]
        row["tax_invoiced"] = round(row["tax_invoiced"] + line_tax, 4)
        row["discount_invoiced"] = round(row["discount_invoiced"] + line_discount, 4)
        lines.append({"order_item_id": item_id, "sku": row["sku"], "qty": qty, "row_total": round(line_total, 4)})
    first = not order.get("total_invoiced")
    shipping = order["shipping_amount"] if first else 0.0
    shipping_tax = order.get("shipping_tax_amount", 0.0) if first else 0.0
    amount = round(subtotal + tax + shipping + shipping_tax - discount, 4)
    for field, value in (("subtotal_invoiced", subtotal), ("tax_invoiced", tax + shipping_tax),
                         ("discount_invoiced", -discount), ("shipping_invoiced", shipping), ("total_invoiced", amount),
                         ("total_paid", amount)):  # fmt: skip
        order[field] = round(order.get(field, 0.0) + value, 4)
        order["base_" + field] = order[field]
    order["total_due"] = order["base_total_due"] = round(order["grand_total"] - order["total_paid"], 4)
    order["payment"]["amount_paid"] = order["payment"]["base_amount_paid"] = order["total_paid"]
    invoice_id = state.ids.next("sales_invoice")
    state.invoices[invoice_id] = {
        "entity_id": invoice_id,
        "order_id": order["entity_id"],
        "increment_id": f"{invoice_id:09d}",
        "state": 2,  # paid
        "grand_total": amount,
        "capture": bool(data.get("capture")),
        "items": lines,
        "created_at": now,
    }
    return invoice_id, _advance(state, order, now)


def ship(state: MagentoState, order: dict[str, Any], data: dict[str, Any]) -> tuple[int, bool]:
    """Returns the shipment id and whether the order became complete."""
    if order["state"] in CLOSED_STATES or order.get("is_virtual"):
        raise _document_error("Shipment", NOT_ALLOWED["Shipment"])
    wanted = _requested(order, data, "qty_shipped", "Shipment")
    if not wanted:
        raise _document_error("Shipment", NOT_ALLOWED["Shipment"])
    source_code = stock_moves.shipment_source(state, data)
    rows = {r["item_id"]: r for r in order["items"]}
    moves = []
    for item_id, qty in wanted.items():
        stock_row = stock_moves.stock_row_of(order, rows[item_id])
        if stock_row is not None:
            moves.append((stock_row["sku"], qty))
    stock_moves.check_deduction(state, moves, source_code)
    now = state.now()
    lines = []
    for item_id, qty in wanted.items():
        row = rows[item_id]
        for target in [row, *_children(order, row)]:
            target["qty_shipped"] += qty
        lines.append({"order_item_id": item_id, "sku": row["sku"], "qty": qty})
    stock_moves.shipped(state, order, moves, source_code)
    shipment_id = state.ids.next("sales_shipment")
    state.shipments[shipment_id] = {
        "entity_id": shipment_id,
        "order_id": order["entity_id"],
        "store_id": order.get("store_id"),
        "increment_id": f"{shipment_id:09d}",
        "total_qty": sum(line["qty"] for line in lines),
        "items": lines,
        "tracks": [t for t in data.get("tracks") or [] if isinstance(t, dict)],
        "created_at": now,
        **({"extension_attributes": {"source_code": source_code}} if source_code else {}),
    }
    return shipment_id, _advance(state, order, now)


def _qty_to_cancel(row: dict[str, Any]) -> float:
    """`Item::getQtyToCancel`: what is neither invoiced nor shipped (nor refunded) yet."""
    to_invoice = row["qty_ordered"] - row["qty_invoiced"] - row["qty_canceled"]
    to_ship = row["qty_ordered"] - max(row["qty_shipped"], row["qty_refunded"]) - row["qty_canceled"]
    return max(0.0, min(to_invoice, to_ship))


def can_cancel(order: dict[str, Any]) -> bool:
    """`Order::canCancel`: not held, in review, canceled, complete or closed, and something is uninvoiced."""
    if order["state"] in NOT_CANCELABLE:
        return False
    return any(_open_qty(r, "qty_invoiced") > 0 for r in _top_rows(order))


def cancel(state: MagentoState, order: dict[str, Any]) -> tuple[bool, bool]:
    """Returns whether the order was canceled (`OrderService::cancel` answers false otherwise) and whether it
    became complete. Rows keep what was invoiced: with invoiced units left the order stays processing (or
    completes when those are shipped already), as `registerCancellation` decides."""
    if not can_cancel(order):
        return False, False
    moves = [(r["sku"], _qty_to_cancel(r)) for r in stock_moves.stock_rows(order)]
    new_state = "canceled"
    for row in _top_rows(order):
        if new_state != "processing" and row["qty_invoiced"] - row["qty_refunded"] > 0:
            to_ship = row["qty_ordered"] - max(row["qty_shipped"], row["qty_refunded"]) - row["qty_canceled"]
            new_state = "processing" if to_ship > _qty_to_cancel(row) else "complete"
    canceled_total = 0.0
    for row in order["items"]:
        qty = _qty_to_cancel(row)
        share = qty / row["qty_ordered"] if row["qty_ordered"] else 0.0
        row["qty_canceled"] += qty
        row["tax_canceled"] = round(row.get("tax_canceled", 0.0) + row["tax_amount"] * share, 4)
        if row.get("parent_item_id") is None:
            canceled_total += (row["row_total"] + row["tax_amount"] - row["discount_amount"]) * share
    stock_moves.canceled(state, order, moves)
    if order.get("total_invoiced"):
        shipping_canceled = 0.0
    else:
        shipping_canceled = order["shipping_amount"] + order.get("shipping_tax_amount", 0.0)
    order["total_canceled"] = order["base_total_canceled"] = round(canceled_total + shipping_canceled, 4)
    order["subtotal_canceled"] = order["base_subtotal_canceled"] = round(
        sum(r["row_total"] * r["qty_canceled"] / r["qty_ordered"] for r in _top_rows(order) if r["qty_ordered"]), 4
    )
    if new_state == "canceled":
        order["total_due"] = order["base_total_due"] = 0.0
    was = order["state"]
    order["state"] = order["status"] = new_state
    now = state.now()
    order["updated_at"] = now
    for row in order["items"]:
        row["updated_at"] = now
    _refresh_parent_snapshots(order)
    state.touched("orders")
    return True, was != "complete" and new_state == "complete"
