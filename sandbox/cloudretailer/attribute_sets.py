"""`GET /attribute-sets` and `GET /tenders`: reference data the adapter reads (read-only in this API)."""

from __future__ import annotations

from aiohttp import web

from sandbox.cloudretailer.keys import BASE, state
from sandbox.cloudretailer.paging import PAGING_PARAMS, check_params, page_query, page_response

routes = web.RouteTableDef()


@routes.get(BASE + "/attribute-sets")
async def list_attribute_sets(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS | {"updated_since"})
    rows, next_key = state(request).attribute_sets.page(page_query(request, "attribute-sets"))
    return page_response([s.to_json() for s in rows], "attribute-sets", "", next_key)


@routes.get(BASE + "/tenders")
async def list_tenders(request: web.Request) -> web.Response:
    check_params(request, PAGING_PARAMS)
    rows, next_key = state(request).tenders.page(page_query(request, "tenders", since=False))
    return page_response([t.to_json() for t in rows], "tenders", "", next_key)
