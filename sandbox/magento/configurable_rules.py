"""Magento's rules for configurable products, shared by the /V1/configurable-products routes and the product
save (`extension_attributes.configurable_product_options` / `configurable_product_links`).

Where each rule and message comes from in Magento 2.4 (docs/magento-api-notes.md item 16):
`OptionRepository` (options: get, list, save, delete), `LinkManagement` (children: add, remove, list), the
`ProductRepositorySave` plugin (every link needs a value for each option's attribute, and no two links may
share a combination) and `Configurable::canUseAttribute` (an axis is a global, user-defined select).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.magento.configurable_state import SuperAttribute
from sandbox.magento.errors import MagentoError, invalid_field_value, product_not_found
from sandbox.magento.state import Attribute, MagentoState, Product

CONFIGURABLE = "configurable"
CHILD_TYPES = frozenset({"simple", "virtual"})
# OptionRepository::save turns a simple or virtual product into a configurable one; any other type is an
# InvalidArgumentException, which production mode masks as a 500.
OPTION_PARENT_TYPES = frozenset({"simple", "virtual", CONFIGURABLE})

ATTRIBUTE_UNUSABLE = "Provided attribute can not be used with configurable product."
OPTION_NOT_SAVED = "An error occurred while saving the option. Please try to save again."
ONLY_CONFIGURABLE = 'This is implemented for the "%1" configurable product only.'
OPTION_NOT_FOUND = 'The "%1" entity that was requested doesn\'t exist. Verify the entity and try again.'
OPTION_NOT_FOUND_FOR_UPDATE = 'Option with id "%1" not found'
NOT_FOUND_FOR_REMOVAL = "The option that was requested doesn't exist. Verify the entity and try again."
ALREADY_ATTACHED = "The product is already attached."
NO_OPTIONS = "The parent product doesn't have configurable product options."
CHILD_LACKS_VALUE = 'The child product doesn\'t have the "%1" attribute value. Verify the value and try again.'
LINK_LACKS_VALUE = 'Product with id "%1" does not contain required attribute "%2".'
SAME_VALUES = 'Products "%1" and "%2" have the same set of attribute values.'
NOT_CONFIGURABLE = 'The product with the "%1" SKU isn\'t a configurable product.'
INPUT_ERRORS = "One or more input exceptions have occurred."
ATTRIBUTE_NOT_FOUND = 'The attribute with a "%1" attributeCode doesn\'t exist. Verify the attribute and try again.'


def internal_error() -> MagentoError:
    """A non-Localized exception as production mode shows it."""
    report = f"webapi-{uuid.uuid4().hex[:13]}"
    return MagentoError(500, f"Internal Error. Details are available in Magento log file. Report ID: {report}")


# --- lookups ------------------------------------------------------------------------------------------------


def configurable_only(state: MagentoState, sku: str) -> Product:
    """`OptionRepository::getProduct`: the product, which must be configurable."""
    product = state.product(sku)
    if product is None:
        raise product_not_found()
    if product.type_id != CONFIGURABLE:
        raise MagentoError(400, ONLY_CONFIGURABLE, [sku])
    return product


def attribute_by_id(state: MagentoState, attribute_id: int) -> Attribute | None:
    return next((a for a in state.attributes.values() if a.id == attribute_id), None)


def can_use_attribute(attribute: Attribute) -> bool:
    """`Configurable::canUseAttribute`: global scope, user-defined, options from a source (a select)."""
    return attribute.scope == "global" and attribute.is_user_defined and attribute.frontend_input == "select"


def find_option(state: MagentoState, parent: Product, option_id: int) -> SuperAttribute | None:
    return next((o for o in state.configurable.options_of(parent.id) if o.id == option_id), None)


def children(state: MagentoState, parent: Product) -> list[Product]:
    found = (state.products_by_id.get(i) for i in state.configurable.children_of(parent.id))
    return [p for p in found if p is not None]


# --- views --------------------------------------------------------------------------------------------------


def option_view(state: MagentoState, parent: Product, option: SuperAttribute) -> dict[str, Any]:
    """Magento keeps no option values: it lists the attribute's options that a linked child has (in the
    attribute's order), so an option without children answers `values: []`."""
    attribute = attribute_by_id(state, option.attribute_id)
    used = {str(child.values.get(attribute.code)) for child in children(state, parent)} if attribute else set()
    ordered = sorted(attribute.options, key=lambda o: (o.sort_order, o.id)) if attribute else []
    return {
        "id": option.id,
        "attribute_id": str(option.attribute_id),
        "label": option.label,
        "position": option.position,
        "is_use_default": option.is_use_default,
        "values": [{"value_index": o.id} for o in ordered if str(o.id) in used],
        "product_id": parent.id,
    }


