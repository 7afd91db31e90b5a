"""The address list a Cloud Retailer update saves on a Magento account (pure).

A save that sends `addresses` replaces the account's whole list (CustomerRepository::save deletes the ones
left out). Cloud Retailer owns the addresses it sent ("managed"; their ids are kept per account in Redis):
they follow Cloud Retailer, Magento edits to them included. Addresses the customer or an admin added in
Magento are sent back unchanged so they survive, only losing the default flag when Cloud Retailer names a
default. A stored address at the same place is reused (and updated in place), so a lost record of managed
ids, or an account linked by email that already has the address, does not duplicate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FLAGS = ("default_billing", "default_shipping")


def _s(value: Any) -> str:
    return "" if value is None else str(value).strip()


def place(address: Mapping[str, Any]) -> tuple[Any, ...]:
    """Where an address is: what makes a stored address the one Cloud Retailer means (names and phone may
    change on it, which updates it in place)."""
    region = address.get("region") if isinstance(address.get("region"), Mapping) else {}
    region_id = int(address.get("region_id") or region.get("region_id") or 0)
    region_text = "" if region_id else _s(region.get("region") or region.get("region_code")).casefold()
    return (
        tuple(s for s in (_s(x) for x in address.get("street") or []) if s),
        _s(address.get("city")),
        _s(address.get("postcode")),
        _s(address.get("country_id")).upper(),
        region_id,
        region_text,
    )


def content(address: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything the sync writes on an address: a stored one with the same content needs no save."""
    names = (_s(address.get(f)) for f in ("firstname", "lastname", "telephone"))
    return (*names, *place(address), *(bool(address.get(f)) for f in FLAGS))


@dataclass(frozen=True)
class Merged:
    addresses: list[dict[str, Any]]  # the whole list to save
    kept: frozenset[int]  # ids of the Magento-only addresses in it
    changed: bool  # False: the account holds exactly this already


def merge(current: list[dict[str, Any]], managed: set[int], wanted: list[dict[str, Any]]) -> Merged:
    """current: the account's addresses as Magento returned them; wanted: Cloud Retailer's, mapped."""
    unused = {int(a["id"]): a for a in current if a.get("id") is not None}
    out: list[dict[str, Any]] = []
    for address in wanted:
        where = place(address)
        # Prefer an address Cloud Retailer wrote before, then any at the same place.
        candidates = sorted((i for i, a in unused.items() if place(a) == where), key=lambda i: i not in managed)
        if candidates:
            found = unused.pop(candidates[0])
            # Over the stored one, so Magento-only fields (company, vat_id, custom attributes) stay.
            out.append({**found, **address, "id": found["id"]})
        else:
            out.append(dict(address))
    kept = [dict(a) for i, a in unused.items() if i not in managed]
    for flag in FLAGS:
        if any(a.get(flag) for a in wanted):
            for address in kept:
                address[flag] = False
    out.extend(kept)
    before = {int(a["id"]): content(a) for a in current if a.get("id") is not None}
    after = {a.get("id"): content(a) for a in out}
    changed = None in after or after != before
    return Merged(out, frozenset(int(a["id"]) for a in kept), changed)
