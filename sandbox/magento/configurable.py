"""Routes: /V1/configurable-products (options and children of a configurable product). ACL
Magento_Catalog::products. The rules and messages live in configurable_rules; `PUT .../variation` is not
served (the connector builds its children itself)."""

from __future__ import annotations

from aiohttp import web

from sandbox.magento import configurable_rules as rules
from sandbox.magento.errors import MagentoError, product_not_found
from sandbox.magento.product_view import product_view
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_param, scope_of, state_of

RESOURCE = "Magento_Catalog::products"
PREFIX = "/configurable-products/{sku}"


def register(routes: RestRoutes) -> None:
    routes.add("GET", PREFIX + "/children", list_children, RESOURCE)
    routes.add("POST", PREFIX + "/child", add_child, RESOURCE)
    routes.add("DELETE", PREFIX + "/children/{childSku}", remove_child, RESOURCE)
    routes.add("POST", PREFIX + "/options", add_option, RESOURCE)
    routes.add("GET", PREFIX + "/options/all", list_options, RESOURCE)
    routes.add("GET", PREFIX + "/options/{id}", get_option, RESOURCE)
    routes.add("PUT", PREFIX + "/options/{id}", update_option, RESOURCE)
    routes.add("DELETE", PREFIX + "/options/{id}", delete_option, RESOURCE)


async def list_children(request: web.Request) -> web.Response:
    """Products; a product that is not configurable has none (`[]`, not an error)."""
    state, scope = state_of(request), scope_of(request)
    parent = state.product(request.match_info["sku"])
    if parent is None:
        raise product_not_found()
    found = rules.children(state, parent) if parent.type_id == rules.CONFIGURABLE else []
    return json_response([product_view(state, child, scope.store_id, detail=False) for child in found])


async def add_child(request: web.Request) -> web.Response:
    child_sku = await read_param(request, "childSku", kind=str)
    return json_response(rules.link_child(state_of(request), request.match_info["sku"], child_sku))


async def remove_child(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(rules.unlink_child(state, request.match_info["sku"], request.match_info["childSku"]))


async def add_option(request: web.Request) -> web.Response:
    option = await read_param(request, "option")
    return json_response(rules.add_option(state_of(request), request.match_info["sku"], option))


async def list_options(request: web.Request) -> web.Response:
    state = state_of(request)
    parent = rules.configurable_only(state, request.match_info["sku"])
    return json_response([rules.option_view(state, parent, o) for o in state.configurable.options_of(parent.id)])


async def get_option(request: web.Request) -> web.Response:
    state = state_of(request)
    parent = rules.configurable_only(state, request.match_info["sku"])
    option_id = int_param(request, "id")
    option = rules.find_option(state, parent, option_id)
    if option is None:
        raise MagentoError(404, rules.OPTION_NOT_FOUND, [option_id])
    return json_response(rules.option_view(state, parent, option))


async def update_option(request: web.Request) -> web.Response:
    option = await read_param(request, "option")
    state, option_id = state_of(request), int_param(request, "id")
    return json_response(rules.update_option(state, request.match_info["sku"], option_id, option))


async def delete_option(request: web.Request) -> web.Response:
    state, option_id = state_of(request), int_param(request, "id")
    return json_response(rules.delete_option(state, request.match_info["sku"], option_id))
