"""Products: Cloud Retailer is the master. One function brings a product's Magento side in line with Cloud
Retailer's current record, whatever event announced the change (created, updated, deleted, images)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis

from crmcore import keys, timeline
from crmcore.events import CloudRetailerEventType, ProductEvent, Source, StyleEvent
from workers.binder import Binder
from workers.clients.cloudretailer_models import Product
from workers.clients.errors import NotFound
from workers.errors import PermanentError, Skip
from workers.feed import feed
from workers.registry import HandlerContext
from workers.sync import inventory
from workers.sync.catalog import group_prices, product_mapper, writes
from workers.sync.catalog.fingerprints import AppliedVersions, Fingerprints
from workers.sync.catalog.images import sync_images
from workers.sync.catalog.magento_meta import meta

log = structlog.get_logger(__name__)

KIND = "product"
STYLE_UPDATED = CloudRetailerEventType.STYLE_UPDATED
DEFAULT_SET = "Default"


async def applied_versions(redis: Redis, product_ids: list[str]) -> list[str | None]:
    """The Cloud Retailer version (`updated_at`) each product was last brought to Magento at (None: not known)."""
    return await AppliedVersions(redis, KIND).many(product_ids)


async def sync_product(ctx: HandlerContext, product_id: str) -> str:
    """Bring the Magento side of Cloud Retailer product `product_id` in line with its current record. The id is
    all an event is trusted with: its SKU is never used, since anyone able to send one could name any SKU.

    A variant written queues its style's sync, which links it and follows its web status."""
    try:
        product = await ctx.cr.get_product(product_id)
    except NotFound:
        return await writes.disable(ctx, KIND, await _bound_sku(ctx, product_id))
    await timeline.remember(
        ctx.redis,
        product.sku,
        keys.entity_name(Source.CLOUDRETAILER, ProductEvent.KIND, [product.id]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    if product.deleted:
        return await writes.disable(ctx, KIND, product.sku)

    m = await meta(ctx)
    set_name = product.primary_attribute_set or DEFAULT_SET
    set_id = m.attribute_set_id(set_name)
    if set_id is None:
        raise PermanentError(
            f"attribute set {set_name!r} (primary set of {product.sku}) does not exist in Magento; create it there "
            "or change the product's primary attribute set, then replay"
        )
    visibility = await _visibility(ctx, product)
    attributes = await writes.shared_attributes(ctx, product.attributes)
    category_ids = await writes.magento_categories(ctx, product)
    payload = product_mapper.product_payload(
        product,
        attribute_set_id=set_id,
        website_id=ctx.settings.magento_website_id,
        attributes=attributes,
        visibility=visibility,
    )
    state = {
        "payload": payload,
        "categories": category_ids,
        "images": sorted((i.sha256, i.position, i.primary) for i in product.images),
        **group_prices.fingerprint_state(product, ctx.settings.price_level_groups),
    }
    fingerprints = Fingerprints(ctx.redis, KIND)
    applied = AppliedVersions(ctx.redis, KIND)
    if await fingerprints.unchanged(product.sku, state):
        await applied.record(product.id, product.updated_at)
        return "unchanged"

    first_write = not await fingerprints.known(product.sku)
    saved = await writes.save(ctx, product.name, payload, category_ids)
    await writes.unlink_old_categories(ctx, product.sku, saved, category_ids)
    group_rows = await group_prices.sync_group_prices(ctx, product)
    images = await sync_images(ctx, product.sku, product.name, product, _image_reader(ctx, product.id))
    await Binder(ctx.redis).bind(KIND, product.id, product.sku)
    await fingerprints.remember(product.sku, state)
    await applied.record(product.id, product.updated_at)
    if first_write:
        # A product new to Magento has no stock there yet: push its on-hand now instead of leaving it for the
        # next reconciliation (harmless when it already has the right quantity: nothing is written then).
        await inventory.feed_stock(ctx, [product.sku])
    if product.style_id:
        # Its style follows a written variant: the variant may be new to Magento (its style's own event may have
        # run before it existed, or it was just fixed after failing) or may have gone on or off the web (the
        # parent is enabled while one child is). Unchanged, that style job makes no Magento call.
        event = StyleEvent(style_id=product.style_id)
        await feed(ctx.redis, ctx.settings, f"style:{ctx.job_id}", [(Source.CLOUDRETAILER, STYLE_UPDATED, event)])
    log.info(
        "product_synced",
        sku=product.sku,
        status=payload["status"],
        categories=len(category_ids),
        group_prices=group_rows,
        **images,
    )
    return "written"


async def _visibility(ctx: HandlerContext, product: Product) -> int:
    """A variant is bought through its style's configurable product, so it is not shown on its own. Its style
    is read to be sure it still stands: a variant of a deleted style would be sold under no parent."""
    if not product.style_id:
        return product_mapper.VISIBILITY_CATALOG_SEARCH
    try:
        style = await ctx.cr.get_style(product.style_id)
    except NotFound:
        style = None
    if style is None or style.deleted:
        raise PermanentError(
            f"variant {product.sku} belongs to style {product.style_id}, which "
            f"{'is deleted' if style is not None else 'does not exist'} in Cloud Retailer; move the variant to "
            "another style or detach it (style_id null), then replay"
        )
    return product_mapper.VISIBILITY_NOT_VISIBLE


def _image_reader(ctx: HandlerContext, product_id: str) -> Callable[[str], Awaitable[bytes]]:
    async def read(image_id: str) -> bytes:
        return await ctx.cr.image_bytes(product_id, image_id)

    return read


async def _bound_sku(ctx: HandlerContext, product_id: str) -> str:
    """The SKU a product Cloud Retailer no longer knows had when it was synced, from the binding written then
    out of Cloud Retailer's own record. Without one the id is unknown to both sides (a typo, a forged event, a
    binding lost with Redis): nothing may be disabled on the event's word."""
    sku = await Binder(ctx.redis).magento_id(KIND, product_id)
    if sku is None:
        raise Skip(
            f"product {product_id} does not exist in Cloud Retailer and was never synced to Magento: nothing to "
            "disable (the SKU an event names is not trusted)"
        )
    return sku
