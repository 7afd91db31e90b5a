"""Routes: product attribute sets, attributes and their options.

ACL Magento_Catalog::sets and Magento_Catalog::attributes_attributes. Adding an option answers its new id as a
string: 2.4's `OptionManagement::add` looks the option up by label and returns `(string) $optionId`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento import eav, search_criteria
from sandbox.magento.errors import MagentoError, no_such_entity
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_param, state_of
from sandbox.magento.state import Attribute, AttributeOption, AttributeSet, MagentoState

SETS = "Magento_Catalog::sets"
ATTRIBUTES = "Magento_Catalog::attributes_attributes"
SET_FIELDS = frozenset({"attribute_set_id", "attribute_set_name", "sort_order", "entity_type_id"})
ATTRIBUTE_FIELDS = frozenset(
    {"attribute_id", "attribute_code", "frontend_input", "backend_type", "scope", "is_user_defined", "is_required"}
)


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/products/attribute-sets/sets/list", list_sets, SETS)
    routes.add("GET", "/products/attribute-sets/{attributeSetId}", get_set, SETS)
    routes.add("GET", "/products/attributes", list_attributes, ATTRIBUTES)
    routes.add("GET", "/products/attributes/{attributeCode}", get_attribute, ATTRIBUTES)
    routes.add("GET", "/products/attributes/{attributeCode}/options", list_options, ATTRIBUTES)
    routes.add("POST", "/products/attributes/{attributeCode}/options", add_option, ATTRIBUTES)


def set_view(attribute_set: AttributeSet) -> dict[str, Any]:
    return {
        "attribute_set_id": attribute_set.id,
        "attribute_set_name": attribute_set.name,
        "sort_order": attribute_set.sort_order,
        "entity_type_id": attribute_set.entity_type_id,
    }


def find_attribute(state: MagentoState, code: str) -> Attribute:
    attribute = state.attributes.get(code)
    if attribute is None:
        raise MagentoError(
            404, 'The attribute with a "%1" attributeCode doesn\'t exist. Verify the attribute and try again.', [code]
        )
    return attribute


async def list_sets(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria,
        sorted(state.attribute_sets.values(), key=lambda s: s.id),
        lambda s, f: set_view(s).get(f),
        known=SET_FIELDS.__contains__,
    )
    return json_response(search_criteria.result([set_view(s) for s in page], total, criteria))


async def get_set(request: web.Request) -> web.Response:
    set_id = int_param(request, "attributeSetId")
    attribute_set = state_of(request).attribute_sets.get(set_id)
    if attribute_set is None:
        raise no_such_entity("id", set_id)
    return json_response(set_view(attribute_set))


async def list_attributes(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    views = {code: eav.attribute_view(a) for code, a in state.attributes.items()}
    page, total = search_criteria.select(
        criteria,
        sorted(state.attributes.values(), key=lambda a: a.id),
        lambda a, f: views[a.code].get(f),
        known=ATTRIBUTE_FIELDS.__contains__,
    )
    return json_response(search_criteria.result([views[a.code] for a in page], total, criteria))


async def get_attribute(request: web.Request) -> web.Response:
    attribute = find_attribute(state_of(request), request.match_info["attributeCode"])
    return json_response(eav.attribute_view(attribute))


async def list_options(request: web.Request) -> web.Response:
    attribute = find_attribute(state_of(request), request.match_info["attributeCode"])
    return json_response(eav.options_view(attribute))


async def add_option(request: web.Request) -> web.Response:
    state = state_of(request)
    option = await read_param(request, "option")
    attribute = find_attribute(state, request.match_info["attributeCode"])
    # Options live in eav_attribute_option only for user-defined selects; the others come from source models.
    if attribute.frontend_input not in ("select", "multiselect") or not attribute.is_user_defined:
        raise MagentoError(400, 'The "%1" attribute doesn\'t work with options.', [attribute.code])
    label = str(option.get("label") or "").strip()
    if not label:
        raise MagentoError(400, "The attribute option label is empty. Enter the value and try again.")
    if eav.option_id(attribute, label) is not None:
        raise MagentoError(400, 'Admin store attribute option label "%1" already exists.', [option.get("label")])
    store_labels: dict[int, str] = {}
    for item in option.get("store_labels") or []:
        if isinstance(item, dict) and item.get("label") and item.get("store_id") is not None:
            store_labels[int(item["store_id"])] = str(item["label"])
    new = AttributeOption(
        state.option_ids.next("eav_attribute_option"),
        label,
        int(option.get("sort_order") or 0),
        bool(option.get("is_default")),
        store_labels,
    )
    attribute.options.append(new)
    state.touched("products")
    return json_response(str(new.id))
