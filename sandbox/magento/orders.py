"""Routes: /V1/orders (list, get, create), /V1/orders/{id}/cancel and /V1/order/{orderId}/invoice|ship.

ACL Magento_Sales::actions_view, ::create, ::cancel, ::invoice, ::ship. `{id}` is the entity_id, never the
increment id. When an invoice, a shipment or a cancel makes the order complete, `order.completed` is sent
(once per order). Creating an order is the sandbox's checkout: it applies the placement's stock effect
(stock_moves.py), which a real repository save would not.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento import callbacks, search_criteria, stock_moves
from sandbox.magento.errors import ENTITY_NOT_FOUND, MagentoError
from sandbox.magento.order_build import build_order
from sandbox.magento.order_flow import cancel, invoice, ship
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_json, read_param, scope_of, state_of
from sandbox.magento.state import MagentoState

VIEW = "Magento_Sales::actions_view"
ORDER_FIELDS = frozenset(
    {"entity_id", "increment_id", "state", "status", "store_id", "created_at", "updated_at", "customer_id",
     "customer_email", "customer_is_guest", "customer_group_id", "customer_firstname", "customer_lastname",
     "grand_total", "base_grand_total", "subtotal", "total_qty_ordered", "order_currency_code", "is_virtual",
     "total_invoiced", "total_paid", "coupon_code", "ext_order_id"}
)  # fmt: skip


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/orders", list_orders, VIEW)
    routes.add("POST", "/orders", create_order, "Magento_Sales::create")
    routes.add("GET", "/orders/{id}", get_order, VIEW)
    routes.add("POST", "/orders/{id}/cancel", cancel_order, "Magento_Sales::cancel")
    routes.add("POST", "/order/{orderId}/invoice", invoice_order, "Magento_Sales::invoice")
    routes.add("POST", "/order/{orderId}/ship", ship_order, "Magento_Sales::ship")


def find(state: MagentoState, order_id: int) -> dict[str, Any]:
    order = state.orders.get(order_id)
    if order is None:
        raise MagentoError(404, ENTITY_NOT_FOUND)
    return order


async def list_orders(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria,
        list(state.orders.values()),
        lambda order, field: order.get(field),
        known=ORDER_FIELDS.__contains__,
        cache=state.search_cache,
        cache_key=("orders", state.versions["orders"]),
    )
    return json_response(search_criteria.result(page, total, criteria))


async def get_order(request: web.Request) -> web.Response:
    return json_response(find(state_of(request), int_param(request, "id")))


async def create_order(request: web.Request) -> web.Response:
    data = await read_param(request, "entity")
    state = state_of(request)
    order = build_order(state, scope_of(request), data)
    state.orders[order["entity_id"]] = order
    stock_moves.placed(state, order)
    state.touched("orders")
    return json_response(order)


async def cancel_order(request: web.Request) -> web.Response:
    """`OrderService::cancel`: true once canceled; false (still 200) when `canCancel` says no."""
    state = state_of(request)
    order = find(state, int_param(request, "id"))
    done, completed = cancel(state, order)
    if completed:
        _completed(request, order)
    return json_response(done)


def _completed(request: web.Request, order: dict[str, Any]) -> None:
    callbacks.emit(
        request, callbacks.ORDER_COMPLETED, {"order_id": order["entity_id"], "increment_id": order["increment_id"]}
    )


async def _document(request: web.Request, make: Any) -> web.Response:
    body = await read_json(request)
    state = state_of(request)
    order = find(state, int_param(request, "orderId"))
    document_id, completed = make(state, order, body if isinstance(body, dict) else {})
    if completed:
        _completed(request, order)
    return json_response(document_id)


async def invoice_order(request: web.Request) -> web.Response:
    return await _document(request, invoice)


async def ship_order(request: web.Request) -> web.Response:
    return await _document(request, ship)
