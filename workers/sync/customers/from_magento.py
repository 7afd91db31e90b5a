"""Magento -> Cloud Retailer: a new Magento account becomes (or is linked to) a Cloud Retailer customer, and an
order's buyer Cloud Retailer does not know yet is made from the order's names. Magento edits are never sent.
"""

from __future__ import annotations

import structlog

from crmcore import keys, timeline
from crmcore.events import MagentoCustomerEvent, Source
from workers.binder import Binder
from workers.clients.errors import NotFound
from workers.errors import Skip
from workers.registry import HandlerContext
from workers.sync.customers.links import KIND, link
from workers.sync.customers.mapper import buyer, check_email, to_cloudretailer

log = structlog.get_logger(__name__)


async def sync_from_magento(ctx: HandlerContext, magento_id: int) -> str:
    """Create (or link) the Cloud Retailer customer of a new Magento account; Magento edits are never sent."""
    bound = await Binder(ctx.redis).cr_id(KIND, magento_id)
    if bound is not None:
        # The callback of an account the gateway made from Cloud Retailer (or a repeat): nothing to do.
        raise Skip(f"Magento customer {magento_id} is linked to Cloud Retailer customer {bound} already")
    try:
        account = await ctx.magento.get_customer(magento_id)
    except NotFound:
        raise Skip(f"Magento customer {magento_id} no longer exists") from None
    website = ctx.settings.magento_website_id
    if account.website_id != website:
        raise Skip(f"Magento customer {magento_id} is of website {account.website_id}, not the linked {website}")
    check_email(account.email, f"Magento customer {magento_id}")
    await timeline.remember(
        ctx.redis,
        account.email,
        keys.entity_name(Source.MAGENTO, MagentoCustomerEvent.KIND, [str(magento_id)]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    existing = await ctx.cr.find_customer(account.email)
    if existing is not None:
        # Its match by email: the account the gateway itself made from it (the callback raced the binding),
        # or one made on both sides at once. Linked, and Cloud Retailer is left as it is.
        await link(ctx, existing.id, magento_id)
        log.info("customer_linked", cr_id=existing.id, magento_id=magento_id)
        return "linked"
    customer, created = await ctx.cr.create_customer(to_cloudretailer(account))
    await link(ctx, customer.id, magento_id)
    log.info("customer_created_in_cloudretailer", cr_id=customer.id, magento_id=magento_id, created=created)
    return "created" if created else "linked"


async def ensure_in_cloudretailer(ctx: HandlerContext, email: str, first_name: str, last_name: str) -> str:
    """The id of the Cloud Retailer customer with this email, created from these names when there is none (an
    order's buyer whose account callback is not handled yet, or was lost). Safe to race: Cloud Retailer's email
    is unique and its 409 hands back the customer that won."""
    found = await ctx.cr.find_customer(email)
    if found is not None:
        return found.id
    customer, _created = await ctx.cr.create_customer(buyer(email, first_name, last_name))
    return customer.id
