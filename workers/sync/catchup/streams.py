"""Where a catch-up looks for changes: six listings, each read from a time on, oldest first.

    cloudretailer:categories  GET /categories?updated_since=   -> category.updated (Cloud Retailer)
    cloudretailer:products    GET /products?updated_since=     -> product.updated / product.deleted
    cloudretailer:styles      GET /styles?updated_since=       -> style.updated / style.deleted
    cloudretailer:customers   GET /customers?updated_since=    -> customer.updated (Cloud Retailer)
    magento:categories        categories/list, created_at >=   -> category.created (Magento)
    magento:customers         customers/search, created_at >=  -> customer.created (Magento)

Magento only sends creations (updates flow from Cloud Retailer), so its side is read by `created_at`. A Magento
record the gateway already links (one it made from Cloud Retailer, or linked before) is counted but not fed:
its handler would only say so.

Each found change carries a key naming the record and its version. The key is part of the event id, so a
retried run (same run id) that meets the change again is a duplicate, while a record changed twice during one
run is fed twice (the second change must not be swallowed by the first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from redis.asyncio import Redis

from crmcore.events import (
    CategoryEvent,
    CloudRetailerEventType,
    CustomerEvent,
    EventData,
    MagentoCategoryEvent,
    MagentoCustomerEvent,
    MagentoEventType,
    ProductEvent,
    Source,
    StyleEvent,
)
from workers.clients.cloudretailer_models import Product, Style
from workers.clients.magento import Listing
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.search_criteria import Filter
from workers.registry import HandlerContext
from workers.sync import catalog, customers
from workers.sync.catchup.clock import CLOUDRETAILER, MAGENTO, Clock

CR, MG = Source.CLOUDRETAILER, Source.MAGENTO
PAGE = 200
Change = tuple[Source, str, EventData]
T = TypeVar("T")


@dataclass(frozen=True)
class Found:
    key: str  # record and version, unique within its stream
    at: str  # its change time on its side's clock: where the cursor may move once it is handled
    change: Change | None  # None: already in step, only counted


Pages = Callable[[HandlerContext, str], AsyncIterator[list[Found]]]
Linked = Callable[[Redis, int], Awaitable[bool]]  # whether a Magento record is linked already


@dataclass(frozen=True)
class Stream:
    name: str
    clock: Clock
    pages: Pages


async def _chunks(items: AsyncIterator[T], size: int = PAGE) -> AsyncIterator[list[T]]:
    chunk: list[T] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- Cloud Retailer: everything changed, by updated_at --------------------------------------------------------


async def _cr_categories(ctx: HandlerContext, since: str) -> AsyncIterator[list[Found]]:
    records = iter(await ctx.cr.categories(updated_since=since))
    while chunk := list(islice(records, PAGE)):
        yield [_cr_category(c.id, c.updated_at) for c in chunk]


def _cr_category(category_id: str, updated_at: str | None) -> Found:
    event = CategoryEvent(category_id=category_id)
    return Found(f"{category_id}@{updated_at}", updated_at or "", (CR, CloudRetailerEventType.CATEGORY_UPDATED, event))


async def _cr_products(ctx: HandlerContext, since: str) -> AsyncIterator[list[Found]]:
    async for chunk in _chunks(ctx.cr.products(updated_since=since)):
        versions = await catalog.applied_versions(ctx.redis, [p.id for p in chunk])
        yield [
            _cr_product(p, in_step=not p.deleted and v is not None and v == p.updated_at)
            for p, v in zip(chunk, versions, strict=True)
        ]


def _cr_product(p: Product, *, in_step: bool) -> Found:
    """`in_step`: Magento already holds this very version (its webhook was handled): counted, not fed."""
    kind = CloudRetailerEventType.PRODUCT_DELETED if p.deleted else CloudRetailerEventType.PRODUCT_UPDATED
    event = ProductEvent(product_id=p.id, sku=p.sku)
    return Found(f"{p.id}@{p.updated_at}", p.updated_at or "", None if in_step else (CR, kind, event))


async def _cr_styles(ctx: HandlerContext, since: str) -> AsyncIterator[list[Found]]:
    # After products: a style's sync links variants, which it writes itself when their own job has not yet.
    async for chunk in _chunks(ctx.cr.styles(updated_since=since)):
        versions = await catalog.applied_style_versions(ctx.redis, [s.id for s in chunk])
        yield [
            _cr_style(s, in_step=not s.deleted and v is not None and v == s.updated_at)
            for s, v in zip(chunk, versions, strict=True)
        ]


def _cr_style(s: Style, *, in_step: bool) -> Found:
    kind = CloudRetailerEventType.STYLE_DELETED if s.deleted else CloudRetailerEventType.STYLE_UPDATED
    event = StyleEvent(style_id=s.id, code=s.code)
    return Found(f"{s.id}@{s.updated_at}", s.updated_at or "", None if in_step else (CR, kind, event))


async def _cr_customers(ctx: HandlerContext, since: str) -> AsyncIterator[list[Found]]:
    # `updated`, not `created`: a created signal for a linked customer is skipped as the echo of a creation,
    # and a change found here may be either.
    async def found() -> AsyncIterator[Found]:
        async for c in ctx.cr.customers(updated_since=since):
            event = CustomerEvent(customer_id=c.id)
            yield Found(
                f"{c.id}@{c.updated_at}", c.updated_at or "", (CR, CloudRetailerEventType.CUSTOMER_UPDATED, event)
            )

    async for chunk in _chunks(found()):
        yield chunk


# --- Magento: creations, by created_at -----------------------------------------------------------------------


def created_since(
    ctx: HandlerContext, listing: Listing, since: str, where: list[Filter], *, page_size: int = PAGE
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the records of a Magento listing created at or after `since`, oldest first, read by key
    (`(created_at, entity_id)`): a record deleted while we page cannot shift a page and hide another."""
    return ctx.magento.iter_keyset(Listing(listing), by="created_at", since=since, where=where, page_size=page_size)


