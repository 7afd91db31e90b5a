"""Cloud Retailer style -> Magento configurable product: the parent's payload, the checks a style must pass
before anything is written, and the configurable options its variants need. Pure: option ids and attribute
facts are resolved by the importer (styles.py) first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.clients.cloudretailer_models import Product, Style
from workers.sync.catalog import product_mapper
from workers.sync.catalog.magento_meta import AttributeInfo

TYPE_CONFIGURABLE = "configurable"
GLOBAL_SCOPE = "global"


@dataclass(frozen=True)
class WantedOption:
    """One axis as a configurable option: its attribute, label, place and the option ids its variants use."""

    attribute_id: int
    label: str
    position: int
    values: tuple[int, ...]


def live_variants(variants: Sequence[Product]) -> list[Product]:
    """The variants Magento should link: those not deleted that still name the style (a listing read while a
    variant moves may show it under both)."""
    return sorted((v for v in variants if not v.deleted), key=lambda v: v.sku)


def axis_problem(code: str, info: AttributeInfo | None) -> str | None:
    """Why Magento cannot vary a configurable product by `code` (its `canUseAttribute`), or None."""
    if info is None:
        return f"attribute {code!r} does not exist in Magento"
    if info.frontend_input != "select":
        return f"attribute {code!r} is a {info.frontend_input!r} attribute in Magento; an axis must be a select"
    if info.scope != GLOBAL_SCOPE:
        return f"attribute {code!r} has scope {info.scope!r} in Magento; an axis must be global"
    if not info.is_user_defined:
        return f"attribute {code!r} is a system attribute in Magento; an axis must be user-defined"
    return None


def variant_problem(style: Style, variants: Sequence[Product]) -> str | None:
    """A variant without a value for an axis, or two variants with the same combination: Magento would refuse
    to link one of them, leaving the style half built."""
    seen: dict[tuple[str, ...], str] = {}
    for variant in variants:
        combination = []
        for axis in style.axes:
            value = variant.attributes.get(axis)
            if value is None or str(value).strip() == "":
                return f"variant {variant.sku} of style {style.code} has no value for axis {axis!r}"
            combination.append(str(value).strip().casefold())
        key = tuple(combination)
        if key in seen:
            values = ", ".join(f"{a}={variant.attributes.get(a)}" for a in style.axes)
            return f"variants {seen[key]} and {variant.sku} of style {style.code} have the same {values}"
        seen[key] = variant.sku
    return None


def enabled(style: Style, variants: Sequence[Product]) -> bool:
    """A parent is shown while one of its children can be bought."""
    return not style.deleted and any(v.web_active and not v.deleted for v in variants)


def parent_payload(
    style: Style, *, attribute_set_id: int, website_id: int, attributes: Mapping[str, Any], is_enabled: bool
) -> dict[str, Any]:
    """`attributes`: the style's shared, non-axis attributes in Magento's form. No price: a configurable
    product sells at its children's prices."""
    custom = [
        {"attribute_code": "description", "value": style.description_html or ""},
        {"attribute_code": "url_key", "value": product_mapper.url_key(style.name, style.code)},
    ]
    custom += [{"attribute_code": code, "value": attributes[code]} for code in sorted(attributes)]
    return {
        "sku": style.code,
        "name": style.name,
        "status": product_mapper.STATUS_ENABLED if is_enabled else product_mapper.STATUS_DISABLED,
        "visibility": product_mapper.VISIBILITY_CATALOG_SEARCH,
        "type_id": TYPE_CONFIGURABLE,
        "attribute_set_id": attribute_set_id,
        "extension_attributes": {"website_ids": [website_id]},
        "custom_attributes": custom,
    }


def option_label(info: AttributeInfo) -> str:
    return info.label or info.code.replace("_", " ").title()
