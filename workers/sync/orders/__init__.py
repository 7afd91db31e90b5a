"""Orders: each completed Magento order becomes exactly one executed Cloud Retailer sale.

- `order.completed` callback -> importer.on_order_completed (fetch, check complete, match the customer, map,
  record the sale once);
- a cron polls Magento for complete orders the callbacks missed (poll.py, report "order-poll");
- admin job `resync-orders` (`POST /admin/resync/orders`) re-checks given orders or a time range.
Modules: mapper (order -> sale, pure), customer (buyer by email), markers (what was imported), search (finding
complete orders in Magento), importer (the handler), poll (cron and admin job).
"""

from __future__ import annotations

from crmcore.events import Source
from crmcore.settings import ConfigError, Settings, load_settings
from workers.registry import Registry
from workers.sync.orders.importer import on_order_completed
from workers.sync.orders.poll import poll_cron_job, resync


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.MAGENTO, "order.completed", on_order_completed)
    registry.register_job("resync-orders", resync)
    registry.register_cron(poll_cron_job(settings or _settings()))


def _settings() -> Settings:
    """The schedule is fixed when the worker starts; a registry built without settings reads them here."""
    try:
        return load_settings()
    except ConfigError:
        return Settings.model_construct()  # the defaults; the worker itself refuses bad settings later
