"""Orders: each completed Magento order becomes exactly one executed Cloud Retailer sale.

- `order.completed` callback -> importer.on_order_completed (fetch, check complete, match the customer, map,
  record the sale once);
- a periodic job polls Magento for complete orders the callbacks missed (poll.py, report "order-poll");
- admin job `resync-orders` (`POST /admin/resync/orders`) re-checks given orders or a time range (resync.py).
Modules: mapper (order -> sale, pure), customer (the buyer, through the customers domain), markers (what was
imported), search (finding complete orders in Magento), importer (the handler), feeding (queueing the orders
not imported yet), poll (the periodic job), resync (the admin job).
"""

from __future__ import annotations

from crmcore.events import MagentoEventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync.orders.importer import on_order_completed
from workers.sync.orders.poll import POLL
from workers.sync.orders.resync import resync_orders


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.MAGENTO, MagentoEventType.ORDER_COMPLETED, on_order_completed)
    registry.register_job(AdminJobKind.RESYNC_ORDERS, resync_orders)
    registry.register_periodic(POLL)
