"""`CategoryRepository::save` for POST /V1/categories (create) and PUT /V1/categories/{id} (merge of the sent
keys). A new category goes last among its siblings (the resource model ignores a sent position), takes its
url_key from its name, and a url_key a sibling already has is a 400: both would get the same URL path.
`CategoryManagement::move` for PUT /V1/categories/{categoryId}/move is the only way to change a parent."""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.magento import url_keys
from sandbox.magento.errors import URL_KEY_EXISTS, MagentoError, invalid_field_value, no_such_entity
from sandbox.magento.routing import Scope
from sandbox.magento.state import Category, MagentoState

CUSTOM_CODES = frozenset(
    {"url_key", "description", "is_anchor", "display_mode", "meta_title", "meta_keywords", "meta_description",
     "image", "default_sort_by", "landing_page", "custom_use_parent_settings"}
)  # fmt: skip


def _custom(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in data.get("custom_attributes") or []:
        if isinstance(item, dict) and item.get("attribute_code") in CUSTOM_CODES:
            value = item.get("value")
            out[str(item["attribute_code"])] = None if value is None else str(value)
    if out.get("url_key"):
        out["url_key"] = url_keys.slug(out["url_key"])
    return out


def _check_url_key(state: MagentoState, category: Category) -> None:
    key = category.custom.get("url_key")
    for other in state.categories.values():
        if other.id != category.id and other.parent_id == category.parent_id and other.custom.get("url_key") == key:
            raise MagentoError(400, URL_KEY_EXISTS)


def create_category(state: MagentoState, scope: Scope, data: dict[str, Any]) -> Category:
    name = str(data.get("name") or "").strip()
    if not name:
        raise MagentoError(400, 'The "%1" attribute is required. Enter and try again.', ["Name"])
    parent_id = _int(data.get("parent_id") or state.root_category_of(scope.store_id), "parent_id")
    parent = state.categories.get(parent_id)
    if parent is None:
        raise no_such_entity("id", parent_id)
    siblings = [c.position for c in state.categories.values() if c.parent_id == parent_id]
    now = state.now()
    category = Category(
        id=state.ids.peek("catalog_category_entity") + 1,
        parent_id=parent_id,
        name=name,
        path="",
        level=parent.level + 1,
        position=max(siblings, default=0) + 1,
        created_at=now,
        updated_at=now,
        is_active=bool(data.get("is_active", True)),
        include_in_menu=bool(data.get("include_in_menu", True)),
    )
    category.custom = {k: v for k, v in _custom(data).items() if v is not None}
    category.custom.setdefault("url_key", url_keys.slug(name))
    _check_url_key(state, category)
    category.id = state.ids.next("catalog_category_entity")
    category.path = f"{parent.path}/{category.id}"
    state.categories[category.id] = category
    state.touched("categories")
    return category


def update_category(state: MagentoState, category: Category, data: dict[str, Any]) -> Category:
    """Only the sent keys change; moving is PUT /V1/categories/{id}/move, so parent_id is not applied."""
    updated = dataclasses.replace(
        category, custom=dict(category.custom), available_sort_by=list(category.available_sort_by)
    )
    if data.get("name") is not None:
        if not str(data["name"]).strip():
            raise MagentoError(400, 'The "%1" attribute is required. Enter and try again.', ["Name"])
        updated.name = str(data["name"]).strip()
    for flag in ("is_active", "include_in_menu"):
        if data.get(flag) is not None:
            setattr(updated, flag, bool(data[flag]))
    if data.get("available_sort_by") is not None and isinstance(data["available_sort_by"], list):
        updated.available_sort_by = [str(s) for s in data["available_sort_by"]]
    for code, value in _custom(data).items():
        if value is None:
            updated.custom.pop(code, None)
        else:
            updated.custom[code] = value
    if not updated.custom.get("url_key"):
        updated.custom["url_key"] = url_keys.slug(updated.name)
    _check_url_key(state, updated)
    updated.updated_at = state.now()
    state.categories[category.id] = updated
    state.touched("categories")
    return updated


MOVE_UNDER_ITSELF = "Operation do not allow to move a parent category to any of children category"
COULD_NOT_MOVE = "Could not move category"


def move_category(state: MagentoState, category: Category, parent: Category, after_id: int | None) -> None:
    """`CategoryManagement::move`: no afterId (or one past the last child) puts it last under the parent; the
    subtree's path and level follow it; product links are the category's own and do not change."""
    # Magento compares paths as strings (a known false positive for "1/2/3" vs "1/2/30"); the sandbox checks
    # whole segments, so the gateway is never taught to work around an id coincidence.
    if parent.id == category.id or f"{parent.path}/".startswith(f"{category.path}/"):
        raise MagentoError(400, MOVE_UNDER_ITSELF)
    siblings = [c for c in state.categories.values() if c.parent_id == parent.id and c.id != category.id]
    if siblings:
        last = max(siblings, key=lambda c: (c.position, c.id)).id
        after_id = last if after_id is None or after_id > last else after_id
    key = category.custom.get("url_key")
    if any(c.custom.get("url_key") == key for c in siblings):
        # The URL rewrites the move regenerates would collide; Magento wraps that in a generic message.
        raise MagentoError(400, COULD_NOT_MOVE)
    after = state.categories.get(after_id) if after_id else None
    position = after.position + 1 if after is not None else 1
    for other in state.categories.values():
        if other.parent_id == category.parent_id and other.position > category.position:
            other.position -= 1
    for other in siblings:
        if other.position >= position:
            other.position += 1
    old_prefix, old_level = category.path, category.level
    category.parent_id, category.position, category.level = parent.id, position, parent.level + 1
    category.path = f"{parent.path}/{category.id}"
    for other in state.categories.values():
        if other.path.startswith(old_prefix + "/"):
            other.path = category.path + other.path[len(old_prefix) :]
            other.level += category.level - old_level
    category.updated_at = state.now()
    state.touched("categories")


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_field_value(field, value) from None
