"""Magento reads both inventory APIs and the reconciliation share: which SKUs have a product, every product a
page at a time, and the SKU chunks and concurrent pages the lookups are made of."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from workers.clients.magento import MagentoClient
from workers.clients.magento_models import Page
from workers.clients.search_criteria import SearchCriteria
from workers.sync.inventory.stock import Counts

PAGE_SIZE = 300  # the largest searchCriteria pageSize Magento accepts with input limiting on
LOOKUP_CHUNK = 100  # SKUs per `sku in (...)` lookup (keeps the URL short)


async def existing_products(magento: MagentoClient, skus: Sequence[str], counts: Counts) -> dict[str, str]:
    """lower-case SKU -> SKU as Magento spells it, for those of `skus` that have a product."""
    found: dict[str, str] = {}
    for chunk in sku_chunks(skus):
        counts.reads += 1
        page = await magento.list_products(sku_filter(SearchCriteria(page_size=max(len(chunk), 1)), chunk))
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
        return rows(await magento.list_products(criteria, page=n))

    first, total = await page(1)
    yield first
    async for items, _ in gather_pages((page(n) for n in range(2, -(-total // PAGE_SIZE) + 1)), concurrency):
        yield items


def sku_chunks(skus: Iterable[str]) -> list[list[str]]:
    """SKUs for `sku in (a,b,...)` lookups. Magento splits the value on commas, so a SKU holding one is
    looked up alone with `eq`."""
    plain, odd = [], []
    for sku in dict.fromkeys(skus):
        (odd if "," in sku else plain).append(sku)
    chunks = [plain[i : i + LOOKUP_CHUNK] for i in range(0, len(plain), LOOKUP_CHUNK)]
    return chunks + [[sku] for sku in odd]


def sku_filter(criteria: SearchCriteria, chunk: list[str]) -> SearchCriteria:
    """One of `sku_chunks`: `in` for several, `eq` for one (a SKU holding a comma is always alone)."""
    return criteria.where("sku", list(chunk) if len(chunk) > 1 else chunk[0], "in" if len(chunk) > 1 else "eq")


def rows(page: Page) -> tuple[list[dict[str, Any]], int]:
    return page.items, page.total_count


async def gather_pages(calls: Iterable[Any], concurrency: int) -> AsyncIterator[Any]:
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
