"""Routes: /V1/customers (search, get, create, update). ACL Magento_Customer::manage; creating an account is
`anonymous` as in Customer/etc/webapi.xml. A created customer, whoever created it, sends `customer.created`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento import callbacks, search_criteria
from sandbox.magento.customer_save import create_customer, customer_view, update_customer
from sandbox.magento.errors import MagentoError, no_such_entity
from sandbox.magento.routing import (
    ANONYMOUS,
    RestRoutes,
    int_param,
    json_response,
    read_json,
    read_param,
    scope_of,
    state_of,
)
from sandbox.magento.state import Customer, MagentoState

RESOURCE = "Magento_Customer::manage"
SEARCH_FIELDS = frozenset(
    {"id", "entity_id", "email", "firstname", "lastname", "website_id", "store_id", "group_id", "created_at",
     "updated_at", "created_in", "middlename", "dob", "gender", "taxvat"}
)  # fmt: skip


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/customers/search", search, RESOURCE)
    routes.add("POST", "/customers", create, ANONYMOUS)
    routes.add("GET", "/customers/{customerId}", get, RESOURCE)
    routes.add("PUT", "/customers/{customerId}", update, RESOURCE)


def find(state: MagentoState, customer_id: int) -> Customer:
    customer = state.customers.get(customer_id)
    if customer is None:
        raise no_such_entity("customerId", customer_id)
    return customer


def _field(customer: Customer, field: str) -> Any:
    if field in ("id", "entity_id"):
        return customer.id
    if hasattr(customer, field):
        return getattr(customer, field)
    return customer.extra.get(field)


async def search(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria,
        list(state.customers.values()),
        _field,
        known=SEARCH_FIELDS.__contains__,
        cache=state.search_cache,
        cache_key=("customers", state.versions["customers"]),
    )
    return json_response(search_criteria.result([customer_view(c) for c in page], total, criteria))


async def get(request: web.Request) -> web.Response:
    return json_response(customer_view(find(state_of(request), int_param(request, "customerId"))))


async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    data = body.get("customer") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "customer"})
    password = body.get("password")
    state = state_of(request)
    customer = create_customer(state, scope_of(request), data, None if password is None else str(password))
    callbacks.emit(request, callbacks.CUSTOMER_CREATED, {"customer_id": customer.id})
    return json_response(customer_view(customer))


async def update(request: web.Request) -> web.Response:
    data = await read_param(request, "customer")
    state = state_of(request)
    customer = find(state, int_param(request, "customerId"))  # webapi.xml forces customer.id from the URL
    return json_response(customer_view(update_customer(state, scope_of(request), customer, data)))
