"""Orders: each completed Magento order becomes one executed Cloud Retailer sale per location that shipped it.

- `order.completed` callback -> importer.on_order_completed (fetch, check complete, match the customer, map,
  record one sale per shipping location, each once);
- a periodic job polls Magento for complete orders the callbacks missed (poll.py, report "order-poll");
- admin job `resync-orders` (`POST /admin/resync/orders`) re-checks given orders or a time range (resync.py).
- the ledger of held units: what Magento took out of its own stock count for orders that are not sales yet,
  which the stock sync subtracts from Cloud Retailer's on-hand (held.py, ledger.py, refresh.py).
Modules: mapper (order -> sale, pure), split (that sale -> one per shipping location, pure), shipments
(reading shipments with their sources), customer (the buyer, through the customers domain), markers (what was
imported), search (finding complete orders in Magento), importer (the handler), feeding (queueing the orders
not imported yet), poll (the periodic job), resync (the admin job), held (what one order holds, pure), ledger
(the held units in Redis), refresh (keeping the ledger in step with Magento).
"""

from __future__ import annotations

from crmcore.events import MagentoEventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import HandlerContext, Registry
from workers.sync.orders.held import LEGACY, Place, msi_place
from workers.sync.orders.importer import on_order_completed
from workers.sync.orders.ledger import Ledger
from workers.sync.orders.poll import POLL
from workers.sync.orders.refresh import refresh_held
from workers.sync.orders.resync import resync_orders

__all__ = ["LEGACY", "Place", "all_held_units", "held_units", "msi_place", "refresh_held", "register"]


async def held_units(ctx: HandlerContext, place: Place, skus: list[str]) -> dict[str, float]:
    """sku -> units Magento took out at `place` for orders that are not Cloud Retailer sales yet. Read it
    before Cloud Retailer's on-hand: an order's units are released only after its sale is recorded, so
    reading in that order can count a unit twice (sell less) but never not at all."""
    return await Ledger(ctx.redis).held(place, skus)


async def all_held_units(ctx: HandlerContext, place: Place) -> dict[str, float]:
    return await Ledger(ctx.redis).all_held(place)


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.MAGENTO, MagentoEventType.ORDER_COMPLETED, on_order_completed)
    registry.register_job(AdminJobKind.RESYNC_ORDERS, resync_orders)
    registry.register_periodic(POLL)
