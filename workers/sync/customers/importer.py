"""Customers both ways for creation, Cloud Retailer -> Magento for updates (docs/design.md, Sync rules).

Email is the natural key (unique per website in Magento, unique in Cloud Retailer), so every path that finds
no binding looks the other side up by email before creating: a callback that races the binding of an account
the gateway just made, a create on both sides at once, a resend after a lost answer all end on one account
per side, linked. The binding (workers/binder.py) is a shortcut that can be rebuilt from the emails.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from crmcore import keys
from workers.binder import Binder
from workers.clients import cloudretailer_models as cr_models
from workers.clients.errors import NotFound, PermanentApiError
from workers.clients.magento_models import Customer
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.customers import directory
from workers.sync.customers.addresses import merge
from workers.sync.customers.mapper import buyer, check_email, to_cloudretailer, to_magento

log = structlog.get_logger(__name__)

KIND = "customer"
# Magento account id -> ids of the addresses Cloud Retailer owns on it (see addresses.py).
MANAGED_ADDRESSES = keys.MANAGED_ADDRESSES
# Left out of a save: read-only, derived from the address flags, or not ours (a subscription flag sent back
# could undo a subscription made since the read).
NOT_SENT = frozenset(
    {"addresses", "default_billing", "default_shipping", "extension_attributes", "created_at", "updated_at"}
)


async def magento_account_linked(redis: Redis, magento_id: int) -> bool:
    """Whether a Magento account is linked to a Cloud Retailer customer already (made from one, or linked)."""
    return await Binder(redis).cr_id(KIND, magento_id) is not None


async def link(ctx: HandlerContext, cr_id: str, magento_id: int) -> None:
    binder = Binder(ctx.redis)
    clash = await binder.bind_new(KIND, cr_id, magento_id)
    if clash is None or clash in (("cr", str(magento_id)), ("mg", cr_id)):
        return  # bound now, or by the other direction's job a moment ago
    # A binding the emails contradict (an account deleted and made again, an email moved): the email match
    # just made is the truth, the binding only a cache of it.
    log.warning("customer_rebound", cr_id=cr_id, magento_id=magento_id, was=clash)
    await binder.bind(KIND, cr_id, magento_id)


async def _managed(ctx: HandlerContext, magento_id: int) -> set[int]:
    raw = await ctx.redis.hget(MANAGED_ADDRESSES, str(magento_id))
    return set(orjson.loads(raw)) if raw else set()


async def _remember(ctx: HandlerContext, magento_id: int, ids: set[int]) -> None:
    await ctx.redis.hset(MANAGED_ADDRESSES, str(magento_id), orjson.dumps(sorted(ids)))


# --- Cloud Retailer -> Magento -----------------------------------------------------------------------------


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
    customer = await ctx.cr.get_customer(cr_id)
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


# --- Magento -> Cloud Retailer -----------------------------------------------------------------------------


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
