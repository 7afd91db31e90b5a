"""Legacy CatalogInventory (a store without MSI): one stock item per SKU, read and written alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from workers.clients.errors import NotFound
from workers.clients.magento import MagentoClient
from workers.clients.magento_models import StockItem
from workers.sync.inventory.stock import Counts, Mode, Outcome, Target, same_stock


class LegacyStock:
    """Legacy CatalogInventory stock items (a store without MSI): one read and at most one write per SKU."""

    mode = Mode.LEGACY

    def __init__(self, magento: MagentoClient, concurrency: int) -> None:
        self.magento = magento
        self.concurrency = concurrency
        self.counts = Counts()

    async def read(self, sku: str) -> StockItem | None:
        self.counts.reads += 1
        try:
            return await self.magento.legacy_stock_item(sku)
        except NotFound:
            return None

    async def stock_item(self, sku: str) -> dict[str, Any] | None:
        """`read` as a dict: the reconciliation reads `qty`, `is_in_stock` and `item_id` from one."""
        item = await self.read(sku)
        return None if item is None else item.model_dump()

    async def apply(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        async def one(t: Target) -> Outcome:
            item = await self.read(t.sku)
            if item is None:
                return Outcome.MISSING
            if same_stock(item.qty or 0, item.is_in_stock or 0, t.quantity):
                return Outcome.UNCHANGED
            await self.put(Target(t.sku, t.quantity, item.item_id))
            return Outcome.WRITTEN

        results = await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)
        return {t.sku: r for t, r in zip(targets, results, strict=True)}

    async def write(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        async def one(t: Target) -> Outcome:
            await self.put(t)
            return Outcome.WRITTEN

        results = await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)
        return {t.sku: r for t, r in zip(targets, results, strict=True)}

    async def put(self, target: Target) -> None:
        item_id = target.legacy_item_id
        if item_id is None:
            item = await self.read(target.sku)
            if item is None:
                raise NotFound("magento", 404, f"no product with SKU {target.sku!r}")
            item_id = item.item_id
        self.counts.writes += 1
        await self.magento.save_legacy_stock_item(target.sku, item_id, target.quantity, bool(target.status))
        self.counts.items_written += 1
