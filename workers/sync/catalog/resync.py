"""Full and partial catalog resyncs (POST /admin/resync/products|categories): stream Cloud Retailer's pages
and feed each record into the per-entity queue, so the work fans out over every worker with the same
handlers, coalescing and no-op detection as webhooks, and the catalog is never held in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from crmcore.events import CategoryEvent, CloudRetailerEventType, ProductEvent, Source, StyleEvent
from crmcore.jobrecords import feed_origin
from workers.clients.errors import NotFound
from workers.feed import Feeder
from workers.registry import HandlerContext, Progress

CR = Source.CLOUDRETAILER


async def _feed_chunks(
    ctx: HandlerContext, progress: Progress, changes: AsyncIterator[tuple[Source, str, Any]]
) -> dict[str, Any]:
    async with Feeder(ctx.redis, ctx.settings, feed_origin(ctx.job_id), progress=progress) as feeder:
        async for change in changes:
            await feeder.add(*change)
    return {"fed": feeder.fed, "queued": feeder.queued}


async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    missing: list[str] = []

    async def changes() -> AsyncIterator[tuple[Source, str, Any]]:
        if params.get("skus") or params.get("product_ids"):
            for sku in params.get("skus") or []:
                product = await ctx.cr.product_by_sku(sku)
                if product is None:
                    missing.append(sku)
                    continue
                yield CR, CloudRetailerEventType.PRODUCT_UPDATED, ProductEvent(product_id=product.id, sku=product.sku)
            for product_id in params.get("product_ids") or []:
                try:
                    product = await ctx.cr.get_product(product_id)
                except NotFound:
                    missing.append(product_id)
                    continue
                yield CR, CloudRetailerEventType.PRODUCT_UPDATED, ProductEvent(product_id=product.id, sku=product.sku)
            return
        async for product in ctx.cr.products():
            yield CR, CloudRetailerEventType.PRODUCT_UPDATED, ProductEvent(product_id=product.id, sku=product.sku)
        # Styles after their variants: a style's job then finds its children made (it makes them otherwise).
        async for style in ctx.cr.styles():
            yield CR, CloudRetailerEventType.STYLE_UPDATED, StyleEvent(style_id=style.id, code=style.code)

    result = await _feed_chunks(ctx, progress, changes())
    result["not_in_cloud_retailer"] = missing
    return result


async def resync_categories(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    wanted = set(params.get("category_ids") or [])

    async def changes() -> AsyncIterator[tuple[Source, str, Any]]:
        # Departments first: a category's job creates its parent anyway, but this way fewer jobs wait on locks.
        records = sorted(await ctx.cr.categories(), key=lambda c: c.parent_id is not None)
        for category in records:
            if not wanted or category.id in wanted:
                yield CR, CloudRetailerEventType.CATEGORY_UPDATED, CategoryEvent(category_id=category.id)

    return await _feed_chunks(ctx, progress, changes())
