"""POST /V1/orders: an order entity as the repository would save it, filled in the way checkout fills it.

Sent: items (sku, qty_ordered, price, tax_amount, discount_amount, optional product_type/name/product_id),
customer_id or guest customer_email/names, shipping_amount, billing_address, payment, and optionally the
shipping address in extension_attributes.shipping_assignments. Filled in: ids, the increment id from the
store's sequence, row totals, order totals (sent totals are kept), state new/pending, UTC timestamps.

A configurable line becomes two rows exactly as checkout makes them (magento/magento2#21231): the parent row
(product_type configurable, sku = the chosen child's SKU) carries price, totals, tax and discount; the child
row (product_type simple, parent_item_id = the parent's item_id, price 0) names the variant. An item sent by
the SKU of a configurable's child, with no product_type, is such a line (the parent row names the configurable
product); stock moves stay on the child row's SKU (stock_moves.py).
"""

from __future__ import annotations

from typing import Any

from sandbox.magento.errors import MagentoError, invalid_field_value, no_such_entity, required_field
from sandbox.magento.routing import Scope
from sandbox.magento.state import DEFAULT_STOCK_ID, MagentoState, Product

VIRTUAL_TYPES = frozenset({"virtual", "downloadable"})
ORDER_ADDRESS_FIELDS = ("firstname", "lastname", "company", "street", "city", "postcode", "country_id", "telephone",
                        "email", "region", "region_code", "region_id", "customer_address_id", "middlename", "fax",
                        "vat_id")  # fmt: skip


def _number(raw: dict[str, Any], field: str, default: float = 0.0) -> float:
    value = raw.get(field)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise invalid_field_value(field, value) from None


def increment_id(state: MagentoState, store_id: int) -> str:
    """Per-store sequences as a stock install numbers them: store 1 `000000001`, store 2 `2000000001`."""
    n = state.ids.next(f"sequence_order_{store_id}")
    return f"{n:09d}" if store_id == 1 else f"{store_id}{n:09d}"


def _row(state: MagentoState, order_id: int, raw: dict[str, Any], store_id: int, now: str) -> dict[str, Any]:
    sku = str(raw.get("sku") or "").strip()
    if not sku:
        raise required_field("sku")
    product = state.product(sku)
    qty = _number(raw, "qty_ordered", 1.0)
    if qty <= 0:
        raise invalid_field_value("qty_ordered", raw.get("qty_ordered"))
    price = _number(raw, "price")
    tax = _number(raw, "tax_amount")
    discount = abs(_number(raw, "discount_amount"))  # positive on item rows, negative on the order
    # the parent row of a configurable line names the configurable product; its child row names the variant
    named = _configurable_parent(state, product, raw) or product
    product_type = str(raw.get("product_type") or (named.type_id if named else "simple"))
    row_total = round(price * qty, 4)
    row: dict[str, Any] = {
        "item_id": state.ids.next("sales_order_item"),
        "order_id": order_id,
        "store_id": store_id,
        "created_at": now,
        "updated_at": now,
        "sku": sku,
        "name": str(raw.get("name") or (named.values.get("name") if named else None) or sku),
        "product_type": product_type,
        "is_virtual": int(product_type in VIRTUAL_TYPES),
        "qty_ordered": qty,
        "qty_invoiced": 0.0,
        "qty_shipped": 0.0,
        "qty_refunded": 0.0,
        "qty_canceled": 0.0,
        "qty_backordered": 0.0,
        "price": price,
        "base_price": price,
        "original_price": _number(raw, "original_price", price),
        "base_original_price": _number(raw, "original_price", price),
        "price_incl_tax": round(price + tax / qty, 4),
        "base_price_incl_tax": round(price + tax / qty, 4),
        "row_total": row_total,
        "base_row_total": row_total,
        "row_total_incl_tax": round(row_total + tax, 4),
        "base_row_total_incl_tax": round(row_total + tax, 4),
        "row_invoiced": 0.0,
        "base_row_invoiced": 0.0,
        "tax_amount": tax,
        "base_tax_amount": tax,
        "tax_percent": round(tax / row_total * 100, 4) if row_total else 0.0,
        "tax_invoiced": 0.0,
        "discount_amount": discount,
        "base_discount_amount": discount,
        "discount_percent": round(discount / row_total * 100, 4) if row_total else 0.0,
        "discount_invoiced": 0.0,
        "amount_refunded": 0.0,
        "base_amount_refunded": 0.0,
        "no_discount": 0,
        "free_shipping": 0,
        "is_qty_decimal": 0,
    }
    product_id = raw.get("product_id") or (named.id if named else None)
    if product_id is not None:
        row["product_id"] = int(product_id)
    if product is not None and product.values.get("weight") is not None:
        row["weight"] = float(product.values["weight"])
        row["row_weight"] = round(float(product.values["weight"]) * qty, 4)
    return row


