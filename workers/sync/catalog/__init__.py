"""Catalog sync: products, attributes, attribute sets, images and categories, Cloud Retailer ->
Magento; categories created in Magento -> Cloud Retailer.

    magento_meta             what the rules read from Magento (attribute sets, attributes and options, root category)
    product_mapper           Cloud Retailer product -> Magento payload (pure)
    category_mapper          category payloads both ways (pure)
    fingerprints             no-op detection (hash of the last payload written)
    categories               the category tree from Cloud Retailer, its bindings and the creation lock
    categories_from_magento  a category created in Magento, created in Cloud Retailer
    images                   media gallery entries from Cloud Retailer's bytes
    products                 the product importer (a variant is a product "not visible individually")
    style_mapper             Cloud Retailer style -> configurable parent payload, options, checks (pure)
    configurable             a configurable product's options and children, brought in line
    styles                   the style importer
    writes                   what both importers write alike (attributes, categories, url_key retries)
    resync                   admin jobs: full and partial resyncs

Other domains use only the names in `__all__` (tests/test_layout.py keeps them to this package), so the
modules above can be cut differently without touching them.
"""

from __future__ import annotations

from crmcore.events import AcceptedEvent, CloudRetailerEventType, MagentoEventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import HandlerContext, Registry
from workers.sync.catalog import categories, categories_from_magento, products, resync, styles
from workers.sync.catalog.categories import magento_category_linked
from workers.sync.catalog.products import applied_versions
from workers.sync.catalog.styles import applied_style_versions

__all__ = ["applied_style_versions", "applied_versions", "magento_category_linked", "register"]

CR, MAGENTO = Source.CLOUDRETAILER, Source.MAGENTO
PRODUCT_EVENTS = (
    CloudRetailerEventType.PRODUCT_CREATED,
    CloudRetailerEventType.PRODUCT_UPDATED,
    CloudRetailerEventType.PRODUCT_DELETED,
    CloudRetailerEventType.PRODUCT_IMAGES_UPDATED,
)

STYLE_EVENTS = (
    CloudRetailerEventType.STYLE_CREATED,
    CloudRetailerEventType.STYLE_UPDATED,
    CloudRetailerEventType.STYLE_DELETED,
)


async def on_product(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    # Change signals: the newest one names the product; its current state in Cloud Retailer decides (the
    # event's `sku` is never used: it is not confirmed by Cloud Retailer).
    await products.sync_product(ctx, str(events[-1].data["product_id"]))


async def on_style(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await styles.sync_style(ctx, str(events[-1].data["style_id"]))


async def on_cr_category(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await categories.sync_from_cr(ctx, str(events[-1].data["category_id"]))


async def on_magento_category(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await categories_from_magento.sync_from_magento(ctx, int(events[-1].data["category_id"]))


def register(registry: Registry, settings: Settings | None = None) -> None:
    for event_type in PRODUCT_EVENTS:
        registry.register(CR, event_type, on_product)
    for event_type in STYLE_EVENTS:
        registry.register(CR, event_type, on_style)
    registry.register(CR, CloudRetailerEventType.CATEGORY_CREATED, on_cr_category)
    registry.register(CR, CloudRetailerEventType.CATEGORY_UPDATED, on_cr_category)
    registry.register(MAGENTO, MagentoEventType.CATEGORY_CREATED, on_magento_category)
    registry.register_job(AdminJobKind.RESYNC_PRODUCTS, resync.resync_products)
    registry.register_job(AdminJobKind.RESYNC_CATEGORIES, resync.resync_categories)
