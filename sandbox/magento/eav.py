"""Product EAV attributes: the standard ones a stock Magento has (ids as in a fresh 2.4 install where known),
the seeded shared and Magento-only attributes from sandbox.catalog, their scopes and options, and the
conversion of a sent value into what Magento stores and returns."""

from __future__ import annotations

from typing import Any

from sandbox import catalog
from sandbox.magento.errors import MagentoError
from sandbox.magento.state import Attribute, AttributeOption, Ids, MagentoState

# (id, code, label, frontend_input, backend_type, scope, top_level, required)
STANDARD: list[tuple[int, str, str, str, str, str, bool, bool]] = [
    (73, "name", "Product Name", "text", "varchar", "store", True, True),
    (75, "description", "Description", "textarea", "text", "store", False, False),
    (76, "short_description", "Short Description", "textarea", "text", "store", False, False),
    (77, "price", "Price", "price", "decimal", "global", True, True),
    (78, "special_price", "Special Price", "price", "decimal", "global", False, False),
    (79, "special_from_date", "Special Price From Date", "date", "datetime", "global", False, False),
    (80, "special_to_date", "Special Price To Date", "date", "datetime", "global", False, False),
    (81, "cost", "Cost", "price", "decimal", "global", False, False),
    (82, "weight", "Weight", "weight", "decimal", "global", True, False),
    (84, "meta_title", "Meta Title", "text", "varchar", "store", False, False),
    (85, "meta_keyword", "Meta Keywords", "textarea", "text", "store", False, False),
    (86, "meta_description", "Meta Description", "textarea", "varchar", "store", False, False),
    (87, "image", "Base", "media_image", "varchar", "store", False, False),
    (88, "small_image", "Small", "media_image", "varchar", "store", False, False),
    (89, "thumbnail", "Thumbnail", "media_image", "varchar", "store", False, False),
    (97, "status", "Enable Product", "boolean", "int", "website", True, False),
    (99, "visibility", "Visibility", "select", "int", "store", True, False),
    (121, "url_key", "URL Key", "text", "varchar", "store", False, False),
    (136, "tax_class_id", "Tax Class", "select", "int", "website", False, False),
]
# Options that come from source models rather than eav_attribute_option (fixed ids).
SOURCE_OPTIONS: dict[str, list[tuple[int, str]]] = {
    "status": [(1, "Enabled"), (2, "Disabled")],
    "visibility": [(1, "Not Visible Individually"), (2, "Catalog"), (3, "Search"), (4, "Catalog, Search")],
    "tax_class_id": [(0, "None"), (2, "Taxable Goods")],
    "gift_wrap_available": [(1, "Yes"), (0, "No")],
}
MEDIA_ROLES = ("image", "small_image", "thumbnail")
FIRST_USER_ATTRIBUTE_ID = 150
# Where a user attribute of the seeded catalog lives when not global. Color and size are global selects, so
# they can be the axes of configurable products (docs/magento-api-notes.md item 16); material is a select kept
# per store view (it cannot be an axis), brand a global text, the Magento-only badge text translatable.
USER_SCOPES = {"material": "store", "badge_text": "store"}


def seed_attributes(state: MagentoState) -> None:
    for attr_id, code, label, frontend, backend, scope, top_level, required in STANDARD:
        attribute = Attribute(attr_id, code, label, frontend, backend, scope, False, required, top_level)
        attribute.is_wysiwyg_enabled = code == "description"
        attribute.options = [AttributeOption(i, text) for i, text in SOURCE_OPTIONS.get(code, [])]
        state.attributes[code] = attribute
    # option ids are global across attributes (eav_attribute_option), after the few a fresh install has
    state.option_ids = Ids({"eav_attribute_option": 3})
    next_id = FIRST_USER_ATTRIBUTE_ID
    for code, labels in catalog.SHARED_ATTRIBUTES.items():
        if labels is None:
            attribute = Attribute(next_id, code, code.title(), "text", "varchar", USER_SCOPES.get(code, "global"), True)
        else:
            attribute = Attribute(next_id, code, code.title(), "select", "int", USER_SCOPES.get(code, "global"), True)
            attribute.options = [
                AttributeOption(state.option_ids.next("eav_attribute_option"), label, n)
                for n, label in enumerate(labels)
            ]
        state.attributes[code] = attribute
        next_id += 1
    for code in catalog.MAGENTO_ONLY_ATTRIBUTES:
        if code in SOURCE_OPTIONS:
            attribute = Attribute(next_id, code, code.replace("_", " ").title(), "boolean", "int", "global", True)
            attribute.options = [AttributeOption(i, text) for i, text in SOURCE_OPTIONS[code]]
        else:
            attribute = Attribute(next_id, code, code.replace("_", " ").title(), "text", "varchar", "store", True)
        state.attributes[code] = attribute
        next_id += 1


