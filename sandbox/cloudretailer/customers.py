"""`GET/POST /customers`, `GET/PUT /customers/{customer_id}`; emails are unique, compared case-insensitively."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.bodies import CUSTOMER_NULLABLE, CustomerCreate, CustomerUpdate, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import (
    PAGING_PARAMS,
    check_params,
    json_response,
    page_query,
    page_response,
    single_page,
)
from sandbox.cloudretailer.records import Customer
from sandbox.cloudretailer.state import State

routes = web.RouteTableDef()


def get_customer(request: web.Request) -> Customer:
    customer_id = request.match_info["customer_id"]
    customer = state(request).customers.get(customer_id)
    if customer is None:
        raise ApiError(404, f"customer {customer_id!r} does not exist")
    return customer


@routes.get(BASE + "/customers")
async def list_customers(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since", "email"})
    st = state(request)
    query = page_query(request, "customers")
    if "email" in request.query:
        customer_id = st.customer_by_email.get(request.query["email"].strip().casefold())
        return single_page([st.customers.rows[customer_id].to_json()] if customer_id else [])
    rows, next_key = st.customers.page(query)
    return page_response([c.to_json() for c in rows], "customers", "", next_key)


@routes.get(BASE + "/customers/{customer_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(get_customer(request).to_json())


@routes.post(BASE + "/customers")
async def create(request: web.Request) -> web.Response:
    check_params(request, ())
    body = await read_body(request, CustomerCreate, CUSTOMER_NULLABLE)
    st = state(request)
    _check_email(st, body.email, None)
    customer = Customer(
        st.next_id("CU-"),
        body.email,
        body.first_name,
        body.last_name,
        body.phone,
        [a.model_dump() for a in body.addresses or []],
    )
    st.customers.insert(customer)
    st.customer_by_email[customer.email.casefold()] = customer.id
    emit(request, "customer.created", {"customer_id": customer.id})
    return json_response(customer.to_json(), 201)


@routes.put(BASE + "/customers/{customer_id}")
async def update(request: web.Request) -> web.Response:
    check_params(request, ())
    customer = get_customer(request)
    body = await read_body(request, CustomerUpdate, CUSTOMER_NULLABLE)
    st = state(request)
    sent = body.model_fields_set
    before = customer.to_json()
    if body.email is not None:
        _check_email(st, body.email, customer.id)
        st.customer_by_email.pop(customer.email.casefold(), None)
        customer.email = body.email
        st.customer_by_email[customer.email.casefold()] = customer.id
    if body.first_name is not None:
        customer.first_name = body.first_name
    if body.last_name is not None:
        customer.last_name = body.last_name
    if "phone" in sent:
        customer.phone = body.phone
    if body.addresses is not None:  # the list is replaced as a whole, as Magento does
        customer.addresses = [a.model_dump() for a in body.addresses]
    if customer.to_json() != before:
        st.customers.touch(customer)
        emit(request, "customer.updated", {"customer_id": customer.id})
    return json_response(customer.to_json())


def _check_email(st: State, email: str, own_id: str | None) -> None:
    other = st.customer_by_email.get(email.casefold())
    if other is not None and other != own_id:
        existing = st.customers.rows[other].to_json()
        raise ApiError(409, f"a customer with email {email!r} exists ({other})", field="email", existing=existing)
