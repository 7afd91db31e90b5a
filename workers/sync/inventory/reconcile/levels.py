"""Cloud Retailer's side of a reconciliation: on-hand at the linked store, in full and changed since a mark.

Cloud Retailer gives every write an `updated_at` later than any before, and a listing with `updated_since=T`
returns every row changed at or after T: the newest `updated_at` seen (the high-water mark) is where the
next look for changes starts.
"""

from __future__ import annotations

from typing import Any

from workers.clients.cloudretailer import CloudRetailerClient
from workers.sync.inventory import stock as st
from workers.sync.inventory.reconcile.report import Report

CR_PAGE = 1000

Levels = dict[str, Any]  # lower-case SKU -> (SKU, target quantity); the comparison marks matched ones


async def read_levels(cr: CloudRetailerClient, store_id: str, report: Report) -> tuple[Levels, str]:
    """Every SKU's target quantity, and the high-water mark. A row changed while paging comes again later
    with its new count (keyset paging on updated_at), and the later one wins."""
    levels: Levels = {}
    high_water = ""
    rows = 0
    async for level in cr.inventory(store_id, limit=CR_PAGE):
        levels[level.sku.lower()] = (level.sku, st.target_quantity(level.on_hand))
        high_water = max(high_water, level.updated_at or "")
        rows += 1
    report.cr_reads += rows // CR_PAGE + 1
    return levels, high_water


async def changes_since(
    cr: CloudRetailerClient, store_id: str, since: str, report: Report
) -> tuple[dict[str, float], str]:
    """lower-case SKU -> target quantity of the rows changed since the mark, and the new mark. `updated_since`
    is inclusive: the row at the mark itself comes back unchanged; it is harmless."""
    if not since:
        return {}, since
    changed: dict[str, float] = {}
    high_water = since
    rows = 0
    async for level in cr.inventory(store_id, since, limit=CR_PAGE):
        changed[level.sku.lower()] = st.target_quantity(level.on_hand)
        high_water = max(high_water, level.updated_at or "")
        rows += 1
    report.cr_reads += rows // CR_PAGE + 1
    return changed, high_water
