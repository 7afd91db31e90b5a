"""Customers sync: accounts created on either side are created on the other, matched by email;
updates flow only from Cloud Retailer. Passwords, payment data and purchase history never move.

    emails      whether an address can be an account's key on both sides (pure)
    directory   Magento's countries and region ids, cached per worker
    mapper      a customer of one side as the other side's payload (pure)
    addresses   the address list a Cloud Retailer update saves on a Magento account (pure)
    importer    both directions: bindings, email matching, create/link/update
    resync      admin job resync-customers
"""

from __future__ import annotations

from crmcore.events import AcceptedEvent, Source
from crmcore.settings import Settings
from workers.registry import HandlerContext, Registry
from workers.sync.customers import importer, resync


async def on_cr_customer(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    # Change signals: the customer's current state in Cloud Retailer decides.
    created_only = all(e.type == "customer.created" for e in events)
    await importer.sync_from_cr(ctx, str(events[-1].data["customer_id"]), created_only=created_only)


async def on_magento_customer(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await importer.sync_from_magento(ctx, int(events[-1].data["customer_id"]))


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.CLOUDRETAILER, "customer.created", on_cr_customer)
    registry.register(Source.CLOUDRETAILER, "customer.updated", on_cr_customer)
    registry.register(Source.MAGENTO, "customer.created", on_magento_customer)
    registry.register_job("resync-customers", resync.resync_customers)