def _magento_stream(
    listing: Listing, linked: Linked, event: Callable[[int], Change], where: Callable[[HandlerContext], list[Filter]]
) -> Pages:
    async def pages(ctx: HandlerContext, since: str) -> AsyncIterator[list[Found]]:
        async for items in created_since(ctx, listing, since, where(ctx)):
            found = []
            for item in items:
                record_id = int(item["id"])
                at = magento_time(parse_time(str(item["created_at"])))
                in_step = await linked(ctx.redis, record_id)
                found.append(Found(str(record_id), at, None if in_step else event(record_id)))
            yield found

    return pages


def _magento_category(record_id: int) -> Change:
    return MG, MagentoEventType.CATEGORY_CREATED, MagentoCategoryEvent(category_id=record_id)


def _magento_customer(record_id: int) -> Change:
    return MG, MagentoEventType.CUSTOMER_CREATED, MagentoCustomerEvent(customer_id=record_id)


STREAMS: tuple[Stream, ...] = (
    # Categories before products and customers: a product's job then finds its categories made.
    Stream("cloudretailer:categories", CLOUDRETAILER, _cr_categories),
    Stream("cloudretailer:products", CLOUDRETAILER, _cr_products),
    Stream("cloudretailer:styles", CLOUDRETAILER, _cr_styles),
    Stream("cloudretailer:customers", CLOUDRETAILER, _cr_customers),
    Stream(
        "magento:categories",
        MAGENTO,
        # levels 0 and 1 are the roots, never synced
        _magento_stream(
            Listing.CATEGORIES,
            catalog.magento_category_linked,
            _magento_category,
            lambda ctx: [Filter("level", 2, "gteq")],
        ),
    ),
    Stream(
        "magento:customers",
        MAGENTO,
        _magento_stream(
            Listing.CUSTOMERS,
            customers.magento_account_linked,
            _magento_customer,
            lambda ctx: [Filter("website_id", ctx.settings.magento_website_id)],
        ),
    ),
)
