"""Products: Cloud Retailer is the master. One function brings a product's Magento side in line with Cloud
Retailer's current record, whatever event announced the change (created, updated, deleted, images)."""

from __future__ import annotations

from typing import Any

import structlog
from redis.asyncio import Redis

from crmcore import keys, timeline
from crmcore.events import ProductEvent, Source
from workers.binder import Binder
from workers.clients.cloudretailer_models import Product
from workers.clients.errors import NotFound, PermanentApiError
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync import inventory
from workers.sync.catalog import categories, group_prices, product_mapper
from workers.sync.catalog.fingerprints import AppliedVersions, Fingerprints
from workers.sync.catalog.images import sync_images
from workers.sync.catalog.magento_meta import attribute, meta, option_id

log = structlog.get_logger(__name__)

KIND = "product"
URL_KEY_ATTEMPTS = 4
URL_KEY_TAKEN = ("url key", "url_key", "would generate a url that already exists")
DEFAULT_SET = "Default"


async def applied_versions(redis: Redis, product_ids: list[str]) -> list[str | None]:
    """The Cloud Retailer version (`updated_at`) each product was last brought to Magento at (None: not known)."""
    return await AppliedVersions(redis, KIND).many(product_ids)


async def sync_product(ctx: HandlerContext, product_id: str) -> str:
    """Bring the Magento side of Cloud Retailer product `product_id` in line with its current record. The id is
    all an event is trusted with: its SKU is never used, since anyone able to send one could name any SKU."""
    try:
        product = await ctx.cr.get_product(product_id)
    except NotFound:
        return await _disable(ctx, await _bound_sku(ctx, product_id))
    await timeline.remember(
        ctx.redis,
        product.sku,
        keys.entity_name(Source.CLOUDRETAILER, ProductEvent.KIND, [product.id]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    if product.deleted:
        return await _disable(ctx, product.sku)

    m = await meta(ctx)
    set_name = product.primary_attribute_set or DEFAULT_SET
    set_id = m.attribute_set_id(set_name)
    if set_id is None:
        raise PermanentError(
            f"attribute set {set_name!r} (primary set of {product.sku}) does not exist in Magento; create it there "
            "or change the product's primary attribute set, then replay"
        )
    attributes = await _shared_attributes(ctx, product)
    category_ids = sorted({await categories.magento_id_for(ctx, c) for c in _category_refs(product)})
    payload = product_mapper.product_payload(
        product, attribute_set_id=set_id, website_id=ctx.settings.magento_website_id, attributes=attributes
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
    saved = await _save(ctx, product, payload, category_ids)
    await _unlink_old_categories(ctx, product.sku, saved, category_ids)
    group_rows = await group_prices.sync_group_prices(ctx, product)
    images = await sync_images(ctx, product)
    await Binder(ctx.redis).bind(KIND, product.id, product.sku)
    await fingerprints.remember(product.sku, state)
    await applied.record(product.id, product.updated_at)
    if first_write:
        # A product new to Magento has no stock there yet: push its on-hand now instead of leaving it for the
        # next reconciliation (harmless when it already has the right quantity: nothing is written then).
        await inventory.feed_stock(ctx, [product.sku])
    log.info(
        "product_synced",
        sku=product.sku,
        status=payload["status"],
        categories=len(category_ids),
        group_prices=group_rows,
        **images,
    )
    return "written"


def _category_refs(product: Product) -> list[str]:
    refs = list(product.category_ids)
    # A product in a category sits in its department too (Magento shows the department's products).
    if product.department_id and product.department_id not in refs:
        refs.insert(0, product.department_id)
    return refs


async def _shared_attributes(ctx: HandlerContext, product: Product) -> dict[str, Any]:
    """Attributes both systems have, in Magento's form. One only Cloud Retailer has is not sent (Magento would
    refuse it); one only Magento has is never touched, because it is never in this dict."""
    out: dict[str, Any] = {}
    for code, value in sorted(product.attributes.items()):
        if code in product_mapper.OWN_CODES or value is None:
            continue
        info = await attribute(ctx, code)
        if info is None:
            continue
        if info.frontend_input == "multiselect":
            labels = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
            out[code] = ",".join([await option_id(ctx, info, str(label)) for label in labels])
        elif info.frontend_input == "boolean":
            out[code] = "1" if str(value).strip().lower() in ("1", "true", "yes") else "0"
        elif info.is_select:
            out[code] = await option_id(ctx, info, str(value))
        else:
            out[code] = value
    return out


async def _save(ctx: HandlerContext, product: Product, payload: dict[str, Any], category_ids: list[int]) -> Any:
    body = dict(payload)
    # category_links only adds (and [] would clear everything): send the wanted ones, unlink the rest below.
    body["extension_attributes"] = {
        **payload["extension_attributes"],
        "category_links": [{"position": 0, "category_id": str(c)} for c in category_ids],
    }
    for attempt in range(URL_KEY_ATTEMPTS):
        if attempt:
            body["custom_attributes"] = [
                {"attribute_code": "url_key", "value": product_mapper.url_key(product.name, product.sku, attempt)}
                if a["attribute_code"] == "url_key"
                else a
                for a in body["custom_attributes"]
            ]
        try:
            return await ctx.magento.save_product(body)
        except PermanentApiError as exc:
            if exc.status == 400 and any(t in str(exc).lower() for t in URL_KEY_TAKEN):
                log.info("url_key_taken", sku=product.sku, attempt=attempt)
                continue
            raise
    raise PermanentError(f"no free url_key for {product.sku} after {URL_KEY_ATTEMPTS} tries")


async def _unlink_old_categories(ctx: HandlerContext, sku: str, saved: Any, wanted: list[int]) -> None:
    links = (saved.extension_attributes or {}).get("category_links") or []
    binder = Binder(ctx.redis)
    for link in links:
        category_id = int(link["category_id"])
        # Only categories that come from Cloud Retailer: a link an admin made to a Magento-only category stays.
        if category_id not in wanted and await binder.cr_id(categories.KIND, category_id) is not None:
            await ctx.magento.unassign_product(category_id, sku)


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


async def _disable(ctx: HandlerContext, sku: str) -> str:
    fingerprints = Fingerprints(ctx.redis, KIND)
    state = {"deleted": True}
    if await fingerprints.unchanged(sku, state):
        return "unchanged"
    try:
        current = await ctx.magento.get_product(sku, store="all")
    except NotFound:
        await fingerprints.remember(sku, state)
        return "absent"
    if current.status != product_mapper.STATUS_DISABLED:
        await ctx.magento.save_product(product_mapper.disabled_payload(sku))
    await fingerprints.remember(sku, state)
    return "disabled"
