"""The comparison: Cloud Retailer's target quantities against what Magento holds, one algorithm for both
inventory APIs. What differs between them is a `Side`:

    MSI      lists the source items of the source (pages of 300 by SKU, several in flight); a row holds the
             quantity and status. A Cloud Retailer SKU with no source item is looked up among the products: a
             product gets its first source item, a SKU without product is reported, never created.
    legacy   there is no list of stock items by SKU: the products are listed, and each one Cloud Retailer
             also has is read (one call per SKU, `concurrency` at a time). A SKU not listed has no product.

Each Magento row is compared as its page arrives; a SKU seen twice (a row shifted by a concurrent change, or
Magento repeating its last page) counts once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from workers.clients.errors import RemoteUnavailable
from workers.sync.inventory import reads
from workers.sync.inventory import stock as st
from workers.sync.inventory.legacy import LegacyStock
from workers.sync.inventory.msi import MsiStock
from workers.sync.inventory.reconcile.levels import HeldBack, Levels
from workers.sync.inventory.reconcile.report import SAMPLE, Report, Throttled
from workers.sync.inventory.stock import Target

_SEEN = object()  # a Cloud Retailer SKU already matched with its Magento row


async def all_or_none(calls: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """`gather`, except that the first failure cancels the others: a run that stops must not leave calls
    going on behind its report."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class Held:
    """What Magento holds for one SKU."""

    quantity: float
    status: int
    item_id: int | None = None  # the legacy stock item, which a write then needs not read again


Found = Held | BaseException | None  # None: gone since it was listed; an exception: could not be read


class Side(Protocol):
    def pages(self) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def held(self, rows: list[dict[str, Any]]) -> list[Found]: ...

    async def products(self, skus: list[str]) -> dict[str, str]: ...


class MsiSide:
    def __init__(self, stock: MsiStock, concurrency: int) -> None:
        self.stock, self.concurrency = stock, concurrency

    async def pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in self.stock.pages(self.concurrency):
            yield [row for row in page if row.get("source_code") == self.stock.source_code]

    async def held(self, rows: list[dict[str, Any]]) -> list[Found]:
        return [Held(row.get("quantity") or 0, row.get("status") or 0) for row in rows]

    async def products(self, skus: list[str]) -> dict[str, str]:
        return await reads.existing_products(self.stock.magento, skus, self.stock.counts)


class LegacySide:
    def __init__(self, stock: LegacyStock, concurrency: int) -> None:
        self.stock, self.concurrency = stock, concurrency
        self.limit = asyncio.Semaphore(concurrency)

    def pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        return reads.product_pages(self.stock.magento, self.stock.counts, self.concurrency)

    async def held(self, rows: list[dict[str, Any]]) -> list[Found]:
        return await all_or_none(self._read(str(row["sku"])) for row in rows)

    async def _read(self, sku: str) -> Found:
        async with self.limit:
            try:
                item = await self.stock.stock_item(sku)
            except RemoteUnavailable:
                raise  # every SKU after it would fail the same way: the run stops, skipped
            except Exception as exc:
                return exc
        if item is None:
            return None
        return Held(item.get("qty") or 0, item.get("is_in_stock") or 0, int(item["item_id"]))

    async def products(self, skus: list[str]) -> dict[str, str]:
        return {}  # the listing was of the products: a SKU it did not have has none


def side_of(stock: MsiStock | LegacyStock, concurrency: int) -> Side:
    return MsiSide(stock, concurrency) if isinstance(stock, MsiStock) else LegacySide(stock, concurrency)


class Comparison:
    """lower-case SKU -> the target of every SKU that differs, with the counts and samples in the report."""

    def __init__(self, report: Report, progress: Throttled) -> None:
        self.report, self.progress = report, progress
        self.drift: dict[str, Target] = {}
        self.before: dict[str, float | None] = {}  # Magento's quantity of the sampled drift
        self._magento_only: set[str] = set()

    async def run(self, side: Side, levels: Levels) -> dict[str, Target]:
        async for page in side.pages():
            matched = self._match(page, levels)
            found = await side.held([row for _, row, _ in matched])
            for (sku, _, quantity), held in zip(matched, found, strict=True):
                self._judge(sku, quantity, held)
            await self.progress()
        await self._unlisted(side, levels)
        return self.drift

    def _match(self, page: list[dict[str, Any]], levels: Levels) -> list[tuple[str, dict[str, Any], float]]:
        """The rows of SKUs Cloud Retailer has, with their targets; the others are counted Magento-only."""
        matched = []
        for row in page:
            sku = str(row["sku"])
            key = sku.lower()
            entry = levels.get(key)
            if entry is _SEEN or key in self._magento_only:
                continue
            self.report.magento_skus += 1
            if entry is None:
                self._magento_only.add(key)
                self.report.missing_in_cr.add(sku)
                continue
            levels[key] = _SEEN
            matched.append((sku, row, entry[1]))
        return matched

    def _judge(self, sku: str, quantity: float, held: Found) -> None:
        if isinstance(held, BaseException):
            self.report.error(f"{type(held).__name__}: {held}", [sku])
        elif held is None:
            self.report.missing_in_magento.add(sku)
        else:
            self.report.compared += 1
            if not st.same_stock(held.quantity, held.status, quantity):
                self._drifted(sku, Target(sku, quantity, held.item_id), float(held.quantity))

    async def _unlisted(self, side: Side, levels: Levels) -> None:
        """Cloud Retailer SKUs Magento did not list: those with a product get their stock, the others are
        reported missing."""
        unmatched = [entry for entry in levels.values() if entry is not _SEEN]
        products = await side.products([sku for sku, _ in unmatched]) if unmatched else {}
        for sku, quantity in unmatched:
            magento_sku = products.get(sku.lower())
            if magento_sku is None:
                self.report.missing_in_magento.add(sku)
                continue
            self.report.compared += 1
            self._drifted(sku, Target(magento_sku, quantity), None)

    def _drifted(self, sku: str, target: Target, magento: float | None) -> None:
        key = sku.lower()
        self.drift[key] = target
        if len(self.before) < SAMPLE:
            self.before[key] = magento

    def sample(self, held: HeldBack) -> list[dict[str, Any]]:
        """The first drifted SKUs: Magento's quantity, Cloud Retailer's on-hand, the units held back and what
        was written (in a dry run: what would be)."""
        out = []
        for key, t in list(self.drift.items())[:SAMPLE]:
            on_hand, units = held.shown(key, t.quantity)
            magento = self.before.get(key)
            out.append(
                {"sku": t.sku, "magento": magento, "cloud_retailer": on_hand, "held": units, "written": t.quantity}
            )
        return out
