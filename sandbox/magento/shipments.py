"""Routes: GET /V1/shipments (search) and GET /V1/shipment/{id}. ACL Magento_Sales::shipment.

The list leaves `extension_attributes` out, as Magento's list endpoints may ("might not return full
extension_attributes"): with MSI the shipment's `source_code` is read from the single-shipment GET.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento import search_criteria
from sandbox.magento.errors import ENTITY_NOT_FOUND, MagentoError
from sandbox.magento.routing import RestRoutes, int_param, json_response, state_of

ACL = "Magento_Sales::shipment"
FIELDS = frozenset({"entity_id", "increment_id", "order_id", "store_id", "created_at", "updated_at", "total_qty"})


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/shipments", list_shipments, ACL)
    routes.add("GET", "/shipment/{id}", get_shipment, ACL)


def view(shipment: dict[str, Any], *, detail: bool) -> dict[str, Any]:
    out = {"comments": [], "packages": [], "updated_at": shipment.get("created_at"), **shipment}
    if not detail:
        out.pop("extension_attributes", None)
    return out


async def list_shipments(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria, list(state.shipments.values()), lambda s, field: s.get(field), known=FIELDS.__contains__
    )
    return json_response(search_criteria.result([view(s, detail=False) for s in page], total, criteria))


async def get_shipment(request: web.Request) -> web.Response:
    shipment = state_of(request).shipments.get(int_param(request, "id"))
    if shipment is None:
        raise MagentoError(404, ENTITY_NOT_FOUND)
    return json_response(view(shipment, detail=True))
