"""Cloud Retailer price levels as Magento customer-group prices (CRMAGENTO_PRICE_LEVEL_GROUPS).

Each mapped level is its group's tier price at quantity 1 for all websites (website 0): the connector writes a
product's price globally (`/rest/all`), and Magento's default price scope is Global, where a price for one
website is not what the storefront uses. Only the rows of mapped groups at website 0 and quantity 1 are the
connector's: a tier price of another group, website or quantity was made in Magento and is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from crmcore.settings import env_name
from workers.clients.cloudretailer_models import Product
from workers.clients.errors import NotFound
from workers.clients.magento_models import PriceUpdateResult, TierPrice
from workers.errors import PermanentError
from workers.registry import HandlerContext

log = structlog.get_logger(__name__)

ALL_WEBSITES = 0
QUANTITY = 1.0
FIXED = "fixed"
CACHE_KEY = "catalog.customer_groups"
TTL_S = 300.0
SETTING = env_name("price_level_groups")


@dataclass
class _GroupCodes:
    loaded_at: float
    codes: dict[int, str]


def wanted(product: Product, mapping: Mapping[str, int]) -> dict[str, float | None]:
    """Level -> its price (None: cleared) for the mapped levels, refusing a level above the regular price:
    Magento would keep charging the regular price, so the group would silently not get its price."""
    out: dict[str, float | None] = {}
    for level in sorted(mapping):
        value = product.price_levels.get(level)
        if value is not None and value > product.price:
            raise PermanentError(
                f"price level {level} of {product.sku} ({value}) is above its regular price ({product.price}); "
                f"lower or clear level {level} in Cloud Retailer, then replay"
            )
        out[level] = value
    return out


def fingerprint_state(product: Product, mapping: Mapping[str, int]) -> dict[str, object]:
    """What the group prices add to the product's fingerprint; nothing when the feature is off, so turning it
    off (or never on) leaves every fingerprint as it was."""
    if not mapping:
        return {}
    return {"group_prices": {level: [mapping[level], product.price_levels.get(level)] for level in sorted(mapping)}}


async def sync_group_prices(ctx: HandlerContext, product: Product) -> int:
    """Bring the mapped groups' prices of `product` in line with its levels; the number of rows written."""
    mapping = ctx.settings.price_level_groups
    if not mapping:
        return 0
    levels = wanted(product, mapping)
    codes = await _group_codes(ctx, mapping, levels)
    mine = {code.casefold(): level for level, code in codes.items()}
    current = {
        row.customer_group.casefold(): row
        for row in await ctx.magento.tier_prices([product.sku])
        if row.website_id == ALL_WEBSITES and row.quantity == QUANTITY and row.customer_group.casefold() in mine
    }
    stale = [row for code, row in current.items() if levels[mine[code]] is None]
    fresh = [
        TierPrice(
            price=price,
            price_type=FIXED,
            website_id=ALL_WEBSITES,
            sku=product.sku,
            customer_group=codes[level],
            quantity=QUANTITY,
        )
        for level, price in levels.items()
        if price is not None and not _same(current.get(codes[level].casefold()), price)
    ]
    if stale:
        _refused(product.sku, await ctx.magento.delete_tier_prices(stale))
    if fresh:
        _refused(product.sku, await ctx.magento.save_tier_prices(fresh))
    return len(stale) + len(fresh)


def _same(row: TierPrice | None, price: float) -> bool:
    return row is not None and row.price_type == FIXED and row.price == price


def _refused(sku: str, results: list[PriceUpdateResult]) -> None:
    if results:
        reasons = "; ".join(r.text() for r in results)
        raise PermanentError(f"Magento refused the customer-group prices of {sku}: {reasons}")


async def _group_codes(
    ctx: HandlerContext, mapping: Mapping[str, int], levels: Mapping[str, float | None]
) -> dict[str, str]:
    """Level -> the code of its group (the price API names a group by its code). A group Magento lacks is an
    error only for a level the product has: a level it does not have can have no price there to remove.
    Codes are kept a few minutes (groups are renamed rarely); a miss is not, so creating the group and
    replaying works at once."""
    cached: _GroupCodes | None = ctx.services.caches.get(CACHE_KEY)
    if cached is None or time.monotonic() - cached.loaded_at >= TTL_S:
        cached = _GroupCodes(time.monotonic(), {})
        ctx.services.caches[CACHE_KEY] = cached
    out: dict[str, str] = {}
    for level, group_id in sorted(mapping.items()):
        if group_id not in cached.codes:
            try:
                cached.codes[group_id] = (await ctx.magento.get_customer_group(group_id)).code
            except NotFound:
                if levels[level] is None:
                    continue
                raise PermanentError(
                    f"customer group {group_id} (price level {level} in {SETTING}) does not exist in Magento; "
                    f"create the group in Magento or map level {level} to another group id, then replay"
                ) from None
        out[level] = cached.codes[group_id]
    return out
