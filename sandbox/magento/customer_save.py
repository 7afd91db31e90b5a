"""Customers and their addresses: `AccountManagement::createAccount` (POST) and `CustomerRepository::save`
(PUT), with the validation a stock store applies, and the customer record the API returns.

Emails are unique per website (`customer/account_share/scope` = 1, the default). On save, a sent `addresses`
list replaces the stored one (addresses left out are deleted; a sent id keeps that address); without
`addresses` the stored ones and the defaults stay.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.magento.directory import COUNTRIES, REQUIRES_REGION, find_region
from sandbox.magento.errors import MagentoError, invalid_field_value, required_field
from sandbox.magento.routing import Scope
from sandbox.magento.state import Customer, MagentoState

EXTRA_FIELDS = ("middlename", "prefix", "suffix", "dob", "gender", "taxvat", "disable_auto_group_change")
ADDRESS_TEXT = ("company", "fax", "vat_id", "middlename", "prefix", "suffix")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."
MIN_PASSWORD_LENGTH = 8
MIN_PASSWORD_CLASSES = 3


def customer_view(customer: Customer) -> dict[str, Any]:
    out: dict[str, Any] = {"id": customer.id, "group_id": customer.group_id}
    billing = next((a for a in customer.addresses if a.get("default_billing")), None)
    shipping = next((a for a in customer.addresses if a.get("default_shipping")), None)
    if billing:
        out["default_billing"] = str(billing["id"])
    if shipping:
        out["default_shipping"] = str(shipping["id"])
    out.update(
        {
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
            "created_in": customer.created_in,
            "email": customer.email,
            "firstname": customer.firstname,
            "lastname": customer.lastname,
        }
    )
    out.update({k: v for k, v in customer.extra.items() if v is not None})
    out["store_id"] = customer.store_id
    out["website_id"] = customer.website_id
    out["addresses"] = [_address_view(a) for a in customer.addresses]
    out.setdefault("disable_auto_group_change", 0)
    out["extension_attributes"] = {"is_subscribed": False}
    return out


def _address_view(address: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in address.items() if v is not None and k not in ("default_billing", "default_shipping")}
    for flag in ("default_billing", "default_shipping"):
        if address.get(flag):
            out[flag] = True
    return out


# --- validation ---------------------------------------------------------------------------------------------


def _text(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    return "" if value is None else str(value).strip()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MagentoError(
            400,
            "The password needs at least %1 characters. Create a new password and try again.",
            [MIN_PASSWORD_LENGTH],
        )
    classes = sum(
        bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")
    )  # Magento's four character classes
    if classes < MIN_PASSWORD_CLASSES:
        raise MagentoError(
            400,
            "Minimum of different classes of characters in password is %1. Classes of characters: Lower Case, "
            "Upper Case, Digits, Special Characters.",
            [MIN_PASSWORD_CLASSES],
        )


def normalize_address(state: MagentoState, raw: Any, customer_id: int, keep_ids: set[int]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MagentoError(400, "Decoding error.")
    for field in ("firstname", "lastname", "city", "telephone"):
        if not _text(raw, field):
            raise required_field(field)
    street = raw.get("street")
    if isinstance(street, str):
        street = [street]
    if not isinstance(street, list) or not any(str(s).strip() for s in street):
        raise required_field("street")
    country = _text(raw, "country_id").upper()
    if not country:
        raise required_field("countryId")
    if country not in COUNTRIES:
        raise invalid_field_value("countryId", country)
    if not _text(raw, "postcode") and country in REQUIRES_REGION:
        raise required_field("postcode")
    region_raw = raw.get("region") if isinstance(raw.get("region"), dict) else {}
    region_text = raw.get("region") if isinstance(raw.get("region"), str) else region_raw.get("region")
    region_id = raw.get("region_id") or region_raw.get("region_id")
    try:
        region_id = int(region_id) if region_id not in (None, "") else None
    except (TypeError, ValueError):
        raise invalid_field_value("regionId", region_id) from None
    region = find_region(country, region_id=region_id, code=region_raw.get("region_code"), name=region_text)
    address: dict[str, Any] = {}
    raw_id = raw.get("id")
    address["id"] = int(raw_id) if raw_id is not None and str(raw_id).isdigit() and int(raw_id) in keep_ids else None
    address["customer_id"] = customer_id
    if region is not None:
        address["region"] = {"region_code": region.code, "region": region.name, "region_id": region.id}
        address["region_id"] = region.id
    elif country in REQUIRES_REGION:
        if region_id or region_raw.get("region_code") or region_text:
            raise invalid_field_value("regionId", region_id or region_raw.get("region_code") or region_text)
        raise required_field("regionId")
    else:
        # a free-text region: Magento sends nulls for the parts it does not have
        code = region_raw.get("region_code") or region_text
        address["region"] = {"region_code": code, "region": region_text, "region_id": 0}
        address["region_id"] = 0
    address["country_id"] = country
    address["street"] = [str(s) for s in street]
    address["telephone"] = _text(raw, "telephone")
    address["postcode"] = _text(raw, "postcode") or None
    address["city"] = _text(raw, "city")
    address["firstname"] = _text(raw, "firstname")
    address["lastname"] = _text(raw, "lastname")
    for field in ADDRESS_TEXT:
        if _text(raw, field):
            address[field] = _text(raw, field)
    address["default_billing"] = bool(raw.get("default_billing"))
    address["default_shipping"] = bool(raw.get("default_shipping"))
    return address


def _store_and_website(state: MagentoState, scope: Scope, data: dict[str, Any]) -> tuple[int, int]:
    default_view = state.views_by_code["default"]
    website_id = data.get("website_id")
    if website_id is None:
        website_id = scope.website_id or default_view.website_id
    try:
        website_id = int(website_id)
    except (TypeError, ValueError):
        raise invalid_field_value("website_id", website_id) from None
    if website_id not in state.websites:
        raise invalid_field_value("website_id", website_id)
    store_id = data.get("store_id")
    if store_id is None:
        store_id = scope.store_id if scope.website_id == website_id else 0
        if not store_id:
            group = state.groups[state.websites[website_id].default_group_id]
            store_id = group.default_store_id
    try:
        store_id = int(store_id)
    except (TypeError, ValueError):
        raise invalid_field_value("store_id", store_id) from None
    if store_id not in state.views or state.views[store_id].website_id != website_id:
        raise MagentoError(400, "The store view is not in the associated website.")
    return website_id, store_id


def _check_identity(state: MagentoState, data: dict[str, Any], *, email_missing: str | None = None) -> str:
    email = _text(data, "email")
    if not email:
        if email_missing:
            raise MagentoError(400, email_missing)
        raise required_field("email")
    if not _EMAIL.match(email):
        raise MagentoError(400, '"%1" is not a valid email address.', ["Email"])
    for field in ("firstname", "lastname"):
        if not _text(data, field):
            raise required_field(field)
    return email


def _group(state: MagentoState, data: dict[str, Any], default: int) -> int:
    raw = data.get("group_id")
    if raw is None:
        return default
    try:
        group_id = int(raw)
    except (TypeError, ValueError):
        raise invalid_field_value("group_id", raw) from None
    if group_id not in state.customer_groups or group_id == 0:
        raise invalid_field_value("group_id", group_id)
    return group_id


def _addresses(state: MagentoState, customer: Customer, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    keep = {int(a["id"]) for a in customer.addresses}
    addresses = [normalize_address(state, a, customer.id, keep) for a in raw]
    for flag in ("default_billing", "default_shipping"):
        flagged = [a for a in addresses if a[flag]]
        for a in flagged[:-1]:
            a[flag] = False  # one default of each kind: the last one flagged wins
    return addresses


def _assign_address_ids(state: MagentoState, addresses: list[dict[str, Any]]) -> None:
    for address in addresses:
        if address["id"] is None:
            address["id"] = state.ids.next("customer_address_entity")


# --- the two saves ------------------------------------------------------------------------------------------


def create_customer(state: MagentoState, scope: Scope, data: dict[str, Any], password: str | None) -> Customer:
    email = _check_identity(state, data)
    website_id, store_id = _store_and_website(state, scope, data)
    if (website_id, email.lower()) in state.customer_emails:
        raise MagentoError(400, DUPLICATE_EMAIL)
    if password is not None:
        check_password(password)
    now = state.now()
    customer = Customer(
        id=state.ids.peek("customer_entity") + 1,
        email=email,
        firstname=_text(data, "firstname"),
        lastname=_text(data, "lastname"),
        website_id=website_id,
        store_id=store_id,
        group_id=_group(state, data, 1),
        created_at=now,
        updated_at=now,
        created_in=state.views[store_id].name,
        extra={f: data[f] for f in EXTRA_FIELDS if data.get(f) is not None},
        password_hash="set" if password else None,
    )
    customer.addresses = _addresses(state, customer, data.get("addresses") or [])
    customer.id = state.ids.next("customer_entity")
    for address in customer.addresses:
        address["customer_id"] = customer.id
    _assign_address_ids(state, customer.addresses)
    state.customers[customer.id] = customer
    state.customer_emails[(website_id, email.lower())] = customer.id
    state.touched("customers")
    return customer


def update_customer(state: MagentoState, scope: Scope, customer: Customer, data: dict[str, Any]) -> Customer:
    """Merge of the sent keys; email, firstname, lastname and website_id must be sent (magento/magento2#21237)."""
    email = _check_identity(state, data, email_missing="The customer email is missing. Enter and try again.")
    if data.get("website_id") is None:
        raise required_field("website_id")
    merged = dict(data)
    if merged.get("store_id") is None and str(data["website_id"]) == str(customer.website_id):
        merged["store_id"] = customer.store_id  # unchanged website: the customer keeps its store
    website_id, store_id = _store_and_website(state, scope, merged)
    owner = state.customer_emails.get((website_id, email.lower()))
    if owner is not None and owner != customer.id:
        raise MagentoError(400, DUPLICATE_EMAIL)
    group_id = _group(state, data, customer.group_id)
    addresses = _addresses(state, customer, data["addresses"]) if "addresses" in data else None

    state.customer_emails.pop((customer.website_id, customer.email.lower()), None)
    customer.email, customer.firstname, customer.lastname = email, _text(data, "firstname"), _text(data, "lastname")
    customer.website_id, customer.store_id, customer.group_id = website_id, store_id, group_id
    customer.extra.update({f: data[f] for f in EXTRA_FIELDS if f in data})
    if addresses is not None:
        _assign_address_ids(state, addresses)
        customer.addresses = addresses
    customer.updated_at = state.now()
    state.customer_emails[(website_id, email.lower())] = customer.id
    state.touched("customers")
    return customer
