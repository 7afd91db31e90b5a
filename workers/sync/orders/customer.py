"""The Cloud Retailer customer an order is sold to, matched by email (the customer rule).

A guest order has none. A registered buyer that Cloud Retailer does not know yet (its customer.created
callback not handled yet, or lost) is made by the customers domain from the names on the order; this module
only reads the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.registry import HandlerContext
from workers.sync import customers


def is_guest(order: Mapping[str, Any]) -> bool:
    return bool(order.get("customer_is_guest")) or order.get("customer_id") is None


def _names(order: Mapping[str, Any]) -> tuple[str, str]:
    billing = order.get("billing_address") or {}
    first = order.get("customer_firstname") or billing.get("firstname") or ""
    last = order.get("customer_lastname") or billing.get("lastname") or ""
    return str(first), str(last)


async def customer_for(ctx: HandlerContext, order: Mapping[str, Any]) -> str | None:
    """The Cloud Retailer customer id for this order's buyer, or None for a guest."""
    email = str(order.get("customer_email") or "").strip()
    if is_guest(order) or not email:
        return None
    return await customers.ensure_in_cloudretailer(ctx, email, *_names(order))
