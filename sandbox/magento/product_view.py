"""A product as the REST API returns it in a store scope: global values with that store view's overrides
merged over them, custom attribute values as strings, null values omitted (rest/attributes.md)."""

from __future__ import annotations

from typing import Any

from sandbox.magento.configurable_rules import extension_view
from sandbox.magento.eav import MEDIA_ROLES
from sandbox.magento.state import MagentoState, MediaEntry, Product
from sandbox.magento.stock import stock_item_view

TOP_LEVEL = ("name", "price", "status", "visibility", "weight")
# What every saved product carries besides the sent attributes.
SYSTEM_CUSTOM = {"options_container": "container2", "required_options": "0", "has_options": "0"}


def merged_values(product: Product, store_id: int) -> dict[str, Any]:
    if store_id and product.store_values and store_id in product.store_values:
        return {**product.values, **product.store_values[store_id]}
    return product.values


def media_view(entry: MediaEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "media_type": entry.media_type,
        "label": entry.label,
        "position": entry.position,
        "disabled": entry.disabled,
        "types": list(entry.types),
        "file": entry.file,
    }


def product_view(state: MagentoState, product: Product, store_id: int, *, detail: bool = True) -> dict[str, Any]:
    """`detail`: the single-product GET and save answers; lists leave out the stock item (rest/attributes.md:
    list endpoints are less detailed)."""
    values = merged_values(product, store_id)
    out: dict[str, Any] = {
        "id": product.id,
        "sku": product.sku,
        "name": values.get("name"),
        "attribute_set_id": product.attribute_set_id,
        "price": values.get("price"),
        "status": values.get("status"),
        "visibility": values.get("visibility"),
        "type_id": product.type_id,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "weight": values.get("weight"),
    }
    for code in TOP_LEVEL:
        if out[code] is None:
            del out[code]
    extension: dict[str, Any] = {"website_ids": list(product.website_ids)}
    if product.category_links:
        extension["category_links"] = [
            {"position": position, "category_id": str(category_id)}
            for category_id, position in sorted(product.category_links.items())
        ]
    if detail:
        extension["stock_item"] = stock_item_view(state, product)
        extension.update(extension_view(state, product))  # lists skip the load plugin that adds them
    out["extension_attributes"] = extension
    out["product_links"] = []
    out["options"] = []
    media = sorted(product.media or [], key=lambda e: (e.position, e.id))
    out["media_gallery_entries"] = [media_view(e) for e in media]
    out["tier_prices"] = []
    custom: dict[str, Any] = {}
    for code, value in values.items():
        if code not in TOP_LEVEL and value is not None and value != "":
            custom[code] = value
    for role in MEDIA_ROLES:
        holder = next((e for e in media if role in e.types), None)
        if holder is not None:
            custom[role] = holder.file
    for code, value in SYSTEM_CUSTOM.items():
        custom.setdefault(code, value)
    out["custom_attributes"] = [{"attribute_code": code, "value": str(value)} for code, value in custom.items()]
    return out
