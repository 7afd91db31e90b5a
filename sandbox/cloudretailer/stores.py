"""`GET /stores`, `GET /stores/{store_id}`, `GET /stores/{store_id}/sales-totals`."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import BASE, state
from sandbox.cloudretailer.paging import PAGING_PARAMS, check_params, json_response, page_query, page_response
from sandbox.cloudretailer.records import Store

routes = web.RouteTableDef()


def get_store(request: web.Request, store_id: str, *, field: str | None = None, status: int = 404) -> Store:
    store = state(request).stores.get(store_id)
    if store is None:
        raise ApiError(status, f"store {store_id!r} does not exist", field=field)
    return store


@routes.get(BASE + "/stores")
async def list_stores(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS)
    rows, next_key = state(request).stores.page(page_query(request, "stores", since=False))
    return page_response([s.to_json() for s in rows], "stores", "", next_key)


@routes.get(BASE + "/stores/{store_id}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(get_store(request, request.match_info["store_id"]).to_json())


@routes.get(BASE + "/stores/{store_id}/sales-totals")
async def sales_totals(request: web.Request) -> web.Response:
    check_params(request, ())
    store = get_store(request, request.match_info["store_id"])
    return json_response(state(request).totals[store.id].to_json())
