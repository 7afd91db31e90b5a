"""Routes: /V1/categories (tree, list, get, create, update, move, product assignments). ACL Magento_Catalog::categories.

The tree is rooted at the store's root category, at "Root Catalog" (1) through `all`, or at rootCategoryId.
Creating a category, by anyone, sends `category.created`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento import callbacks, search_criteria
from sandbox.magento.category_save import create_category, move_category, update_category
from sandbox.magento.category_view import category_view, tree_view
from sandbox.magento.errors import bad_request, invalid_field_value, no_such_entity, product_not_found
from sandbox.magento.routing import (
    RestRoutes,
    int_param,
    json_response,
    read_json,
    read_param,
    scope_of,
    state_of,
)
from sandbox.magento.state import Category, MagentoState

RESOURCE = "Magento_Catalog::categories"
LIST_FIELDS = frozenset(
    {"entity_id", "id", "name", "parent_id", "level", "path", "position", "is_active", "include_in_menu",
     "url_key", "created_at", "updated_at"}
)  # fmt: skip


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/categories", tree, RESOURCE)
    routes.add("POST", "/categories", create, RESOURCE)
    routes.add("GET", "/categories/list", list_categories, RESOURCE)
    routes.add("GET", "/categories/{categoryId}", get, RESOURCE)
    routes.add("PUT", "/categories/{id}", update, RESOURCE)
    routes.add("PUT", "/categories/{categoryId}/move", move, RESOURCE)
    routes.add("GET", "/categories/{categoryId}/products", assigned_products, RESOURCE)
    routes.add("POST", "/categories/{categoryId}/products", assign_product, RESOURCE)
    routes.add("PUT", "/categories/{categoryId}/products", assign_product, RESOURCE)
    routes.add("DELETE", "/categories/{categoryId}/products/{sku}", unassign_product, RESOURCE)


def find(state: MagentoState, category_id: int) -> Category:
    category = state.categories.get(category_id)
    if category is None:
        raise no_such_entity("id", category_id)
    return category


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid_field_value(name, raw) from None


async def tree(request: web.Request) -> web.Response:
    state, scope = state_of(request), scope_of(request)
    root_id = _query_int(request, "rootCategoryId")
    if root_id is None:
        root_id = 1 if scope.is_global else state.root_category_of(scope.store_id)
    return json_response(tree_view(state, find(state, root_id), _query_int(request, "depth")))


def _field(category: Category, field: str) -> Any:
    if field in ("entity_id", "id"):
        return category.id
    if field == "url_key":
        return category.custom.get("url_key")
    return getattr(category, field)


async def list_categories(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria, sorted(state.categories.values(), key=lambda c: c.id), _field, known=LIST_FIELDS.__contains__
    )
    return json_response(search_criteria.result([category_view(state, c) for c in page], total, criteria))


async def get(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(category_view(state, find(state, int_param(request, "categoryId"))))


async def create(request: web.Request) -> web.Response:
    data = await read_param(request, "category")
    state = state_of(request)
    category = create_category(state, scope_of(request), data)
    callbacks.emit(request, callbacks.CATEGORY_CREATED, {"category_id": category.id})
    return json_response(category_view(state, category))


async def update(request: web.Request) -> web.Response:
    data = await read_param(request, "category")
    state = state_of(request)
    category = update_category(state, find(state, int_param(request, "id")), data)
    return json_response(category_view(state, category))


async def move(request: web.Request) -> web.Response:
    parent_id = await read_param(request, "parentId", kind=int)
    after_id = (await read_json(request)).get("afterId")
    if after_id is not None and not isinstance(after_id, int):
        raise invalid_field_value("afterId", after_id)
    state = state_of(request)
    # The repository loads the category, then the parent: an unknown id of either is the same 404.
    category = find(state, int_param(request, "categoryId"))
    move_category(state, category, find(state, parent_id), after_id)
    return json_response(True)


async def assigned_products(request: web.Request) -> web.Response:
    state = state_of(request)
    category = find(state, int_param(request, "categoryId"))
    links = []
    for sku_key, position in state.category_products.get(category.id, {}).items():
        product = state.products.get(sku_key)
        if product is not None:
            links.append({"sku": product.sku, "position": position, "category_id": str(category.id)})
    return json_response(links)


async def assign_product(request: web.Request) -> web.Response:
    link = await read_param(request, "productLink")
    state = state_of(request)
    # webapi.xml forces productLink.category_id from the URL
    category = find(state, int_param(request, "categoryId"))
    product = state.product(str(link.get("sku") or ""))
    if product is None:
        raise product_not_found()
    try:
        position = int(link.get("position") or 0)
    except (TypeError, ValueError):
        raise invalid_field_value("position", link.get("position")) from None
    state.set_category_link(product, category.id, position)
    product.updated_at = state.now()
    state.touched("products")
    return json_response(True)


async def unassign_product(request: web.Request) -> web.Response:
    state = state_of(request)
    category = find(state, int_param(request, "categoryId"))
    product = state.product(request.match_info["sku"])
    if product is None:
        raise product_not_found()
    if not state.remove_category_link(product, category.id):
        raise bad_request("The category doesn't contain the specified product.")
    product.updated_at = state.now()
    state.touched("products")
    return json_response(True)
