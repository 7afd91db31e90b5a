"""Customers sync: accounts created on either side are created on the other, matched by email;
updates flow only from Cloud Retailer. Passwords, payment data and purchase history never move.

    emails        whether an address can be an account's key on both sides (pure)
    directory     Magento's countries and region ids, cached per worker
    mapper        a customer of one side as the other side's payload (pure)
    addresses     the address list a Cloud Retailer update saves on a Magento account (pure)
    links         the binding of the two records, rebuilt from the emails
    importer      Cloud Retailer -> Magento: create, link or update the account
    from_magento  Magento -> Cloud Retailer: a new account, or an order's unknown buyer
    resync        admin job resync-customers

Other domains use only the names in `__all__` (tests/test_layout.py keeps them to this package): orders
make their buyers through it, the catch-up asks which accounts are linked.
"""

from __future__ import annotations

from crmcore.events import AcceptedEvent, CloudRetailerEventType, MagentoEventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import HandlerContext, Registry
from workers.sync.customers import from_magento, importer, resync
from workers.sync.customers.from_magento import ensure_in_cloudretailer
from workers.sync.customers.links import magento_account_linked

__all__ = ["ensure_in_cloudretailer", "magento_account_linked", "register"]


async def on_cr_customer(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    # Change signals: the customer's current state in Cloud Retailer decides.
    created_only = all(e.type == CloudRetailerEventType.CUSTOMER_CREATED for e in events)
    await importer.sync_from_cr(ctx, str(events[-1].data["customer_id"]), created_only=created_only)


async def on_magento_customer(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await from_magento.sync_from_magento(ctx, int(events[-1].data["customer_id"]))


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(Source.CLOUDRETAILER, CloudRetailerEventType.CUSTOMER_CREATED, on_cr_customer)
    registry.register(Source.CLOUDRETAILER, CloudRetailerEventType.CUSTOMER_UPDATED, on_cr_customer)
    registry.register(Source.MAGENTO, MagentoEventType.CUSTOMER_CREATED, on_magento_customer)
    registry.register_job(AdminJobKind.RESYNC_CUSTOMERS, resync.resync_customers)
