"""Categories as the API returns them: the full record (`catalog-data-category-interface`) and the tree nodes
of GET /V1/categories (`catalog-data-category-tree-interface`)."""

from __future__ import annotations

from typing import Any

from sandbox.magento.state import Category, MagentoState


def children_of(state: MagentoState, category_id: int) -> list[Category]:
    return sorted(
        (c for c in state.categories.values() if c.parent_id == category_id), key=lambda c: (c.position, c.id)
    )


def url_path(state: MagentoState, category: Category) -> str | None:
    """Store URLs start below the store's root category (level 1): `apparel/t-shirts`."""
    parts: list[str] = []
    node: Category | None = category
    while node is not None and node.level >= 2:
        key = node.custom.get("url_key")
        if not key:
            return None
        parts.append(str(key))
        node = state.categories.get(node.parent_id)
    return "/".join(reversed(parts)) or None


def descendants_count(state: MagentoState, category: Category) -> int:
    prefix = category.path + "/"
    return sum(1 for c in state.categories.values() if c.path.startswith(prefix))


def category_view(state: MagentoState, category: Category) -> dict[str, Any]:
    children = children_of(state, category.id)
    custom: dict[str, Any] = {"display_mode": "PRODUCTS", "is_anchor": "1", **category.custom}
    path = url_path(state, category)
    if path:
        custom["url_path"] = path
    custom["path"] = category.path
    custom["children_count"] = str(descendants_count(state, category))
    return {
        "id": category.id,
        "parent_id": category.parent_id,
        "name": category.name,
        "is_active": category.is_active,
        "position": category.position,
        "level": category.level,
        "children": ",".join(str(c.id) for c in children),
        "created_at": category.created_at,
        "updated_at": category.updated_at,
        "path": category.path,
        "available_sort_by": list(category.available_sort_by),
        "include_in_menu": category.include_in_menu,
        "custom_attributes": [{"attribute_code": k, "value": str(v)} for k, v in custom.items() if v is not None],
    }


def tree_view(state: MagentoState, root: Category, depth: int | None) -> dict[str, Any]:
    by_parent: dict[int, list[Category]] = {}
    for c in state.categories.values():
        by_parent.setdefault(c.parent_id, []).append(c)

    def node(category: Category, level: int) -> dict[str, Any]:
        kids = sorted(by_parent.get(category.id, []), key=lambda c: (c.position, c.id))
        expand = depth is None or level < depth
        return {
            "id": category.id,
            "parent_id": category.parent_id,
            "name": category.name,
            "is_active": category.is_active,
            "position": category.position,
            "level": category.level,
            "product_count": len(state.category_products.get(category.id, ())),
            "children_data": [node(k, level + 1) for k in kids] if expand else [],
        }

    return node(root, 0)
