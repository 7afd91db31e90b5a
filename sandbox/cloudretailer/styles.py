"""`GET/POST /styles`, `GET/PUT/DELETE /styles/{style_id}`: the parents of variants.

A style's code is the Magento SKU of its configurable product, so it is unique among styles, never a
product's SKU, and never changes. Like a product, a style is never removed: DELETE marks it deleted and its
variants keep pointing at it (a consumer must refuse them), and it stays listed for updated_since paging."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.bodies import STYLE_NULLABLE, StyleCreate, StyleUpdate, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.images import apply_images, fingerprint
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import PAGING_PARAMS, check_params, json_response, page_query, page_response
from sandbox.cloudretailer.records import Style
from sandbox.cloudretailer.state import State
from sandbox.cloudretailer.validation import check_links, set_attributes
from sandbox.cloudretailer.variants import check_axes, check_new_axes, style_event

SCALAR_FIELDS = ("name", "description_html", "department_id")
routes = web.RouteTableDef()


def get_style(request: web.Request) -> Style:
    style_id = request.match_info["style_id"]
    style = state(request).styles.get(style_id)
    if style is None:
        raise ApiError(404, f"style {style_id!r} does not exist")
    return style


@routes.get(BASE + "/styles")
async def list_styles(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since"})
    st = state(request)
    rows, next_key = st.styles.page(page_query(request, "styles"))
    return page_response([st.style_json(s) for s in rows], "styles", "", next_key)


@routes.get(BASE + "/styles/{style_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(state(request).style_json(get_style(request)))


@routes.post(BASE + "/styles")
async def create(request: web.Request) -> web.Response:
    check_params(request, ())
    body = await read_body(request, StyleCreate, STYLE_NULLABLE)
    st = state(request)
    if (existing := st.style_for_code(body.code)) is not None:
        message = f"a style with code {body.code!r} exists"
        raise ApiError(409, message, field="code", existing=st.style_json(existing))
    if st.product_for_sku(body.code) is not None:
        raise ApiError(422, f"code: {body.code!r} is the sku of a product", field="code")
    style = Style(
        id="",
        code=body.code,
        name=body.name,
        description_html=body.description_html or "",
        department_id=body.department_id,
        category_ids=list(body.category_ids or []),
        attribute_sets=[s.model_dump() for s in body.attribute_sets or []] or [{"name": "Default", "primary": True}],
        axes=list(body.axes),
        attributes={},
        images=[],
    )
    check_links(st, style, body.model_fields_set)
    check_axes(style.axes)
    set_attributes(style, body.attributes or {})
    if body.images:
        style.images = apply_images(st, [], body.images)
    style.id = st.next_id("ST-")
    st.styles.insert(style)
    st.style_by_code[style.code] = style.id
    st.style_members.setdefault(style.id, set())
    emit(request, "style.created", style_event(style))
    return json_response(st.style_json(style), 201)


@routes.put(BASE + "/styles/{style_id}")
async def update(request: web.Request) -> web.Response:
    check_params(request, ())
    style = get_style(request)
    body = await read_body(request, StyleUpdate, STYLE_NULLABLE)
    if style.deleted:
        raise ApiError(409, f"style {style.id} is deleted; it cannot be changed", code="deleted")
    if body.code is not None and body.code != style.code:
        raise ApiError(422, f"code: a style's code cannot change (it is {style.code!r})", field="code")
    st = state(request)
    draft = _draft(st, style, body)
    images_changed = fingerprint(draft.images) != fingerprint(style.images)
    if images_changed or _fields(draft) != _fields(style):
        _commit(style, draft)
        st.styles.touch(style)
        emit(request, "style.updated", style_event(style))
    return json_response(st.style_json(style))


@routes.delete(BASE + "/styles/{style_id}")
async def delete(request: web.Request) -> web.Response:
    check_params(request, ())
    style = get_style(request)
    st = state(request)
    if not style.deleted:  # deleting twice is not a second change, so no second event
        style.deleted = True
        st.styles.touch(style)
        emit(request, "style.deleted", style_event(style))
    return json_response(st.style_json(style))


def _draft(st: State, style: Style, body: StyleUpdate) -> Style:
    """The style as the PUT would leave it, fully validated; the style itself is not touched (a 422 changes
    nothing)."""
    sent = body.model_fields_set
    draft = Style(
        style.id, style.code, style.name, style.description_html, style.department_id, list(style.category_ids),
        [dict(s) for s in style.attribute_sets], list(style.axes), dict(style.attributes), list(style.images),
    )  # fmt: skip
    for name in SCALAR_FIELDS:
        if name in sent:
            setattr(draft, name, getattr(body, name))
    draft.description_html = draft.description_html or ""
    if "category_ids" in sent:
        draft.category_ids = list(body.category_ids or [])
    if "attribute_sets" in sent:
        draft.attribute_sets = [s.model_dump() for s in body.attribute_sets or []]
    check_links(st, draft, sent)
    if body.axes is not None:
        draft.axes = list(body.axes)
        check_axes(draft.axes)
        if draft.axes != style.axes:
            check_new_axes(st, style, draft.axes)
    if body.attributes is not None:
        set_attributes(draft, body.attributes)
    if body.images is not None:
        draft.images = apply_images(st, style.images, body.images)
    return draft


def _fields(style: Style) -> tuple[object, ...]:
    return (
        *(getattr(style, name) for name in SCALAR_FIELDS),
        style.category_ids, style.attribute_sets, style.axes, style.attributes,
    )  # fmt: skip


def _commit(target: Style, draft: Style) -> None:
    for name in (*SCALAR_FIELDS, "category_ids", "attribute_sets", "axes", "attributes", "images"):
        setattr(target, name, getattr(draft, name))
