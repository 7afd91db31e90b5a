"""Cloud Retailer -> Magento: a customer's account is created, linked or updated (docs/design.md, Sync rules);
the other direction is from_magento.py.

A customer with no binding is looked up by email before an account is made (links.py): a callback that races
the binding of an account the gateway just made, a create on both sides at once, a resend after a lost answer
all end on one account per side, linked.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from crmcore import keys, timeline
from crmcore.events import CustomerEvent, Source
from workers.binder import Binder
from workers.clients import cloudretailer_models as cr_models
from workers.clients.errors import NotFound, PermanentApiError
from workers.clients.magento_models import Customer
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.customers import directory
from workers.sync.customers.addresses import merge
from workers.sync.customers.links import KIND, link
from workers.sync.customers.mapper import to_magento

log = structlog.get_logger(__name__)

# Magento account id -> ids of the addresses Cloud Retailer owns on it (see addresses.py).
MANAGED_ADDRESSES = keys.MANAGED_ADDRESSES
# Left out of a save: read-only, derived from the address flags, or not ours (a subscription flag sent back
# could undo a subscription made since the read).
NOT_SENT = frozenset(
    {"addresses", "default_billing", "default_shipping", "extension_attributes", "created_at", "updated_at"}
)


async def _managed(ctx: HandlerContext, magento_id: int) -> set[int]:
    raw = await ctx.redis.hget(MANAGED_ADDRESSES, str(magento_id))
    return set(orjson.loads(raw)) if raw else set()


async def _remember(ctx: HandlerContext, magento_id: int, ids: set[int]) -> None:
    await ctx.redis.hset(MANAGED_ADDRESSES, str(magento_id), orjson.dumps(sorted(ids)))


async def _wanted(ctx: HandlerContext, customer: cr_models.Customer) -> dict[str, Any]:
    countries = {a.country for a in customer.addresses}
    known = await directory.load(ctx)
    if any(known.country(c) is None for c in countries):
        known = await directory.load(ctx, unknown=countries)
    return to_magento(customer, known)


async def _create(ctx: HandlerContext, cr_id: str, wanted: dict[str, Any]) -> tuple[Customer, bool]:
    """(account, created). No password is sent: the customer sets one through Magento's reset link."""
    body = {**wanted, "website_id": ctx.settings.magento_website_id, "group_id": ctx.settings.magento_customer_group_id}
    try:
        return await ctx.magento.create_customer(body), True
    except PermanentApiError as exc:
        if exc.status != 400:
            raise
        # Most likely the email exists by now (a create on the Magento side, or our own earlier try).
        existing = await ctx.magento.find_customer(wanted["email"])
        if existing is None:
            reason = f"Cloud Retailer customer {cr_id}: Magento refused the account: {exc.message}"
            raise PermanentError(reason) from exc
        return existing, False


async def _bound_account(ctx: HandlerContext, cr_id: str, magento_id: str | None) -> Customer | None:
    if magento_id is None:
        return None
    try:
        return await ctx.magento.get_customer(int(magento_id))
    except NotFound:
        # Deleted in Magento: made again below, as for a customer Magento never had.
        await Binder(ctx.redis).unbind(KIND, cr_id)
        await ctx.redis.hdel(MANAGED_ADDRESSES, magento_id)
        return None


async def _update(ctx: HandlerContext, account: Customer, wanted: dict[str, Any]) -> str:
    assert account.id is not None
    current = account.model_dump(exclude_none=True)
    merged = merge(current.get("addresses", []), await _managed(ctx, account.id), wanted["addresses"])
    identity = ("email", "firstname", "lastname")
    if not merged.changed and all(current.get(f) == wanted[f] for f in identity):
        await _remember(ctx, account.id, {int(a["id"]) for a in merged.addresses} - merged.kept)
        return "unchanged"
    # The whole record read back, changed where Cloud Retailer says: fields a save leaves out may be reset
    # on some Magento versions (magento/magento2#21237).
    body = {k: v for k, v in current.items() if k not in NOT_SENT}
    body.update({f: wanted[f] for f in identity})
    body["website_id"] = account.website_id if account.website_id is not None else ctx.settings.magento_website_id
    body["addresses"] = merged.addresses
    saved = await ctx.magento.update_customer(account.id, body)
    await _remember(ctx, account.id, {a.id for a in saved.addresses if a.id is not None} - merged.kept)
    return "updated"


async def sync_from_cr(ctx: HandlerContext, cr_id: str, *, created_only: bool = False) -> str:
    """Create or update the Magento account of a Cloud Retailer customer. Returns what was done."""
    binder = Binder(ctx.redis)
    bound = await binder.magento_id(KIND, cr_id)
    if bound is not None and created_only:
        # Its creation is already linked: the gateway made this customer from a Magento account, or the
        # Magento side's job linked the two first. Either way both accounts exist; later updates flow.
        raise Skip(f"Cloud Retailer customer {cr_id} is linked to Magento customer {bound} already")
    try:
        customer = await ctx.cr.get_customer(cr_id)
    except NotFound:
        raise Skip(f"Cloud Retailer has no customer {cr_id}; nothing to sync") from None
    # From here on Cloud Retailer's own id keys every binding and write, never the event's spelling of it.
    cr_id = customer.id
    await timeline.remember(
        ctx.redis,
        customer.email,
        keys.entity_name(Source.CLOUDRETAILER, CustomerEvent.KIND, [cr_id]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    wanted = await _wanted(ctx, customer)
    account = await _bound_account(ctx, cr_id, bound)
    if account is None:
        account = await ctx.magento.find_customer(customer.email)
        if account is None:
            account, created = await _create(ctx, cr_id, wanted)
            assert account.id is not None
            await link(ctx, cr_id, account.id)
            if created:
                await _remember(ctx, account.id, {a.id for a in account.addresses if a.id is not None})
                log.info("customer_created_in_magento", cr_id=cr_id, magento_id=account.id)
                return "created"
        else:
            assert account.id is not None
            await link(ctx, cr_id, account.id)
    outcome = await _update(ctx, account, wanted)
    log.info("customer_synced_to_magento", cr_id=cr_id, magento_id=account.id, outcome=outcome)
    return outcome
