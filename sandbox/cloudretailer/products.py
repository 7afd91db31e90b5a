"""`GET/POST /products`, `GET/PUT/DELETE /products/{product_id}`.

A product is never removed: DELETE marks it deleted (Magento keeps it, disabled, because orders point at
it), and it stays readable and listed so a consumer paging with updated_since sees the deletion."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.cloudretailer.bodies import PRODUCT_NULLABLE, PriceLevelsIn, ProductCreate, ProductUpdate, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.images import apply_images, fingerprint
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import (
    PAGING_PARAMS,
    KeysetIndex,
    check_params,
    json_response,
    page_query,
    page_response,
    single_page,
)
from sandbox.cloudretailer.records import Product, StockLevel
from sandbox.cloudretailer.state import State
from sandbox.cloudretailer.validation import check_links, set_attributes
from sandbox.cloudretailer.variants import axis_values, check_variant, variants_changed

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
    check_params(request, PAGING_PARAMS | {"updated_since", "sku", "style_id"})
    st = state(request)
    if "style_id" in request.query:
        return _list_members(request, st, request.query["style_id"])
    query = page_query(request, "products")
    if "sku" in request.query:
        found = st.product_for_sku(request.query["sku"])
        return single_page([found.to_json()] if found else [])
    rows, next_key = st.products.page(query)
    return page_response([p.to_json() for p in rows], "products", "", next_key)


def _list_members(request: web.Request, st: State, style_id: str) -> web.Response:
    """The products naming a style, deleted ones too, paged like the whole listing (the cursor is this
    style's own)."""
    query = page_query(request, "products", style_id)
    index = KeysetIndex()
    index.keys = sorted(p.key for p in st.members(style_id))
    keys, next_key = index.page(query)
    rows = [st.products.rows[k[1]] for k in keys]
    return page_response([p.to_json() for p in rows], "products", style_id, next_key)


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
    if st.style_for_code(body.sku) is not None:
        # Style codes are Magento SKUs too (of the configurable parent): the two must never meet.
        raise ApiError(422, f"sku: {body.sku!r} is the code of a style", field="sku")
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
        style_id=body.style_id,
    )
    check_links(st, product, body.model_fields_set)
    set_attributes(product, body.attributes or {})
    check_variant(st, product, body.model_fields_set)
    if body.images:
        product.images = apply_images(st, [], body.images)
    product.id = st.next_id("P-")
    # Style membership is kept by product id, which exists only now: join through set_style like a move.
    style_id, product.style_id = product.style_id, None
    st.set_style(product, style_id)
    st.products.insert(product)
    st.product_by_sku[product.sku] = product.id
    for store_id, table in st.stock.items():
        table.insert(StockLevel(product.sku, store_id, 0))
    emit(request, "product.created", _event(product))
    variants_changed(request, product.style_id)
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
    if "style_id" in sent:
        draft.style_id = body.style_id
    check_links(st, draft, sent)
    if body.attributes is not None:
        set_attributes(draft, body.attributes)
    # Sending a variant's style_id back unchanged is not setting it (its style may have been deleted since).
    check_variant(st, draft, sent if draft.style_id != product.style_id else sent - {"style_id"})
    images_changed = False
    if body.images is not None:
        draft.images = apply_images(st, product.images, body.images)
        images_changed = fingerprint(draft.images) != fingerprint(product.images)
    draft.images, kept_images = product.images, draft.images
    changed = draft.to_json() != product.to_json()
    draft.images = kept_images
    if changed or images_changed:
        styles_touched = _styles_touched(st, product, draft)
        _commit(st, product, draft)
        st.products.touch(product)
        if changed:
            emit(request, "product.updated", _event(product))
        if images_changed:
            emit(request, "product.images.updated", _event(product))
        variants_changed(request, *styles_touched)
    return json_response(product.to_json())


@routes.delete(BASE + "/products/{product_id}")
async def delete(request: web.Request) -> web.Response:
    check_params(request, ())
    product = get_product(request)
    if not product.deleted:  # deleting twice is not a second change, so no second event
        product.deleted = True
        state(request).products.touch(product)
        emit(request, "product.deleted", _event(product))
        variants_changed(request, product.style_id)  # one variant fewer
    return json_response(product.to_json())


def _copy(p: Product) -> Product:
    return Product(
        p.id, p.sku, p.name, p.description_html, p.price, p.weight, p.web_active, p.department_id,
        list(p.category_ids), [dict(s) for s in p.attribute_sets], dict(p.attributes), list(p.images),
        p.updated_at, p.deleted, dict(p.price_levels), p.style_id,
    )  # fmt: skip


def _commit(st: State, target: Product, draft: Product) -> None:
    for name in (*SCALAR_FIELDS, "price_levels", "category_ids", "attribute_sets", "attributes", "images"):
        setattr(target, name, getattr(draft, name))
    if draft.style_id != target.style_id:
        st.set_style(target, draft.style_id)


def _styles_touched(st: State, before: Product, after: Product) -> tuple[str | None, ...]:
    """The styles whose variants a product change changes: both when it moves, its own when an axis value
    changes."""
    if before.style_id != after.style_id:
        return before.style_id, after.style_id
    style = st.styles.get(before.style_id) if before.style_id else None
    if style is not None and axis_values(before, style.axes) != axis_values(after, style.axes):
        return (style.id,)
    return ()


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
