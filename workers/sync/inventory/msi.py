"""MSI: the source items of the configured source, many SKUs per write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog

from workers.clients.errors import PermanentApiError
from workers.clients.magento import MagentoClient
from workers.clients.magento_models import SourceItem
from workers.clients.search_criteria import SearchCriteria
from workers.sync.inventory.reads import PAGE_SIZE, existing_products, gather_pages, rows, sku_chunks, sku_filter
from workers.sync.inventory.stock import Counts, Mode, Outcome, Target, same_stock

log = structlog.get_logger(__name__)


class MsiStock:
    """Source items of one source. `apply` reads the batch's current items first: SKUs that already hold
    the quantity are not written, and a SKU without a source item is written only if its product exists."""

    mode = Mode.MSI

    def __init__(self, magento: MagentoClient, source_code: str, batch_size: int) -> None:
        self.magento = magento
        self.source_code = source_code
        self.batch_size = batch_size
        self.counts = Counts()

    # --- reading ----------------------------------------------------------------------------------------
    def _criteria(self, page_size: int = PAGE_SIZE) -> SearchCriteria:
        return SearchCriteria(page_size=page_size).where("source_code", self.source_code)

    async def _search(self, criteria: SearchCriteria, page: int = 1) -> tuple[list[dict[str, Any]], int]:
        self.counts.reads += 1
        return rows(await self.magento.list_source_items(criteria, page=page))

    async def source_items(self, skus: Sequence[str]) -> dict[str, SourceItem]:
        """Current source items of these SKUs at the source, by lower-case SKU (Magento's SKUs are
        case-insensitive)."""
        found: dict[str, SourceItem] = {}
        for chunk in sku_chunks(skus):
            items, _ = await self._search(sku_filter(self._criteria(page_size=max(len(chunk), 1)), chunk))
            for item in items:
                if item.get("source_code") == self.source_code:
                    found[str(item["sku"]).lower()] = SourceItem.model_validate(item)
        return found

    async def existing_products(self, skus: Sequence[str]) -> dict[str, str]:
        """lower-case SKU -> the SKU as Magento spells it, for the SKUs that have a product."""
        return await existing_products(self.magento, skus, self.counts)

    async def pages(self, concurrency: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Every source item of the source, a page at a time, `concurrency` pages in flight. The page count
        comes from total_count (past the end Magento repeats the last page). The order is by SKU: an update
        never moves a row; a row added or removed meanwhile shifts the later pages by one, which the caller
        tolerates (a row seen twice counts once; a row missed is looked up among the products)."""
        criteria = self._criteria().order_by("sku")
        first, total = await self._search(criteria, 1)
        yield first
        last = -(-total // PAGE_SIZE)
        calls = (self._search(criteria, page) for page in range(2, last + 1))
        async for items, _ in gather_pages(calls, concurrency):
            yield items

    # --- writing ----------------------------------------------------------------------------------------
    async def apply(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        """Bring these SKUs to their quantities (one batch from the change handler). Keys: the targets' SKUs."""
        current = await self.source_items([t.sku for t in targets])
        absent = [t.sku for t in targets if t.sku.lower() not in current]
        products = await self.existing_products(absent) if absent else {}
        outcomes: dict[str, Outcome | BaseException] = {}
        to_write: list[Target] = []
        for t in targets:
            item = current.get(t.sku.lower())
            if item is None and t.sku.lower() not in products:
                outcomes[t.sku] = Outcome.MISSING
            elif item is not None and same_stock(item.quantity, item.status, t.quantity):
                outcomes[t.sku] = Outcome.UNCHANGED
            else:
                to_write.append(t)
        for start in range(0, len(to_write), self.batch_size):
            outcomes.update(await self.write(to_write[start : start + self.batch_size]))
        return outcomes

    async def write(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        """One POST for the batch (an upsert: safe to repeat). If Magento refuses the batch (4xx), each SKU is
        sent alone so one bad item fails only itself. A transient failure (after the client's retries) is
        raised for the whole batch."""
        if not targets:
            return {}
        try:
            await self._post(targets)
            return dict.fromkeys((t.sku for t in targets), Outcome.WRITTEN)
        except PermanentApiError as exc:
            if len(targets) == 1:
                return {targets[0].sku: exc}
            log.warning("source_items_batch_refused", items=len(targets), error=str(exc)[:300])
        results = await asyncio.gather(*(self._post([t]) for t in targets), return_exceptions=True)
        return {
            t.sku: (r if isinstance(r, BaseException) else Outcome.WRITTEN)
            for t, r in zip(targets, results, strict=True)
        }

    async def _post(self, targets: Sequence[Target]) -> None:
        source = self.source_code
        items = [SourceItem(sku=t.sku, source_code=source, quantity=t.quantity, status=t.status) for t in targets]
        self.counts.writes += 1
        await self.magento.save_source_items(items)
        self.counts.items_written += len(targets)
