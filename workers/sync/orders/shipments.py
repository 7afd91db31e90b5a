"""Reading orders' shipments with the source each left from (`extension_attributes.source_code`, MSI).

Shared by the held-units refresh (refresh.py: what left which source) and the importer (importer.py: which
location a completed order's sale is booked at). A shipment never changes once made, so each is read once per
worker; the list endpoint may leave `extension_attributes` out, the single `GET /V1/shipment/{id}` does not.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from workers.registry import HandlerContext
from workers.sync.orders.held import has_shipped

SHIPMENT_CACHE_MAX = 10_000
_SHARED = "orders:shipment-details"


class ShipmentDetails:
    """shipment id -> the shipment with its source, read once per worker."""

    def __init__(self) -> None:
        self._known: OrderedDict[int, dict[str, Any]] = OrderedDict()

    async def of_orders(self, ctx: HandlerContext, order_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        by_order: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
        for listed in await ctx.magento.shipments_of(order_ids):
            shipment_id = int(listed["entity_id"])
            detail = self._known.get(shipment_id)
            if detail is None:
                detail = listed if listed.get("extension_attributes") else await ctx.magento.get_shipment(shipment_id)
                self._known[shipment_id] = detail
                while len(self._known) > SHIPMENT_CACHE_MAX:
                    self._known.popitem(last=False)
            by_order[int(listed["order_id"])].append(detail)
        return by_order


def shared_details(ctx: HandlerContext) -> ShipmentDetails:
    """The worker's cache, shared by every job that reads shipments."""
    details: ShipmentDetails = ctx.services.caches.setdefault(_SHARED, ShipmentDetails())
    return details


async def of_order(ctx: HandlerContext, order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The order's shipments with their sources; none read for an order nothing of which was shipped."""
    if not has_shipped(order):
        return []
    order_id = int(order["entity_id"])
    return (await shared_details(ctx).of_orders(ctx, [order_id])).get(order_id, [])
