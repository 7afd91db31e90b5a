"""`GET /inventory?store_id=`, `GET/PUT /inventory/{store_id}/{sku}`: on-hand per location."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.bodies import OnHandIn, read_body
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import BASE, emit, state
from sandbox.cloudretailer.paging import PAGING_PARAMS, check_params, json_response, page_query, page_response
from sandbox.cloudretailer.records import StockLevel
from sandbox.cloudretailer.state import Table

routes = web.RouteTableDef()


def store_stock(request: web.Request, store_id: str, field: str | None = None) -> Table[StockLevel]:
    table = state(request).stock.get(store_id)
    if table is None:
        raise ApiError(404, f"store {store_id!r} does not exist", field=field)
    return table


def stock_level(request: web.Request) -> StockLevel:
    table = store_stock(request, request.match_info["store_id"])
    level = table.get(request.match_info["sku"])
    if level is None:
        raise ApiError(404, f"no product with sku {request.match_info['sku']!r}")
    return level


def inventory_event(level: StockLevel) -> dict[str, object]:
    return {"sku": level.sku, "store_id": level.store_id, "on_hand": level.on_hand}


@routes.get(BASE + "/inventory")
async def list_inventory(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since", "store_id"})
    store_id = request.query.get("store_id")
    if not store_id:
        raise ApiError(400, "store_id is required: on-hand is kept per location", field="store_id")
    table = store_stock(request, store_id, "store_id")
    # The cursor is scoped to the store: continuing another store's listing with it is refused.
    rows, next_key = table.page(page_query(request, "inventory", store_id))
    return page_response([r.to_json() for r in rows], "inventory", store_id, next_key)


@routes.get(BASE + "/inventory/{store_id}/{sku}")
async def get_one(request: web.Request) -> web.Response:
    check_params(request, ())
    return json_response(stock_level(request).to_json())


@routes.put(BASE + "/inventory/{store_id}/{sku}")
async def set_on_hand(request: web.Request) -> web.Response:
    check_params(request, ())
    level = stock_level(request)
    body = await read_body(request, OnHandIn)
    if tidy(body.on_hand) != level.on_hand:  # setting the same count is no change and sends nothing
        level.on_hand = tidy(body.on_hand)
        state(request).stock[level.store_id].touch(level)
        emit(request, "inventory.updated", inventory_event(level))
    return json_response(level.to_json())


def tidy(value: float) -> float:
    """Whole counts stay whole numbers in JSON (12, not 12.0); fractional ones (sold by weight) keep 3 places."""
    rounded = round(value, 3)
    return int(rounded) if rounded == int(rounded) else rounded
