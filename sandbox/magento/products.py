"""Routes: /V1/products (list, get, create, update, delete). ACL Magento_Catalog::products."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.magento import search_criteria, url_keys
from sandbox.magento.errors import invalid_field_value, product_not_found
from sandbox.magento.product_save import save_product
from sandbox.magento.product_view import product_view
from sandbox.magento.routing import RestRoutes, json_response, read_param, scope_of, state_of
from sandbox.magento.state import MagentoState, Product

RESOURCE = "Magento_Catalog::products"
STATIC_FIELDS = frozenset(
    {"sku", "entity_id", "id", "type_id", "attribute_set_id", "created_at", "updated_at", "category_id", "website_id"}
)


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/products", list_products, RESOURCE)
    routes.add("POST", "/products", create_product, RESOURCE)


def register_by_sku(routes: RestRoutes) -> None:
    """Registered after every other /products/... route so `{sku}` does not swallow them."""
    routes.add("GET", "/products/{sku}", get_product, RESOURCE)
    routes.add("PUT", "/products/{sku}", update_product, RESOURCE)
    routes.add("DELETE", "/products/{sku}", delete_product, RESOURCE)


def field_getter(state: MagentoState, store_id: int) -> search_criteria.Getter[Product]:
    def get(product: Product, field: str) -> Any:
        if field == "sku":
            return product.sku
        if field in ("entity_id", "id"):
            return product.id
        if field == "type_id":
            return product.type_id
        if field == "attribute_set_id":
            return product.attribute_set_id
        if field == "created_at":
            return product.created_at
        if field == "updated_at":
            return product.updated_at
        if field == "category_id":
            return list(product.category_links or ())
        if field == "website_id":
            return product.website_ids
        return product.value(field, store_id)

    return get


def find(state: MagentoState, sku: str) -> Product:
    product = state.product(sku)
    if product is None:
        raise product_not_found()
    return product


def sku_lookup(state: MagentoState) -> Callable[[search_criteria.Filter], list[Product] | None]:
    """The SKU index: products a `sku` eq/in filter can match, in entity id order."""

    def lookup(flt: search_criteria.Filter) -> list[Product] | None:
        if flt.field != "sku" or flt.op not in ("eq", "in"):
            return None
        wanted = flt.value.split(",") if flt.op == "in" else [flt.value]
        found = {p.id: p for p in (state.product(sku.strip()) for sku in wanted) if p is not None}
        return [found[i] for i in sorted(found)]

    return lookup


async def list_products(request: web.Request) -> web.Response:
    state, scope = state_of(request), scope_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria,
        lambda: list(state.iter_products()),
        field_getter(state, scope.store_id),
        known=lambda f: f in STATIC_FIELDS or f in state.attributes,
        cache=state.search_cache,
        cache_key=("products", scope.store_id, state.versions["products"]),
        lookup=sku_lookup(state),
    )
    items = [product_view(state, p, scope.store_id, detail=False) for p in page]
    return json_response(search_criteria.result(items, total, criteria))


async def get_product(request: web.Request) -> web.Response:
    state, scope = state_of(request), scope_of(request)
    product = find(state, request.match_info["sku"])
    store_id = scope.store_id
    if request.query.get("storeId"):
        try:
            store_id = int(request.query["storeId"])
        except ValueError:
            raise invalid_field_value("storeId", request.query["storeId"]) from None
    return json_response(product_view(state, product, store_id))


async def create_product(request: web.Request) -> web.Response:
    data = await read_param(request, "product")
    state, scope = state_of(request), scope_of(request)
    product = save_product(state, scope, data)
    return json_response(product_view(state, product, scope.store_id))


async def update_product(request: web.Request) -> web.Response:
    data = await read_param(request, "product")
    state, scope = state_of(request), scope_of(request)
    product = save_product(state, scope, data, request.match_info["sku"])
    return json_response(product_view(state, product, scope.store_id))


async def delete_product(request: web.Request) -> web.Response:
    state = state_of(request)
    product = find(state, request.match_info["sku"])
    url_keys.unindex(state, product)
    state.remove_product(product)
    state.touched("products")
    state.touched("source_items")
    return json_response(True)