def _configurable_parent(state: MagentoState, product: Product | None, raw: dict[str, Any]) -> Product | None:
    """The configurable product a variant is bought through: an item sent by a child's SKU alone (no
    product_type) is the line checkout makes when a shopper picks that variant on its parent's page."""
    if product is None or raw.get("product_type") is not None:
        return None
    parents = state.configurable.parents_of(product.id)
    return state.products_by_id.get(parents[0]) if parents else None


def _child_row(state: MagentoState, parent: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The simple row under a configurable parent: price 0, the variant's product id and name."""
    child = dict(parent)
    variant = state.product(parent["sku"])
    money = [k for k, v in parent.items() if isinstance(v, float) and not k.startswith("qty_") and k != "weight"]
    child.update(dict.fromkeys(money, 0.0))
    child.update(
        {
            "item_id": state.ids.next("sales_order_item"),
            "parent_item_id": parent["item_id"],
            "product_type": "simple",
            "name": variant.values.get("name", parent["name"]) if variant else parent["name"],
            "parent_item": {k: v for k, v in parent.items()},
        }
    )
    if raw.get("child_product_id") is not None:
        child["product_id"] = int(raw["child_product_id"])
    elif variant is not None:
        child["product_id"] = variant.id
    if parent.get("weight") is not None:
        child["weight"], child["row_weight"] = parent["weight"], parent.get("row_weight", 0.0)
    return child


def _address(state: MagentoState, raw: Any, kind: str, order_id: int, email: str) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    address: dict[str, Any] = {"address_type": kind, "entity_id": state.ids.next("sales_order_address")}
    address["parent_id"] = order_id
    for field in ORDER_ADDRESS_FIELDS:
        value = raw.get(field)
        if isinstance(value, dict) and field == "region":  # a customer-style region object
            address["region"], address["region_code"] = value.get("region"), value.get("region_code")
            address["region_id"] = value.get("region_id")
        elif value is not None:
            address[field] = value
    address.setdefault("email", email)
    for field in ("firstname", "lastname", "city", "postcode", "country_id", "telephone"):
        if not address.get(field):
            raise required_field(f"{kind}_address.{field}")
    return address


def _customer_address(state: MagentoState, customer_id: int) -> dict[str, Any] | None:
    customer = state.customers.get(customer_id)
    if customer is None:
        return None
    address = next((a for a in customer.addresses if a.get("default_billing")), None)
    if address is None and customer.addresses:
        address = customer.addresses[0]
    if address is None:
        return None
    out = {k: v for k, v in address.items() if k in ORDER_ADDRESS_FIELDS and v is not None}
    out["customer_address_id"] = address["id"]
    return out


def build_order(state: MagentoState, scope: Scope, data: dict[str, Any]) -> dict[str, Any]:
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise required_field("items")
    store_id = int(data.get("store_id") or scope.store_id or state.views_by_code["default"].id)
    if store_id not in state.views:
        raise invalid_field_value("store_id", store_id)
    order: dict[str, Any] = {}
    customer_id = data.get("customer_id")
    if customer_id is not None and not data.get("customer_is_guest"):
        customer = state.customers.get(int(customer_id))
        if customer is None:
            raise no_such_entity("customerId", customer_id)
        order.update(
            customer_id=customer.id,
            customer_is_guest=0,
            customer_group_id=customer.group_id,
            customer_email=data.get("customer_email") or customer.email,
            customer_firstname=data.get("customer_firstname") or customer.firstname,
            customer_lastname=data.get("customer_lastname") or customer.lastname,
        )
    else:
        if not data.get("customer_email"):
            raise required_field("customer_email")
        order.update(customer_is_guest=1, customer_group_id=0, customer_email=str(data["customer_email"]))
        for field in ("customer_firstname", "customer_lastname"):
            if data.get(field):
                order[field] = str(data[field])

    entity_id = state.ids.next("sales_order")
    now = state.now()
    rows: list[dict[str, Any]] = []
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise MagentoError(400, "Decoding error.")
        if raw.get("parent_item_id") is not None:
            continue  # child rows are made from their configurable parent, as checkout does
        row = _row(state, entity_id, raw, store_id, now)
        rows.append(row)
        if row["product_type"] == "configurable":
            rows.append(_child_row(state, row, raw))
    top = [r for r in rows if r.get("parent_item_id") is None]
    subtotal = round(sum(r["row_total"] for r in top), 4)
    tax = round(sum(r["tax_amount"] for r in top), 4)
    discount = -round(sum(r["discount_amount"] for r in top), 4)
    shipping = _number(data, "shipping_amount")
    shipping_tax = _number(data, "shipping_tax_amount")
    grand_total = _number(data, "grand_total", round(subtotal + tax + shipping + shipping_tax + discount, 4))
    is_virtual = int(all(r["is_virtual"] for r in top))
    view = state.views[store_id]
    currency = str(data.get("order_currency_code") or view.base_currency_code)
    order.update(
        {
            "entity_id": entity_id,
            "increment_id": str(data.get("increment_id") or increment_id(state, store_id)),
            "state": str(data.get("state") or "new"),
            "status": str(data.get("status") or "pending"),
            "store_id": store_id,
            "store_name": "\n".join(
                (state.websites[view.website_id].name, state.groups[view.store_group_id].name, view.name)
            ),
            "created_at": str(data.get("created_at") or now),
            "updated_at": now,
            "is_virtual": is_virtual,
            "base_currency_code": view.base_currency_code,
            "global_currency_code": view.base_currency_code,
            "order_currency_code": currency,
            "store_currency_code": view.base_currency_code,
            "base_to_global_rate": 1.0,
            "base_to_order_rate": 1.0,
            "store_to_base_rate": 0.0,
            "store_to_order_rate": 0.0,
            "subtotal": subtotal,
            "base_subtotal": subtotal,
            "subtotal_incl_tax": round(subtotal + tax, 4),
            "base_subtotal_incl_tax": round(subtotal + tax, 4),
            "tax_amount": round(tax + shipping_tax, 4),
            "base_tax_amount": round(tax + shipping_tax, 4),
            "discount_amount": discount,
            "base_discount_amount": discount,
            "shipping_amount": shipping,
            "base_shipping_amount": shipping,
            "shipping_tax_amount": shipping_tax,
            "base_shipping_tax_amount": shipping_tax,
            "shipping_incl_tax": round(shipping + shipping_tax, 4),
            "base_shipping_incl_tax": round(shipping + shipping_tax, 4),
            "grand_total": grand_total,
            "base_grand_total": _number(data, "base_grand_total", grand_total),
            "total_due": grand_total,
            "base_total_due": grand_total,
            "total_qty_ordered": sum(r["qty_ordered"] for r in top),
            "total_item_count": len(top),
            "weight": round(sum(r.get("row_weight", 0.0) for r in top), 4),
            "email_sent": 0,
            "items": rows,
            "status_histories": [],
        }
    )
    if data.get("shipping_description") or not is_virtual:
        order["shipping_description"] = str(data.get("shipping_description") or "Flat Rate - Fixed")
    for field in ("coupon_code", "discount_description", "customer_note", "remote_ip", "ext_order_id"):
        if data.get(field) is not None:
            order[field] = str(data[field])

    billing_raw = data.get("billing_address")
    if billing_raw is None and order.get("customer_id") is not None:
        billing_raw = _customer_address(state, order["customer_id"])
    billing = _address(state, billing_raw, "billing", entity_id, order["customer_email"])
    if billing is not None:
        order["billing_address"] = billing
        order["billing_address_id"] = billing["entity_id"]
    payment_raw = data.get("payment") if isinstance(data.get("payment"), dict) else {}
    order["payment"] = {
        "account_status": None,  # Magento sends these two as null for offline methods
        "additional_information": [
            str(i) for i in payment_raw.get("additional_information") or ["Check / Money order"]
        ],
        "amount_ordered": grand_total,
        "base_amount_ordered": grand_total,
        "base_shipping_amount": shipping,
        "cc_last4": None,
        "entity_id": state.ids.next("sales_order_payment"),
        "method": str(payment_raw.get("method") or "checkmo"),
        "parent_id": entity_id,
        "shipping_amount": shipping,
    }
    extension: dict[str, Any] = {"converting_from_quote": False, "applied_taxes": [], "item_applied_taxes": []}
    if not is_virtual:
        shipping_address = None
        for assignment in (data.get("extension_attributes") or {}).get("shipping_assignments") or []:
            shipping_address = ((assignment or {}).get("shipping") or {}).get("address")
            break
        ship_to = _address(state, shipping_address or billing_raw, "shipping", entity_id, order["customer_email"])
        extension["shipping_assignments"] = [
            {
                "shipping": {
                    **({"address": ship_to} if ship_to else {}),
                    "method": str(data.get("shipping_method") or "flatrate_flatrate"),
                    "total": {
                        "shipping_amount": shipping,
                        "base_shipping_amount": shipping,
                        "shipping_incl_tax": round(shipping + shipping_tax, 4),
                        "base_shipping_incl_tax": round(shipping + shipping_tax, 4),
                        "shipping_tax_amount": shipping_tax,
                        "base_shipping_tax_amount": shipping_tax,
                    },
                },
                "items": rows,
                "stock_id": DEFAULT_STOCK_ID,
            }
        ]
    order["extension_attributes"] = extension
    return order
