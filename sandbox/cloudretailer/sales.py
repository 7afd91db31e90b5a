"""`POST /sales`, `GET /sales`, `GET /sales/{sale_id}`: executed sales (a completed web order is imported
as one, tendered "Web Orders"). Recording a sale lowers on-hand at its store and adds to its sales totals,
as Cloud Retailer does; an external_ref is accepted once, so a retried import has no second effect."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.cloudretailer.bodies import SaleIn, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.inventory import inventory_event, tidy
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import (
    PAGING_PARAMS,
    check_params,
    json_response,
    page_query,
    page_response,
    parse_iso,
    single_page,
)
from sandbox.cloudretailer.records import DepartmentTotals, Sale, to_cents
from sandbox.cloudretailer.state import TENDERS, State

TOLERANCE_CENTS = 1  # amounts must add up within 0.01
routes = web.RouteTableDef()


@routes.get(BASE + "/sales")
async def list_sales(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since", "external_ref"})
    st = state(request)
    query = page_query(request, "sales")
    if "external_ref" in request.query:
        sale_id = st.sale_by_ref.get(request.query["external_ref"])
        return single_page([st.sales.rows[sale_id].to_json()] if sale_id else [])
    rows, next_key = st.sales.page(query)
    return page_response([s.to_json() for s in rows], "sales", "", next_key)


@routes.get(BASE + "/sales/{sale_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    sale = state(request).sales.get(request.match_info["sale_id"])
    if sale is None:
        raise ApiError(404, f"sale {request.match_info['sale_id']!r} does not exist")
    return json_response(sale.to_json())


@routes.post(BASE + "/sales")
async def create(request: web.Request) -> web.Response:
    check_params(request, ())
    body = await read_body(request, SaleIn, {"customer_id"})
    st = state(request)
    if (sale_id := st.sale_by_ref.get(body.external_ref)) is not None:
        existing = st.sales.rows[sale_id].to_json()
        raise ApiError(
            409, f"a sale with external_ref {body.external_ref!r} exists ({sale_id})",
            field="external_ref", existing=existing,
        )  # fmt: skip
    completed_at = _validate(st, body)
    sale = Sale(
        st.next_id("SA-"),
        body.store_id,
        body.external_ref,
        body.customer_id,
        [line.model_dump() for line in body.lines],
        body.shipping,
        body.tax_total,
        body.total,
        [t.model_dump() for t in body.tenders],
        completed_at,
    )
    st.sales.insert(sale)
    st.sale_by_ref[sale.external_ref] = sale.id
    _add_to_totals(st, sale)
    for event in _lower_on_hand(st, sale):
        emit(request, "inventory.updated", event)
    return json_response(sale.to_json(), 201)


def _validate(st: State, body: SaleIn) -> int:
    """Everything is checked before anything changes: a refused sale has no effect."""
    if body.store_id not in st.stores.rows:
        raise ApiError(422, f"store_id: store {body.store_id!r} does not exist", field="store_id")
    if body.customer_id is not None and body.customer_id not in st.customers.rows:
        raise ApiError(422, f"customer_id: customer {body.customer_id!r} does not exist", field="customer_id")
    completed_at = parse_iso(body.completed_at, "completed_at", status=422)
    # A deleted product still sells: a web order placed before the deletion must still import.
    for n, line in enumerate(body.lines):
        if st.product_for_sku(line.sku) is None:
            raise ApiError(422, f"lines[{n}].sku: no product with sku {line.sku!r}", field=f"lines[{n}].sku")
        if to_cents(line.discount) > to_cents(line.quantity * line.unit_price):
            raise ApiError(422, f"lines[{n}].discount is more than the line's amount", field=f"lines[{n}].discount")
    for n, tender in enumerate(body.tenders):
        if tender.type not in TENDERS:
            raise ApiError(422, f"tenders[{n}].type must be one of {TENDERS}", field=f"tenders[{n}].type")
    total = to_cents(body.total)
    tendered = sum(to_cents(t.amount) for t in body.tenders)
    if abs(tendered - total) > TOLERANCE_CENTS:
        raise ApiError(422, f"tenders add up to {tendered / 100:.2f}, not the total {body.total:.2f}", field="tenders")
    expected = _net_cents(body.lines) + to_cents(body.shipping) + to_cents(body.tax_total)
    if abs(expected - total) > TOLERANCE_CENTS:
        raise ApiError(
            422, f"total must be lines - discounts + shipping + tax_total = {expected / 100:.2f}", field="total"
        )
    line_tax = sum(to_cents(line.tax) for line in body.lines)
    if line_tax > to_cents(body.tax_total) + TOLERANCE_CENTS:
        raise ApiError(422, "tax_total is less than the lines' tax (the rest is tax on shipping)", field="tax_total")
    return completed_at


def _net_cents(lines: Any) -> int:
    return sum(to_cents(line.quantity * line.unit_price) - to_cents(line.discount) for line in lines)


def _add_to_totals(st: State, sale: Sale) -> None:
    totals = st.totals[sale.store_id]
    totals.sales_count += 1
    totals.gross_cents += to_cents(sale.total)
    totals.shipping_cents += to_cents(sale.shipping)
    totals.tax_cents += to_cents(sale.tax_total)
    for line in sale.lines:
        net = to_cents(line["quantity"] * line["unit_price"]) - to_cents(line["discount"])
        totals.net_cents += net
        totals.discount_cents += to_cents(line["discount"])
        product = st.product_for_sku(line["sku"])
        dept_id = (product.department_id if product else None) or "none"
        dept = totals.by_department.setdefault(dept_id, DepartmentTotals())
        dept.quantity += line["quantity"]
        dept.net_cents += net
        dept.tax_cents += to_cents(line["tax"])
    for tender in sale.tenders:
        totals.by_tender[tender["type"]] = totals.by_tender.get(tender["type"], 0) + to_cents(tender["amount"])
    totals.updated_at = sale.updated_at


def _lower_on_hand(st: State, sale: Sale) -> list[dict[str, object]]:
    """One stock change (and one inventory.updated) per SKU, however many lines carry it. On-hand may go
    below zero, as at a till: the sale happened, the count is what is wrong."""
    table = st.stock[sale.store_id]
    quantities: dict[str, float] = {}
    for line in sale.lines:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + line["quantity"]
    events = []
    for sku, quantity in quantities.items():
        level = table.rows[sku]
        level.on_hand = tidy(level.on_hand - quantity)
        table.touch(level)
        events.append(inventory_event(level))
    return events
