"""The Magento side of on-hand stock: which inventory API the store has, and reading and writing quantities.

With MSI (Magento_Inventory* modules, bundled since 2.3) the quantity goes to the configured source's source
item, many SKUs per `POST /V1/inventory/source-items`. Without it (`/V1/inventory/*` answers 404, "Request
does not match any route.") it goes to the legacy stock item, one `PUT /V1/products/{sku}/stockItems/{id}`
per SKU. Which one is found once per worker (`stock_for`) and again at every reconciliation.

The inventory job never creates a product: a SKU Magento does not have is answered MISSING (reported, and
left for the catalog sync). Magento's source items table has no key to the products table, so a source
item could be saved for a SKU without a product; MSI then fails the save or leaves an orphan row, hence the
check before writing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog

from workers.clients.errors import NotFound, PermanentApiError
from workers.clients.magento import MagentoClient
from workers.clients.magento_models import Page, SourceItem, StockItem
from workers.clients.search_criteria import SearchCriteria
from workers.errors import PermanentError

log = structlog.get_logger(__name__)

PAGE_SIZE = 300  # the largest searchCriteria pageSize Magento accepts with input limiting on
LOOKUP_CHUNK = 100  # SKUs per `sku in (...)` lookup (keeps the URL short)
CACHE_KEY = "inventory"


class Mode(StrEnum):
    MSI = "msi"
    LEGACY = "legacy"


class Outcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # Magento already had this quantity and status
    MISSING = "missing"  # no such product in Magento: never created here


def target_quantity(on_hand: float) -> float:
    """Cloud Retailer's count as Magento's quantity. A sale can take on-hand below zero ("the count was
    wrong"); nothing can be sold from a negative count, so Magento gets 0."""
    return round(max(float(on_hand), 0.0), 4)


def in_stock(quantity: float) -> int:
    return 1 if quantity > 0 else 0


def same_stock(quantity: float, status: int | bool, wanted: float) -> bool:
    return abs(float(quantity) - wanted) < 1e-6 and int(status) == in_stock(wanted)


@dataclass(frozen=True, slots=True)
class Target:
    """The quantity one SKU must have in Magento. `sku` is spelled as Magento has it when known."""

    sku: str
    quantity: float
    legacy_item_id: int | None = None  # the legacy stock item id, when a read already found it

    @property
    def status(self) -> int:
        return in_stock(self.quantity)


@dataclass
class Counts:
    """Magento calls made through one stock adapter (a reconciliation reports its own)."""

    reads: int = 0
    writes: int = 0
    items_written: int = 0


class Stock(Protocol):
    mode: Mode
    counts: Counts

    async def apply(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]: ...


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
        return _rows(await self.magento.list_source_items(criteria, page=page))

    async def source_items(self, skus: Sequence[str]) -> dict[str, SourceItem]:
        """Current source items of these SKUs at the source, by lower-case SKU (Magento's SKUs are
        case-insensitive)."""
        found: dict[str, SourceItem] = {}
        for chunk in _sku_chunks(skus):
            items, _ = await self._search(_sku_filter(self._criteria(page_size=max(len(chunk), 1)), chunk))
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
        async for items, _ in _gather_pages(calls, concurrency):
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


async def existing_products(magento: MagentoClient, skus: Sequence[str], counts: Counts) -> dict[str, str]:
    """lower-case SKU -> SKU as Magento spells it, for those of `skus` that have a product."""
    found: dict[str, str] = {}
    for chunk in _sku_chunks(skus):
        counts.reads += 1
        page = await magento.list_products(_sku_filter(SearchCriteria(page_size=max(len(chunk), 1)), chunk))
        for item in page.items:
            found[str(item["sku"]).lower()] = str(item["sku"])
    return found


async def product_pages(
    magento: MagentoClient, counts: Counts, concurrency: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every product, a page at a time (the legacy reconciliation's list of what Magento has)."""
    criteria = SearchCriteria(page_size=PAGE_SIZE).order_by("entity_id")

    async def page(n: int) -> tuple[list[dict[str, Any]], int]:
        counts.reads += 1
        return _rows(await magento.list_products(criteria, page=n))

    first, total = await page(1)
    yield first
    async for items, _ in _gather_pages((page(n) for n in range(2, -(-total // PAGE_SIZE) + 1)), concurrency):
        yield items


# --- which API the store has --------------------------------------------------------------------------


@dataclass
class StockSetup:
    """What a worker found at its first stock write (cached in Services.caches)."""

    mode: Mode
    sources: list[str] = field(default_factory=list)
    batcher: Any = None  # workers.sync.inventory.batcher.Batcher, built with the adapter


async def detect_mode(magento: MagentoClient, source_code: str) -> tuple[Mode, list[str]]:
    """MSI when `GET /V1/inventory/sources` answers; legacy when the route does not exist (404). With MSI
    the configured source must exist: writing to a source Magento does not have fails every save."""
    try:
        sources = await magento.sources()
    except NotFound:
        log.info("inventory_mode", mode="legacy", reason="GET /V1/inventory/sources answered 404")
        return Mode.LEGACY, []
    codes = [str(s.get("source_code")) for s in sources]
    if source_code not in codes:
        raise PermanentError(
            f"CRMAGENTO_MAGENTO_SOURCE_CODE={source_code!r} is not an inventory source in Magento "
            f"(it has: {', '.join(codes) or 'none'})"
        )
    return Mode.MSI, codes


def adapter(mode: Mode, magento: MagentoClient, source_code: str, batch_size: int, concurrency: int) -> Stock:
    if mode is Mode.MSI:
        return MsiStock(magento, source_code, batch_size)
    return LegacyStock(magento, concurrency)


# --- helpers ------------------------------------------------------------------------------------------


def _sku_chunks(skus: Iterable[str]) -> list[list[str]]:
    """SKUs for `sku in (a,b,...)` lookups. Magento splits the value on commas, so a SKU holding one is
    looked up alone with `eq`."""
    plain, odd = [], []
    for sku in dict.fromkeys(skus):
        (odd if "," in sku else plain).append(sku)
    chunks = [plain[i : i + LOOKUP_CHUNK] for i in range(0, len(plain), LOOKUP_CHUNK)]
    return chunks + [[sku] for sku in odd]


def _sku_filter(criteria: SearchCriteria, chunk: list[str]) -> SearchCriteria:
    """One of `_sku_chunks`: `in` for several, `eq` for one (a SKU holding a comma is always alone)."""
    return criteria.where("sku", list(chunk) if len(chunk) > 1 else chunk[0], "in" if len(chunk) > 1 else "eq")


def _rows(page: Page) -> tuple[list[dict[str, Any]], int]:
    return page.items, page.total_count


async def _gather_pages(calls: Iterable[Any], concurrency: int) -> AsyncIterator[Any]:
    """Run the page coroutines `concurrency` at a time and yield each result as it lands (any order), so
    memory holds at most `concurrency` pages."""
    pending: set[asyncio.Task[Any]] = set()
    calls = iter(calls)
    try:
        while True:
            while len(pending) < concurrency:
                call = next(calls, None)
                if call is None:
                    break
                pending.add(asyncio.ensure_future(call))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        for task in pending:
            task.cancel()
        for call in calls:  # never started: close them so no "never awaited" warning
            call.close()
