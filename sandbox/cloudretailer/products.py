"""`GET/POST /products`, `GET/PUT/DELETE /products/{product_id}`.

A product is never removed: DELETE marks it deleted (Magento keeps it, disabled, because orders point at
it), and it stays readable and listed so a consumer paging with updated_since sees the deletion."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sandbox import catalog
from sandbox.cloudretailer.bodies import PRODUCT_NULLABLE, PriceLevelsIn, ProductCreate, ProductUpdate, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.images import apply_images, fingerprint
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import (
    PAGING_PARAMS,
    check_params,
    json_response,
    page_query,
    page_response,
    single_page,
)
from sandbox.cloudretailer.records import Product, StockLevel
from sandbox.cloudretailer.state import State

ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
SCALAR_FIELDS = ("name", "description_html", "price", "weight", "web_active", "department_id")
routes = web.RouteTableDef()


def get_product(request: web.Request) -> Product:
    product_id = request.match_info["product_id"]
    product = state(request).products.get(product_id)
    if product is None:
        raise ApiError(404, f"product {product_id!r} does not exist")
    return product


def _event(product: Product) -> dict[str, Any]:
    return {"product_id": product.id, "sku": product.sku}


@routes.get(BASE + "/products")
async def list_products(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since", "sku"})
    st = state(request)
    query = page_query(request, "products")
    if "sku" in request.query:
        found = st.product_for_sku(request.query["sku"])
        return single_page([found.to_json()] if found else [])
    rows, next_key = st.products.page(query)
    return page_response([p.to_json() for p in rows], "products", "", next_key)


@routes.get(BASE + "/products/{product_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(get_product(request).to_json())


@routes.post(BASE + "/products")
async def create(request: web.Request) -> web.Response:
    check_params(request, ())
    body = await read_body(request, ProductCreate, PRODUCT_NULLABLE)
    st = state(request)
    if (existing := st.product_for_sku(body.sku)) is not None:
        raise ApiError(409, f"a product with sku {body.sku!r} exists", field="sku", existing=existing.to_json())
    product = Product(
        id="",
        sku=body.sku,
        name=body.name,
        description_html=body.description_html or "",
        price=body.price,
        weight=body.weight,
        web_active=bool(body.web_active),
        department_id=body.department_id,
        category_ids=list(body.category_ids or []),
        attribute_sets=[s.model_dump() for s in body.attribute_sets or []] or [{"name": "Default", "primary": True}],
        attributes={},
        images=[],
        price_levels=_levels({}, body.price_levels),
    )
    _check_links(st, product, body.model_fields_set)
    _set_attributes(product, body.attributes or {})
    if body.images:
        product.images = apply_images(st, None, body.images)
    product.id = st.next_id("P-")
    st.products.insert(product)
    st.product_by_sku[product.sku] = product.id
    for store_id, table in st.stock.items():
        table.insert(StockLevel(product.sku, store_id, 0))
    emit(request, "product.created", _event(product))
    return json_response(product.to_json(), 201)


@routes.put(BASE + "/products/{product_id}")
async def update(request: web.Request) -> web.Response:
    check_params(request, ())
    product = get_product(request)
    body = await read_body(request, ProductUpdate, PRODUCT_NULLABLE)
    if product.deleted:
        raise ApiError(409, f"product {product.id} is deleted; it cannot be changed", code="deleted")
    st = state(request)
    sent = body.model_fields_set
    # Validate everything on a copy first: a 422 must leave the product as it was.
    draft = _copy(product)
    for name in SCALAR_FIELDS:
        if name in sent:
            setattr(draft, name, getattr(body, name))
    draft.description_html = draft.description_html or ""
    if "price_levels" in sent:
        draft.price_levels = _levels(draft.price_levels, body.price_levels)
    if "category_ids" in sent:
        draft.category_ids = list(body.category_ids or [])
    if "attribute_sets" in sent:
        draft.attribute_sets = [s.model_dump() for s in body.attribute_sets or []]
    _check_links(st, draft, sent)
    if body.attributes is not None:
        _set_attributes(draft, body.attributes)
    images_changed = False
    if body.images is not None:
        draft.images = apply_images(st, product, body.images)
        images_changed = fingerprint(draft.images) != fingerprint(product.images)
    draft.images, kept_images = product.images, draft.images
    changed = draft.to_json() != product.to_json()
    draft.images = kept_images
    if changed or images_changed:
        _commit(product, draft)
        st.products.touch(product)
        if changed:
            emit(request, "product.updated", _event(product))
        if images_changed:
            emit(request, "product.images.updated", _event(product))
    return json_response(product.to_json())


@routes.delete(BASE + "/products/{product_id}")
async def delete(request: web.Request) -> web.Response:
    check_params(request, ())
    product = get_product(request)
    if not product.deleted:  # deleting twice is not a second change, so no second event
        product.deleted = True
        state(request).products.touch(product)
        emit(request, "product.deleted", _event(product))
    return json_response(product.to_json())


def _copy(p: Product) -> Product:
    return Product(
        p.id, p.sku, p.name, p.description_html, p.price, p.weight, p.web_active, p.department_id,
        list(p.category_ids), [dict(s) for s in p.attribute_sets], dict(p.attributes), list(p.images),
        p.updated_at, p.deleted, dict(p.price_levels),
    )  # fmt: skip


def _commit(target: Product, draft: Product) -> None:
    for name in (*SCALAR_FIELDS, "price_levels", "category_ids", "attribute_sets", "attributes", "images"):
        setattr(target, name, getattr(draft, name))


def _levels(current: dict[str, float], sent: PriceLevelsIn | None) -> dict[str, float]:
    """`price_levels: null` clears every level; otherwise the levels named are set (or cleared by null)."""
    if sent is None:
        return {}
    levels = dict(current)
    for level in sent.model_fields_set:
        value = getattr(sent, level)
        if value is None:
            levels.pop(level, None)
        else:
            levels[level] = value
    return levels


def _check_links(st: State, p: Product, sent: set[str]) -> None:
    if p.department_id is not None:
        dept = st.categories.get(p.department_id)
        if dept is None or dept.parent_id is not None:
            raise ApiError(422, f"department_id: {p.department_id!r} is not a department", field="department_id")
    for n, category_id in enumerate(p.category_ids):
        field = f"category_ids[{n}]" if "category_ids" in sent else "department_id"
        if st.categories.get(category_id) is None:
            raise ApiError(422, f"category_ids[{n}]: category {category_id!r} does not exist", field=field)
        if p.department_id is not None and st.department_of(category_id) != p.department_id:
            raise ApiError(
                422, f"{field}: category {category_id} is not under department {p.department_id}", field=field
            )
    names = st.attribute_set_names()
    for n, entry in enumerate(p.attribute_sets):
        if entry["name"] not in names:
            raise ApiError(
                422, f"attribute_sets[{n}].name: no attribute set {entry['name']!r}", field=f"attribute_sets[{n}].name"
            )
    if len({s["name"] for s in p.attribute_sets}) != len(p.attribute_sets):
        raise ApiError(422, "attribute_sets: a set is listed twice", field="attribute_sets")
    if sum(1 for s in p.attribute_sets if s["primary"]) != 1:
        raise ApiError(422, "attribute_sets: exactly one set must be primary", field="attribute_sets")


def _set_attributes(p: Product, changes: dict[str, Any]) -> None:
    """Merge by code; null removes the attribute. Select attributes take only their options."""
    for code, value in changes.items():
        field = f"attributes.{code}"
        if not ATTRIBUTE_CODE.match(code):
            raise ApiError(422, f"{field}: codes are lower-case letters, digits and _", field=field)
        if value is None:
            p.attributes.pop(code, None)
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ApiError(422, f"{field} must be a string or a number", field=field)
        options = catalog.SHARED_ATTRIBUTES.get(code)
        if options and value not in options:
            raise ApiError(422, f"{field} must be one of {options}", field=field)
        p.attributes[code] = value
