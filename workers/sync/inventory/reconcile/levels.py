"""Cloud Retailer's side of a reconciliation: on-hand at the linked store, in full and changed since a mark.

Cloud Retailer gives every write an `updated_at` later than any before, and a listing with `updated_since=T`
returns every row changed at or after T: the newest `updated_at` seen (the high-water mark) is where the
next look for changes starts.

Every target is Cloud Retailer's on-hand minus the units held back for orders Magento took out of its count
and Cloud Retailer has not recorded as sales (`HeldBack`, read from the orders' ledger before the levels:
see workers/sync/orders/held.py).
"""

from __future__ import annotations

from typing import Any

from workers.clients.cloudretailer import CloudRetailerClient
from workers.sync.inventory import stock as st
from workers.sync.inventory.reconcile.report import Report

CR_PAGE = 1000

Levels = dict[str, Any]  # lower-case SKU -> (SKU, target quantity); the comparison marks matched ones


class HeldBack:
    """lower-case SKU -> units held back at the store's place, and Cloud Retailer's on-hand of those SKUs (the
    report shows both). Few SKUs have units held, so keeping their on-hand costs little; any other SKU's
    on-hand is its target."""

    def __init__(self, units: dict[str, float]) -> None:
        self.units: dict[str, float] = {}
        for sku, qty in units.items():
            # Two spellings of one SKU are one product to Magento: hold back both (errs towards selling less).
            self.units[sku.lower()] = self.units.get(sku.lower(), 0.0) + qty
        self.on_hand: dict[str, float] = {}

    def target(self, sku: str, on_hand: float) -> float:
        key = sku.lower()
        held = self.units.get(key)
        if not held:
            return st.target_quantity(on_hand)
        self.on_hand[key] = float(on_hand)
        return st.target_quantity(on_hand, held)

    def replace(self, units: dict[str, float], written: dict[str, Any]) -> dict[str, float]:
        """Take the ledger's newer units. Returns lower-case SKU -> on-hand of the `written` SKUs whose units
        held changed (their target must be computed again)."""
        newer = HeldBack(units).units
        moved = {}
        for key in self.units.keys() | newer.keys():
            if key in written and abs(self.units.get(key, 0.0) - newer.get(key, 0.0)) > 1e-6:
                moved[key] = self.shown(key, written[key].quantity)[0]
        self.units = newer
        return moved

    def shown(self, key: str, target: float) -> tuple[float, float]:
        """(Cloud Retailer's on-hand, units held back) of one lower-case SKU whose target is `target`."""
        return self.on_hand.get(key, target), self.units.get(key, 0.0)


async def read_levels(cr: CloudRetailerClient, store_id: str, report: Report, held: HeldBack) -> tuple[Levels, str]:
    """Every SKU's target quantity, and the high-water mark. A row changed while paging comes again later
    with its new count (keyset paging on updated_at), and the later one wins."""
    levels: Levels = {}
    high_water = ""
    rows = 0
    async for level in cr.inventory(store_id, limit=CR_PAGE):
        levels[level.sku.lower()] = (level.sku, held.target(level.sku, level.on_hand))
        high_water = max(high_water, level.updated_at or "")
        rows += 1
    report.cr_reads += rows // CR_PAGE + 1
    return levels, high_water


async def changes_since(
    cr: CloudRetailerClient, store_id: str, since: str, report: Report, held: HeldBack
) -> tuple[dict[str, float], str]:
    """lower-case SKU -> target quantity of the rows changed since the mark, and the new mark. `updated_since`
    is inclusive: the row at the mark itself comes back unchanged; it is harmless."""
    if not since:
        return {}, since
    changed: dict[str, float] = {}
    high_water = since
    rows = 0
    async for level in cr.inventory(store_id, since, limit=CR_PAGE):
        changed[level.sku.lower()] = held.target(level.sku, level.on_hand)
        high_water = max(high_water, level.updated_at or "")
        rows += 1
    report.cr_reads += rows // CR_PAGE + 1
    return changed, high_water
