"""Styles: a Cloud Retailer style becomes a Magento configurable product whose children are its variants.

One function brings the parent in line with the style's current record and its variants' (whatever event
announced the change: the style's own, or a variant added, moved, removed or given another axis value). A
variant itself is an ordinary product (products.py), written "not visible individually".

A style Magento cannot build (an axis that is not a global select, a variant without a value for an axis, two
variants with the same combination) is refused with the reason, and its parent, if Magento has it, is
disabled: a configurable product that cannot show all its variants must not stay on sale half built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict

import structlog
from redis.asyncio import Redis

from crmcore import keys, timeline
from crmcore.events import Source, StyleEvent
from workers.binder import Binder
from workers.clients.cloudretailer_models import Product, Style
from workers.clients.errors import NotFound
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.catalog import configurable, product_mapper, products, style_mapper, writes
from workers.sync.catalog.fingerprints import AppliedVersions, Fingerprints
from workers.sync.catalog.images import sync_images
from workers.sync.catalog.magento_meta import attribute, meta, option_id
from workers.sync.catalog.style_mapper import WantedOption

log = structlog.get_logger(__name__)

KIND = "style"
LINKS_KIND = "style-links"  # the fingerprints of a parent's options and children, apart from its own


async def applied_style_versions(redis: Redis, style_ids: list[str]) -> list[str | None]:
    """The Cloud Retailer version (`updated_at`) each style was last brought to Magento at (None: not known)."""
    return await AppliedVersions(redis, KIND).many(style_ids)


async def sync_style(ctx: HandlerContext, style_id: str) -> str:
    try:
        style = await ctx.cr.get_style(style_id)
    except NotFound:
        return await writes.disable(ctx, KIND, await _bound_code(ctx, style_id))
    await timeline.remember(
        ctx.redis,
        style.code,
        keys.entity_name(Source.CLOUDRETAILER, StyleEvent.KIND, [style.id]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    if style.deleted:
        return await writes.disable(ctx, KIND, style.code)
    variants = style_mapper.live_variants(await ctx.cr.variants(style.id))
    try:
        options = await _wanted_options(ctx, style, variants)
    except PermanentError as exc:
        await _refuse(ctx, style.code)
        raise exc from None
    set_name = style.primary_attribute_set or products.DEFAULT_SET
    set_id = (await meta(ctx)).attribute_set_id(set_name)
    if set_id is None:
        await _refuse(ctx, style.code)
        raise PermanentError(
            f"attribute set {set_name!r} (primary set of style {style.code}) does not exist in Magento; create it "
            "there or change the style's primary attribute set, then replay"
        )
    present = await _present(ctx, variants)
    attributes = await writes.shared_attributes(ctx, style.attributes, leave_out=style.axes)
    category_ids = await writes.magento_categories(ctx, style)
    payload = style_mapper.parent_payload(
        style,
        attribute_set_id=set_id,
        website_id=ctx.settings.magento_website_id,
        attributes=attributes,
        is_enabled=style_mapper.enabled(style, present),
    )
    children = [v.sku for v in present]
    # Two fingerprints: a variant linked or unlinked changes only the links, and should not cost the parent's
    # save, category and gallery calls (each new variant queues its style).
    parent_state = {
        "payload": payload,
        "categories": category_ids,
        "images": sorted((i.sha256, i.position, i.primary) for i in style.images),
    }
    links_state = {"options": [asdict(o) for o in options], "children": children}
    fingerprints, link_prints = Fingerprints(ctx.redis, KIND), Fingerprints(ctx.redis, LINKS_KIND)
    applied = AppliedVersions(ctx.redis, KIND)
    parent_same = await fingerprints.unchanged(style.code, parent_state)
    links_same = await link_prints.unchanged(style.code, links_state)
    if parent_same and links_same:
        await applied.record(style.id, style.updated_at)
        return "unchanged"
    images: dict[str, int] = {}
    if not parent_same:
        saved = await writes.save(ctx, style.name, payload, category_ids)
        await writes.unlink_old_categories(ctx, style.code, saved, category_ids)
        images = await sync_images(ctx, style.code, style.name, style, _image_reader(ctx, style.id))
    links = {} if links_same else await configurable.apply(ctx, style.code, options, children)
    await Binder(ctx.redis).bind(KIND, style.id, style.code)
    await fingerprints.remember(style.code, parent_state)
    await link_prints.remember(style.code, links_state)
    await applied.record(style.id, style.updated_at)
    log.info("style_synced", code=style.code, status=payload["status"], children=len(children), **links, **images)
    return "written"


async def _wanted_options(ctx: HandlerContext, style: Style, variants: Sequence[Product]) -> list[WantedOption]:
    """Each axis as a configurable option of the option ids its variants use (created in Magento where a
    value is new), after checking Magento can vary a product by it and every variant has a distinct
    combination."""
    if problem := style_mapper.variant_problem(style, variants):
        raise PermanentError(f"{problem}; fix the variants in Cloud Retailer, then replay")
    out = []
    for position, code in enumerate(style.axes):
        info = await attribute(ctx, code)
        if problem := style_mapper.axis_problem(code, info):
            raise PermanentError(f"style {style.code} cannot become a configurable product: {problem}")
        assert info is not None and info.attribute_id is not None
        values = {int(await option_id(ctx, info, str(v.attributes[code]))) for v in variants}
        out.append(WantedOption(info.attribute_id, style_mapper.option_label(info), position, tuple(sorted(values))))
    return out


async def _present(ctx: HandlerContext, variants: Sequence[Product]) -> list[Product]:
    """The variants Magento has as products (bound when their own sync wrote them). One not written yet is
    left out: its own job writes it and then queues this style again, which links it; a variant that fails
    stays out until it is fixed, with the reason in its own dead letter."""
    binder = Binder(ctx.redis)
    return [v for v in variants if await binder.magento_id(products.KIND, v.id) is not None]


def _image_reader(ctx: HandlerContext, style_id: str) -> Callable[[str], Awaitable[bytes]]:
    async def read(image_id: str) -> bytes:
        return await ctx.cr.style_image_bytes(style_id, image_id)

    return read


async def _bound_code(ctx: HandlerContext, style_id: str) -> str:
    code = await Binder(ctx.redis).magento_id(KIND, style_id)
    if code is None:
        raise Skip(f"style {style_id} does not exist in Cloud Retailer and was never synced to Magento")
    return code


async def _refuse(ctx: HandlerContext, code: str) -> None:
    """Disable the parent of a style that cannot be built, and forget its fingerprint so the fixed style is
    written again even if it comes back to exactly what was last written."""
    await Fingerprints(ctx.redis, KIND).forget(code)
    await Fingerprints(ctx.redis, LINKS_KIND).forget(code)
    try:
        current = await ctx.magento.get_product(code, store="all")
    except NotFound:
        return
    if current.status != product_mapper.STATUS_DISABLED:
        await ctx.magento.save_product(product_mapper.disabled_payload(code))
        log.info("style_parent_disabled", code=code)
