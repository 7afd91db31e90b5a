"""Routes: /V1/products/{sku}/media (the product media gallery). ACL Magento_Catalog::catalog.

POST answers the new entry id (an integer, as the 2.4.9 schema declares; the docs' tutorial shows it quoted),
PUT and DELETE answer `true`. Every change is a product save, so the product's updated_at moves.
"""

from __future__ import annotations

from aiohttp import web

from sandbox.magento.errors import MagentoError, product_not_found
from sandbox.magento.product_save import assign_roles, new_entry, update_entry
from sandbox.magento.product_view import media_view
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_param, state_of
from sandbox.magento.state import MagentoState, MediaEntry, Product

RESOURCE = "Magento_Catalog::catalog"
NO_IMAGE = "No image with the provided ID was found. Verify the ID and try again."


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/products/{sku}/media", list_media, RESOURCE)
    routes.add("POST", "/products/{sku}/media", add_media, RESOURCE)
    routes.add("GET", "/products/{sku}/media/{entryId}", get_media, RESOURCE)
    routes.add("PUT", "/products/{sku}/media/{entryId}", update_media, RESOURCE)
    routes.add("DELETE", "/products/{sku}/media/{entryId}", delete_media, RESOURCE)


def _product(state: MagentoState, request: web.Request) -> Product:
    product = state.product(request.match_info["sku"])
    if product is None:
        raise product_not_found()
    return product


def _entry(product: Product, entry_id: int, message: str = NO_IMAGE) -> MediaEntry:
    entry = next((e for e in product.media or [] if e.id == entry_id), None)
    if entry is None:
        raise MagentoError(404, message)
    return entry


def _saved(state: MagentoState, product: Product) -> None:
    product.updated_at = state.now()
    state.touched("products")


async def list_media(request: web.Request) -> web.Response:
    product = _product(state_of(request), request)
    entries = sorted(product.media or [], key=lambda e: (e.position, e.id))
    return json_response([media_view(e) for e in entries])


async def get_media(request: web.Request) -> web.Response:
    state = state_of(request)
    product = state.product(request.match_info["sku"])
    if product is None:
        raise MagentoError(404, "The product doesn't exist. Verify and try again.")
    entry = _entry(product, int_param(request, "entryId"), "The image doesn't exist. Verify and try again.")
    return json_response(media_view(entry))


async def add_media(request: web.Request) -> web.Response:
    state = state_of(request)
    item = await read_param(request, "entry")
    if not item.get("content"):
        raise MagentoError(400, "The image content is invalid. Verify the content and try again.")
    product = _product(state, request)
    entry = new_entry(state, item, state.media_files)
    state.media_files.add(entry.file)
    product.media = assign_roles([*(product.media or []), entry])
    _saved(state, product)
    return json_response(entry.id)


async def update_media(request: web.Request) -> web.Response:
    state = state_of(request)
    item = await read_param(request, "entry")
    product = _product(state, request)
    entry = _entry(product, int_param(request, "entryId"))
    if item.get("content"):
        # new content replaces the file behind the entry
        replacement = new_entry(state, item, state.media_files)
        state.media_files.discard(entry.file)
        state.media_files.add(replacement.file)
        entry.file, entry.content_type, entry.size = replacement.file, replacement.content_type, replacement.size
    update_entry(entry, {k: v for k, v in item.items() if k != "id"})
    # the entry just given roles keeps them: move it last for the "last one wins" rule
    others = [e for e in product.media or [] if e is not entry]
    product.media = sorted(assign_roles([*others, entry]), key=lambda e: e.id)
    _saved(state, product)
    return json_response(True)


async def delete_media(request: web.Request) -> web.Response:
    state = state_of(request)
    product = _product(state, request)
    entry = _entry(product, int_param(request, "entryId"))
    product.media = [e for e in product.media or [] if e is not entry] or None
    state.media_files.discard(entry.file)
    _saved(state, product)
    return json_response(True)