def option_id(attribute: Attribute, label: str) -> str | None:
    wanted = label.casefold()
    return next((str(o.id) for o in attribute.options if o.label.casefold() == wanted), None)


def _type_error(value: Any, expected: str) -> MagentoError:
    return MagentoError(
        400,
        'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
        {"value": value, "type": expected},
    )


def to_stored(attribute: Attribute, value: Any) -> Any:
    """A sent value as stored: numbers for the numeric top-level fields, strings for custom attributes (the
    API returns every custom attribute value as a string; select values are option ids)."""
    if value is None:
        return None
    if attribute.code in ("price", "weight") or (attribute.frontend_input == "price" and attribute.top_level):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _type_error(value, "float") from None
    if attribute.code in ("status", "visibility"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _type_error(value, "int") from None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer() and attribute.frontend_input != "price":
        return str(int(value))
    if isinstance(value, dict):
        raise _type_error(value, "string")
    return str(value)


def options_view(attribute: Attribute) -> list[dict[str, Any]]:
    """`GET .../options`: user-defined selects start with Magento's empty choice, as the admin form does."""
    out: list[dict[str, Any]] = []
    if attribute.is_user_defined and attribute.frontend_input in ("select", "multiselect"):
        out.append({"label": " ", "value": ""})
    for option in sorted(attribute.options, key=lambda o: (o.sort_order, o.id)):
        item: dict[str, Any] = {"label": option.label, "value": str(option.id)}
        if option.store_labels:
            item["store_labels"] = [{"store_id": s, "label": text} for s, text in sorted(option.store_labels.items())]
        out.append(item)
    return out


def attribute_view(attribute: Attribute) -> dict[str, Any]:
    searchable = "1" if attribute.code in ("name", "sku", "description", "short_description") else "0"
    return {
        "is_wysiwyg_enabled": attribute.is_wysiwyg_enabled,
        "is_html_allowed_on_front": attribute.frontend_input == "textarea",
        "used_for_sort_by": attribute.code in ("name", "price"),
        "is_filterable": attribute.frontend_input in ("select", "multiselect", "price") and attribute.is_user_defined,
        "is_filterable_in_search": False,
        "is_used_in_grid": True,
        "is_visible_in_grid": attribute.top_level and not attribute.is_user_defined,
        "is_filterable_in_grid": True,
        "position": 0,
        "apply_to": [],
        "is_searchable": searchable,
        "is_visible_in_advanced_search": searchable,
        "is_comparable": "0",
        "is_used_for_promo_rules": "0",
        "is_visible_on_front": "1" if attribute.is_user_defined else "0",
        "used_in_product_listing": "1" if attribute.code in ("name", "price", "status", "visibility") else "0",
        "is_visible": True,
        "scope": attribute.scope,
        "attribute_id": attribute.id,
        "attribute_code": attribute.code,
        "frontend_input": attribute.frontend_input,
        "entity_type_id": "4",
        "is_required": attribute.is_required,
        "options": options_view(attribute),
        "is_user_defined": attribute.is_user_defined,
        "default_frontend_label": attribute.label,
        "frontend_labels": [],
        "backend_type": attribute.backend_type,
        "is_unique": "0",
        "validation_rules": [],
    }
