"""The Cloud Retailer customer an order is sold to, matched by email (the customer rule).

A guest order has none. A registered customer that Cloud Retailer does not know yet (its customer.created
callback not handled yet, or lost) is created with the names on the order; creating is safe to race because
Cloud Retailer's email is unique and a 409 hands back the existing customer. Only what identifies the buyer
is sent: the customer sync owns the rest of the record (addresses, phone) and its updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.clients.cloudretailer import CloudRetailerClient


def is_guest(order: Mapping[str, Any]) -> bool:
    return bool(order.get("customer_is_guest")) or order.get("customer_id") is None


def _names(order: Mapping[str, Any]) -> tuple[str, str]:
    billing = order.get("billing_address") or {}
    first = order.get("customer_firstname") or billing.get("firstname") or ""
    last = order.get("customer_lastname") or billing.get("lastname") or ""
    email = str(order.get("customer_email") or "")
    # Cloud Retailer requires both names; Magento does too for accounts, so the fallback is for odd data only.
    return str(first).strip()[:255] or email.split("@")[0][:255] or "Web", str(last).strip()[:255] or "Customer"


async def customer_for(cr: CloudRetailerClient, order: Mapping[str, Any]) -> str | None:
    """The Cloud Retailer customer id for this order's buyer, or None for a guest."""
    email = str(order.get("customer_email") or "").strip()
    if is_guest(order) or not email:
        return None
    found = await cr.find_customer(email)
    if found is not None:
        return found.id
    first, last = _names(order)
    customer, _created = await cr.create_customer({"email": email, "first_name": first, "last_name": last})
    return customer.id
