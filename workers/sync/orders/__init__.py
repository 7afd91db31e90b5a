"""Orders: each completed Magento order becomes exactly one executed Cloud Retailer sale.

- `order.completed` callback -> importer.on_order_completed (fetch, check complete, match the customer, map,
  record the sale once);
- a periodic job polls Magento for complete orders the callbacks missed (poll.py, report "order-poll");
- admin job `resync-orders` (`POST /admin/resync/orders`) re-checks given orders or a time range.
Modules: mapper (order -> sale, pure), customer (buyer by email), markers (what was imported), search (finding
complete orders in Magento), importer (the handler), poll (the periodic job and the admin job).
"""

from __future__ import annotations

from crmcore.events import MagentoEventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync.orders.importer import on_order_completed
from workers.sync.orders.poll import POLL, resync


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.MAGENTO, MagentoEventType.ORDER_COMPLETED, on_order_completed)
    registry.register_job(AdminJobKind.RESYNC_ORDERS, resync)
    registry.register_periodic(POLL)
