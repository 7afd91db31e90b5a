"""Field rules products and styles share: links to departments, categories and attribute sets, and the
`attributes` merge. Both records have these fields with the same meaning, so they are checked by one code."""

from __future__ import annotations

import re
from typing import Any, Protocol

from sandbox import catalog
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.state import State

ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


class Described(Protocol):
    """A product or a style: what the shared rules read and write."""

    department_id: str | None
    category_ids: list[str]
    attribute_sets: list[dict[str, Any]]
    attributes: dict[str, Any]


def check_links(st: State, p: Described, sent: set[str]) -> None:
    """Department, categories (under that department) and attribute sets (exactly one primary) exist."""
    if p.department_id is not None:
        dept = st.categories.get(p.department_id)
        if dept is None or dept.parent_id is not None:
            raise ApiError(422, f"department_id: {p.department_id!r} is not a department", field="department_id")
    _check_categories(st, p, sent)
    _check_attribute_sets(st, p.attribute_sets)


def _check_categories(st: State, p: Described, sent: set[str]) -> None:
    for n, category_id in enumerate(p.category_ids):
        # A category that stopped fitting because the department changed is the department's fault.
        field = f"category_ids[{n}]" if "category_ids" in sent else "department_id"
        if st.categories.get(category_id) is None:
            raise ApiError(422, f"category_ids[{n}]: category {category_id!r} does not exist", field=field)
        if p.department_id is not None and st.department_of(category_id) != p.department_id:
            raise ApiError(
                422, f"{field}: category {category_id} is not under department {p.department_id}", field=field
            )


def _check_attribute_sets(st: State, sets: list[dict[str, Any]]) -> None:
    names = st.attribute_set_names()
    for n, entry in enumerate(sets):
        if entry["name"] not in names:
            raise ApiError(
                422, f"attribute_sets[{n}].name: no attribute set {entry['name']!r}", field=f"attribute_sets[{n}].name"
            )
    if len({s["name"] for s in sets}) != len(sets):
        raise ApiError(422, "attribute_sets: a set is listed twice", field="attribute_sets")
    if sum(1 for s in sets if s["primary"]) != 1:
        raise ApiError(422, "attribute_sets: exactly one set must be primary", field="attribute_sets")


def set_attributes(p: Described, changes: dict[str, Any]) -> None:
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
