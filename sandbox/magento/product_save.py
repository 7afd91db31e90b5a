"""`ProductRepository::save`, which both POST /V1/products and PUT /V1/products/{sku} call: an upsert that
merges only the keys sent into the stored product.

The special cases the connector must live with (docs/magento-api-notes.md items 2, 3 and 4):
`extension_attributes.category_links` is additive and `[]` clears it; `media_gallery_entries` omitted leaves
the gallery alone, `[]` wipes it, a list keeps the listed ids and adds entries carrying content; unknown
attribute codes are ignored; a new product gets its url_key from its name and a key used in a shared store
view is a 400. Values sent through a store code become that view's overrides (website-scoped ones for the
views of its website, global ones stay global); through `all`, and on create, they are global. A new product
is assigned to every website through `all`, to the store's website otherwise. The save is validated
completely before anything is stored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.magento import configurable_save, eav, images, url_keys
from sandbox.magento.errors import MagentoError, invalid_field_value, required_field
from sandbox.magento.routing import Scope
from sandbox.magento.state import MagentoState, MediaEntry, Product
from sandbox.magento.stock import apply_stock_item

PRODUCT_TYPES = frozenset({"simple", "virtual", "configurable", "bundle", "grouped", "downloadable"})
NEEDS_PRICE = frozenset({"simple", "virtual"})
MAX_SKU_LENGTH = 64


def _empty_value(label: str) -> MagentoError:
    return MagentoError(400, 'The "%1" attribute value is empty. Set the attribute and try again.', [label])


def _copy(product: Product) -> Product:
    return dataclasses.replace(
        product,
        values=dict(product.values),
        website_ids=list(product.website_ids),
        store_values={k: dict(v) for k, v in product.store_values.items()} if product.store_values else None,
        category_links=dict(product.category_links) if product.category_links else None,
        media=[dataclasses.replace(e, types=list(e.types)) for e in product.media] if product.media else None,
    )


def save_product(state: MagentoState, scope: Scope, data: dict[str, Any], path_sku: str | None = None) -> Product:
    sku = str(data.get("sku") or path_sku or "").strip()
    if not sku:
        raise _empty_value("SKU")
    if len(sku) > MAX_SKU_LENGTH:
        raise MagentoError(400, "SKU length should be %1 characters maximum.", [MAX_SKU_LENGTH])
    existing = state.product(sku)
    created = existing is None
    now = state.now()
    if existing is None:
        website_ids = sorted(state.websites) if scope.is_global else [scope.website_id]
        product = Product(0, sku, "simple", 4, now, now, {}, website_ids)
    else:
        product = _copy(existing)
        product.updated_at = now

    if data.get("type_id") is not None:
        if data["type_id"] not in PRODUCT_TYPES:
            raise invalid_field_value("type_id", data["type_id"])
        product.type_id = str(data["type_id"])
    if data.get("attribute_set_id") is not None:
        set_id = _int(data["attribute_set_id"], "attribute_set_id")
        if set_id not in state.attribute_sets:
            raise MagentoError(400, "Invalid product data: %1", ["Invalid attribute set entity type"])
        product.attribute_set_id = set_id

    sent: dict[str, Any] = {
        code: data[code] for code in ("name", "price", "status", "visibility", "weight") if code in data
    }
    custom = data.get("custom_attributes")
    if custom is not None:
        if not isinstance(custom, list):
            raise MagentoError(400, "Decoding error.")
        for item in custom:
            if not isinstance(item, dict) or not item.get("attribute_code"):
                raise required_field("attribute_code")
            sent.setdefault(str(item["attribute_code"]), item.get("value"))
    for code, raw in sent.items():
        attribute = state.attributes.get(code)
        if attribute is None:
            continue  # an attribute this store does not have: Magento drops it silently
        value = eav.to_stored(attribute, raw)
        if code == "url_key" and value:
            value = url_keys.slug(str(value))
        _write(state, product, attribute.scope, code, value, scope, created)

    if created:
        if not product.values.get("name"):
            raise _empty_value(state.attributes["name"].label)
        if product.type_id in NEEDS_PRICE and product.values.get("price") is None:
            raise _empty_value(state.attributes["price"].label)
        product.values.setdefault("status", 1)
        product.values.setdefault("visibility", 4)
        product.values.setdefault("tax_class_id", "2")
        if not product.values.get("url_key"):
            product.values["url_key"] = url_keys.slug(str(product.values["name"]))

    extension = data.get("extension_attributes") or {}
    if not isinstance(extension, dict):
        raise MagentoError(400, "Decoding error.")
    if extension.get("website_ids") is not None:
        product.website_ids = _website_ids(state, extension["website_ids"])
    links = extension.get("category_links")
    new_links = _category_links(state, sku, links) if links is not None else None
    _media(state, product, data.get("media_gallery_entries"))
    url_keys.check(state, product)
    configurable = configurable_save.plan(state, product.type_id, extension)

    # --- everything is valid: store it ---------------------------------------------------------------------
    if existing is not None:
        url_keys.unindex(state, existing)
        for entry in existing.media or []:
            state.media_files.discard(entry.file)
    else:
        product.id = state.ids.next("catalog_product_entity")
    state.add_product(product)
    url_keys.index(state, product)
    for entry in product.media or []:
        state.media_files.add(entry.file)
    if new_links is not None:
        if not new_links:
            for category_id in list(product.category_links or {}):
                state.remove_category_link(product, category_id)
        for category_id, position in new_links.items():
            state.set_category_link(product, category_id, position)
    if extension.get("stock_item") is not None:
        apply_stock_item(state, product, extension["stock_item"])
    if configurable is not None:
        configurable.apply(state, product)
    state.touched("products")
    return product


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_field_value(field, value) from None


def _write(
    state: MagentoState, product: Product, attr_scope: str, code: str, value: Any, scope: Scope, created: bool
) -> None:
    if created or scope.is_global or attr_scope == "global":
        if value is None:
            product.values.pop(code, None)
        else:
            product.values[code] = value
        return
    store_ids = (
        [v.id for v in state.views_of_website(scope.website_id)] if attr_scope == "website" else [scope.store_id]
    )
    if product.store_values is None:
        product.store_values = {}
    for store_id in store_ids:
        override = product.store_values.setdefault(store_id, {})
        if value is None:
            override.pop(code, None)  # null in a store scope means "use the default value" again
        else:
            override[code] = value


def _website_ids(state: MagentoState, raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    ids = sorted({_int(w, "website_ids") for w in raw})
    for website_id in ids:
        if website_id not in state.websites:
            raise MagentoError(
                404,
                "The website with id %1 that was requested wasn't found. Verify the website and try again.",
                [website_id],
            )
    return ids


def _category_links(state: MagentoState, sku: str, raw: Any) -> dict[int, int]:
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    links: dict[int, int] = {}
    for link in raw:
        if not isinstance(link, dict) or link.get("category_id") in (None, ""):
            raise required_field("category_id")
        category_id = _int(link["category_id"], "category_id")
        position = _int(link.get("position") or 0, "position")
        if category_id not in state.categories:
            raise MagentoError(
                400, 'Could not save product "%1" with position %2 to category %3', [sku, position, category_id]
            )
        links[category_id] = position
    return links


def _media(state: MagentoState, product: Product, raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    existing = {e.id: e for e in product.media or []}
    taken = set(state.media_files)
    kept: list[MediaEntry] = []
    for item in raw:
        if not isinstance(item, dict):
            raise MagentoError(400, "Decoding error.")
        entry_id = item.get("id")
        if entry_id is not None and str(entry_id).isdigit() and int(entry_id) in existing:
            entry = existing.pop(int(entry_id))
            update_entry(entry, item)
            kept.append(entry)
        elif entry_id is None:
            if not item.get("content"):
                raise MagentoError(400, "The image content is invalid. Verify the content and try again.")
            kept.append(new_entry(state, item, taken))
        # an id this product does not have is ignored, as processMediaGallery does
    product.media = assign_roles(kept) or None


def new_entry(state: MagentoState, item: dict[str, Any], taken: set[str]) -> MediaEntry:
    data, mime, name = images.validate_content(item.get("content"))
    path = images.media_path(name, mime, taken)
    taken.add(path)
    entry = MediaEntry(state.ids.next("catalog_product_entity_media_gallery"), path, content_type=mime, size=len(data))
    update_entry(entry, item)
    return entry


def update_entry(entry: MediaEntry, item: dict[str, Any]) -> None:
    if item.get("media_type"):
        entry.media_type = str(item["media_type"])
    if "label" in item:
        entry.label = None if item["label"] is None else str(item["label"])
    if item.get("position") is not None:
        entry.position = _int(item["position"], "position")
    if item.get("disabled") is not None:
        entry.disabled = bool(item["disabled"])
    if item.get("types") is not None:
        if not isinstance(item["types"], list):
            raise MagentoError(400, "Decoding error.")
        entry.types = [str(t) for t in item["types"]]


def assign_roles(entries: list[MediaEntry]) -> list[MediaEntry]:
    """Each role (image, small_image, thumbnail...) belongs to one image: the last one given it wins."""
    holder: dict[str, MediaEntry] = {}
    for entry in entries:
        for role in entry.types:
            holder[role] = entry
    for entry in entries:
        entry.types = [role for role in entry.types if holder.get(role) is entry]
    return entries
