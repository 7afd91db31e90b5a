"""`GET/POST /categories`, `GET/PUT /categories/{category_id}`: departments (no parent) and categories,
at most three levels (department > category > classification), codes unique (case-insensitive)."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.bodies import CATEGORY_NULLABLE, CategoryCreate, CategoryUpdate, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import PAGING_PARAMS, check_params, json_response, page_query, page_response
from sandbox.cloudretailer.records import Category
from sandbox.cloudretailer.state import State

MAX_LEVELS = 3
routes = web.RouteTableDef()


def get_category(request: web.Request) -> Category:
    category_id = request.match_info["category_id"]
    category = state(request).categories.get(category_id)
    if category is None:
        raise ApiError(404, f"category {category_id!r} does not exist")
    return category


@routes.get(BASE + "/categories")
async def list_categories(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since"})
    rows, next_key = state(request).categories.page(page_query(request, "categories"))
    return page_response([c.to_json() for c in rows], "categories", "", next_key)


@routes.get(BASE + "/categories/{category_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(get_category(request).to_json())


@routes.post(BASE + "/categories")
async def create(request: web.Request) -> web.Response:
    check_params(request, ())
    body = await read_body(request, CategoryCreate, CATEGORY_NULLABLE)
    st = state(request)
    _check_code(st, body.code, None)
    level = _level_under(st, body.parent_id, None, 1)
    category = Category(
        st.next_id("D-" if body.parent_id is None else "C-"),
        body.code,
        body.name,
        body.parent_id,
        True if body.active is None else body.active,
        level,
    )
    st.categories.insert(category)
    st.category_by_code[category.code.casefold()] = category.id
    emit(request, "category.created", {"category_id": category.id})
    return json_response(category.to_json(), 201)


@routes.put(BASE + "/categories/{category_id}")
async def update(request: web.Request) -> web.Response:
    check_params(request, ())
    category = get_category(request)
    body = await read_body(request, CategoryUpdate, CATEGORY_NULLABLE)
    st = state(request)
    sent = body.model_fields_set
    before = category.to_json()
    if "code" in sent and body.code is not None:
        _check_code(st, body.code, category.id)
    if "parent_id" in sent and body.parent_id != category.parent_id:
        height = _subtree_height(st, category.id)
        level = _level_under(st, body.parent_id, category.id, height)
        for child in _relevel(st, category, level):
            emit(request, "category.updated", {"category_id": child.id})
        category.parent_id = body.parent_id
    if body.code is not None:
        st.category_by_code.pop(category.code.casefold(), None)
        category.code = body.code
        st.category_by_code[category.code.casefold()] = category.id
    if body.name is not None:
        category.name = body.name
    if body.active is not None:
        category.active = body.active
    if category.to_json() != before:
        st.categories.touch(category)
        emit(request, "category.updated", {"category_id": category.id})
    return json_response(category.to_json())


def _check_code(st: State, code: str, own_id: str | None) -> None:
    other = st.category_by_code.get(code.casefold())
    if other is not None and other != own_id:
        existing = st.categories.rows[other].to_json()
        raise ApiError(409, f"a category with code {code!r} exists", field="code", existing=existing)


def _level_under(st: State, parent_id: str | None, moving_id: str | None, height: int) -> int:
    """The level the category would take under `parent_id`, refusing cycles and trees deeper than three."""
    if parent_id is None:
        return 1
    parent = st.categories.get(parent_id)
    if parent is None:
        raise ApiError(422, f"parent_id: category {parent_id!r} does not exist", field="parent_id")
    ancestor: Category | None = parent
    while ancestor is not None:
        if ancestor.id == moving_id:
            raise ApiError(422, "parent_id: a category cannot be moved under itself", field="parent_id")
        ancestor = st.categories.get(ancestor.parent_id) if ancestor.parent_id else None
    if parent.level + height > MAX_LEVELS:
        raise ApiError(
            422, f"parent_id: categories are at most {MAX_LEVELS} levels deep (department > category > class)",
            field="parent_id",
        )  # fmt: skip
    return parent.level + 1


def _children(st: State, category_id: str) -> list[Category]:
    return [c for c in st.categories.rows.values() if c.parent_id == category_id]


def _subtree_height(st: State, category_id: str) -> int:
    return 1 + max((_subtree_height(st, c.id) for c in _children(st, category_id)), default=0)


def _relevel(st: State, category: Category, level: int) -> list[Category]:
    """Moving a category moves its subtree; a descendant whose `level` changes is changed too (returned, so
    it gets its own event). The category itself is touched by the caller."""
    changed: list[Category] = []
    if level == category.level:
        return changed
    for child in _children(st, category.id):
        changed += _relevel(st, child, level + 1)
        st.categories.touch(child)
        changed.append(child)
    category.level = level
    return changed