def extension_view(state: MagentoState, product: Product) -> dict[str, Any]:
    """What `GET /V1/products/{sku}` adds to a configurable's extension attributes."""
    if product.type_id != CONFIGURABLE:
        return {}
    return {
        "configurable_product_options": [
            option_view(state, product, o) for o in state.configurable.options_of(product.id)
        ],
        "configurable_product_links": state.configurable.children_of(product.id),
    }


# --- options --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionInput:
    attribute: Attribute
    label: str
    position: int
    is_use_default: bool


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_field_value(field, value) from None


def _value_indexes(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    return [v.get("value_index") if isinstance(v, dict) else None for v in raw]


def validate_new_option(raw: dict[str, Any]) -> None:
    """`OptionRepository::validateNewOptionData`: one InputException listing every missing part."""
    messages: list[str] = []
    if not raw.get("attribute_id"):
        messages.append("Option attribute ID is not specified.")
    if not raw.get("label"):
        messages.append("Option label is not specified.")
    indexes = _value_indexes(raw.get("values"))
    if not indexes:
        messages.append("Option values are not specified.")
    messages += ["Value index is not specified for an option." for v in indexes if v is None]
    if len(messages) == 1:
        raise MagentoError(400, messages[0])
    if messages:
        raise MagentoError(400, INPUT_ERRORS, errors=[{"message": m, "parameters": []} for m in messages])


def usable_attribute(state: MagentoState, raw_id: Any, *, missing: MagentoError) -> Attribute:
    attribute = attribute_by_id(state, _int(raw_id, "attribute_id"))
    if attribute is None:
        raise missing
    if not can_use_attribute(attribute):
        raise MagentoError(400, ATTRIBUTE_UNUSABLE)
    return attribute


def check_values(attribute: Attribute, raw_values: Any) -> None:
    """A value is one of the attribute's option ids (`value_index`)."""
    known = {o.id for o in attribute.options}
    for value in _value_indexes(raw_values):
        if value is None or _int(value, "value_index") not in known:
            raise invalid_field_value("value_index", value)


def option_input(state: MagentoState, raw: dict[str, Any], *, missing: MagentoError) -> OptionInput:
    attribute = usable_attribute(state, raw.get("attribute_id"), missing=missing)
    check_values(attribute, raw.get("values"))
    label = str(raw.get("label") or attribute.label)
    return OptionInput(attribute, label, _int(raw.get("position") or 0, "position"), bool(raw.get("is_use_default")))


def store_option(state: MagentoState, parent: Product, wanted: OptionInput) -> int:
    """One super attribute per attribute: a second save for the same attribute updates the first (2.4 finds
    it by product and attribute), so its id is the answer again."""
    options = state.configurable.options.setdefault(parent.id, [])
    option = next((o for o in options if o.attribute_id == wanted.attribute.id), None)
    if option is None:
        option = SuperAttribute(
            state.ids.next("catalog_product_super_attribute"), parent.id, wanted.attribute.id, wanted.label
        )
        options.append(option)
    option.label, option.position, option.is_use_default = wanted.label, wanted.position, wanted.is_use_default
    return option.id


def add_option(state: MagentoState, sku: str, raw: dict[str, Any]) -> int:
    """`POST /V1/configurable-products/{sku}/options`."""
    parent = state.product(sku)
    if parent is None:
        raise product_not_found()
    validate_new_option(raw)
    if parent.type_id not in OPTION_PARENT_TYPES:
        raise internal_error()  # 'Incompatible product type'
    # An unknown attribute id fails the row's foreign key, which the repository reports as a failed save.
    wanted = option_input(state, raw, missing=MagentoError(400, OPTION_NOT_SAVED))
    parent.type_id = CONFIGURABLE
    option_id = store_option(state, parent, wanted)
    state.touched("products")
    return option_id


def update_option(state: MagentoState, sku: str, option_id: int, raw: dict[str, Any]) -> int:
    """`PUT .../options/{id}`: label, position and is_use_default. Values are not stored (see option_view)."""
    parent = configurable_only(state, sku)
    option = find_option(state, parent, option_id)
    if option is None:
        raise MagentoError(404, OPTION_NOT_FOUND_FOR_UPDATE, [option_id])
    if raw.get("label"):
        option.label = str(raw["label"])
    if raw.get("position") is not None:
        option.position = _int(raw["position"], "position")
    if raw.get("is_use_default") is not None:
        option.is_use_default = bool(raw["is_use_default"])
    state.touched("products")
    return option.id


def delete_option(state: MagentoState, sku: str, option_id: int) -> bool:
    """`DELETE .../options/{id}`: Magento first unlinks every child (`saveProducts($product, [])`), then drops
    the super attribute."""
    parent = configurable_only(state, sku)
    option = find_option(state, parent, option_id)
    if option is None:
        raise MagentoError(404, NOT_FOUND_FOR_REMOVAL)
    state.configurable.set_links(parent.id, [])
    state.configurable.options[parent.id].remove(option)
    state.touched("products")
    return True


# --- children -------------------------------------------------------------------------------------------------


def attribute_codes(state: MagentoState, attribute_ids: Iterable[int]) -> list[str]:
    found = (attribute_by_id(state, i) for i in attribute_ids)
    return [a.code for a in found if a is not None]


def validate_links(state: MagentoState, codes: list[str], child_ids: list[int]) -> None:
    """The `ProductRepositorySave` plugin: every linked product has a value for each option's attribute, and no
    two share the whole combination (the later one is named first)."""
    seen: dict[tuple[str, ...], int] = {}
    for child_id in child_ids:
        child = state.products_by_id.get(child_id)
        if child is None:
            raise product_not_found()
        for code in codes:
            if child.values.get(code) is None:
                raise MagentoError(400, LINK_LACKS_VALUE, [child_id, code])
        key = tuple(f"{code}:{child.values[code]}" for code in codes)
        if key in seen:
            raise MagentoError(400, SAME_VALUES, [child_id, seen[key]])
        seen[key] = child_id


def link_child(state: MagentoState, sku: str, child_sku: str) -> bool:
    """`LinkManagement::addChild`."""
    parent, child = state.product(sku), state.product(child_sku)
    if parent is None or child is None:
        raise product_not_found()
    linked = state.configurable.children_of(parent.id)
    if child.id in linked:
        raise MagentoError(400, ALREADY_ATTACHED)
    options = state.configurable.options_of(parent.id) if parent.type_id == CONFIGURABLE else []
    if not options:
        raise MagentoError(400, NO_OPTIONS)
    codes = attribute_codes(state, (o.attribute_id for o in options))
    for code in codes:
        if not child.values.get(code):
            raise MagentoError(400, CHILD_LACKS_VALUE, [code])
    if child.type_id not in CHILD_TYPES:
        raise invalid_field_value("childSku", child_sku)  # the sandbox's own rule: variants are simple/virtual
    validate_links(state, codes, [*linked, child.id])
    state.configurable.set_links(parent.id, [*linked, child.id])
    state.touched("products")
    return True


def unlink_child(state: MagentoState, sku: str, child_sku: str) -> bool:
    """`LinkManagement::removeChild`: the child is matched by its SKU exactly as sent."""
    parent = state.product(sku)
    if parent is None:
        raise product_not_found()
    if parent.type_id != CONFIGURABLE:
        raise MagentoError(400, NOT_CONFIGURABLE, [sku])
    kept = [c.id for c in children(state, parent) if c.sku != child_sku]
    if len(kept) == len(state.configurable.children_of(parent.id)):
        raise MagentoError(404, NOT_FOUND_FOR_REMOVAL)
    state.configurable.set_links(parent.id, kept)
    state.touched("products")
    return True
