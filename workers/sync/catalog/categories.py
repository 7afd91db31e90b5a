"""Categories: the Cloud Retailer department/category tree becomes the Magento tree under the linked store's
root category (parents first); a category created in Magento is created in Cloud Retailer
(categories_from_magento.py); updates flow only from Cloud Retailer.

A category Cloud Retailer hangs under another parent is moved in Magento (PUT /V1/categories/{id} ignores
parent_id; only the move endpoint changes it), so the tree's shape follows Cloud Retailer too.

Bindings (workers/binder.py, kind "category") link the two ids. They can be rebuilt from the natural key,
the path of names: before creating anything on either side, the importer looks for a category with the same
name under the same parent there and links it. That is also what makes the Magento callback for a category
the gateway itself just created change nothing, even when it runs before the binding was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from crmcore import keys
from workers.binder import Binder
from workers.clients.cloudretailer_models import Category
from workers.clients.errors import NotFound
from workers.clients.search_criteria import SearchCriteria
from workers.errors import PermanentError, Skip, TransientError
from workers.lease import Lease
from workers.registry import HandlerContext
from workers.sync.catalog import category_mapper
from workers.sync.catalog.fingerprints import Fingerprints
from workers.sync.catalog.magento_meta import meta

KIND = "category"
MAX_DEPTH = 8
LOCK_LEASE_MS = 10_000
LOCK_RENEW_S = 3.0
LOCK_WAIT_S = 30.0
LOCK_POLL_S = 0.05


def update_payload(category: Category) -> dict[str, Any]:
    # Updates never touch the url_key (an admin may have set one for SEO); the parent goes through the move.
    return {"name": category.name, "is_active": category.active, "include_in_menu": True}


def synced_state(category: Category, parent_magento_id: int) -> dict[str, Any]:
    """What no-op detection compares: the fields written and the Magento parent, so a move is never "unchanged"."""
    return {**update_payload(category), "parent_id": parent_magento_id}


async def magento_category_linked(redis: Redis, magento_id: int) -> bool:
    """Whether a Magento category is linked to a Cloud Retailer one already (made from it, or linked before)."""
    return await Binder(redis).cr_id(KIND, magento_id) is not None


async def cr_category(ctx: HandlerContext, cr_id: str) -> Category:
    return await ctx.cr.get_category(cr_id)


@contextlib.asynccontextmanager
async def locked(ctx: HandlerContext, key: str) -> AsyncIterator[None]:
    """A Redis lease per record: two products needing the same new category must not both create it. Short and
    renewed while held, so a worker killed mid-creation blocks the others for seconds, not a minute."""
    lease = Lease(ctx.redis, key, secrets.token_hex(8), LOCK_LEASE_MS)
    deadline = time.monotonic() + LOCK_WAIT_S
    while not await lease.take():
        if time.monotonic() >= deadline:
            raise TransientError("another worker is creating this category; try again")
        await asyncio.sleep(LOCK_POLL_S)
    # If the lease is lost anyway (Redis restarted), the binding written is still the one truth: a second
    # creator finds the category by its natural key (name under parent) before creating one.
    async with lease.kept(LOCK_RENEW_S):
        yield


async def magento_id_for(ctx: HandlerContext, cr_id: str, depth: int = 0) -> int:
    """The Magento id of Cloud Retailer category `cr_id`, creating it (parents first) when missing."""
    binder = Binder(ctx.redis)
    if (bound := await binder.magento_id(KIND, cr_id)) is not None:
        return int(bound)
    if depth > MAX_DEPTH:
        raise PermanentError(f"category {cr_id} is nested more than {MAX_DEPTH} deep (a parent loop?)")
    async with locked(ctx, keys.category_lock(f"cr:{cr_id}")):
        if (bound := await binder.magento_id(KIND, cr_id)) is not None:
            return int(bound)
        try:
            category = await cr_category(ctx, cr_id)
        except NotFound:
            raise PermanentError(f"category {cr_id} does not exist in Cloud Retailer") from None
        return await _link_or_create_in_magento(ctx, category, depth)


async def _parent_in_magento(ctx: HandlerContext, category: Category, depth: int) -> int:
    if category.parent_id is None:
        return (await meta(ctx)).root_category_id
    return await magento_id_for(ctx, category.parent_id, depth + 1)


async def _link_or_create_in_magento(ctx: HandlerContext, category: Category, depth: int) -> int:
    parent_id = await _parent_in_magento(ctx, category, depth)
    existing = await _magento_child_named(ctx, parent_id, category.name)
    if existing is not None:
        magento_id = existing
    else:
        created = await ctx.magento.create_category(category_mapper.magento_category(category, parent_id))
        magento_id = int(created["id"])
    await Binder(ctx.redis).bind(KIND, category.id, magento_id)
    await Fingerprints(ctx.redis, KIND).remember(category.id, synced_state(category, parent_id))
    if existing is not None:
        # Linked by name: make it carry Cloud Retailer's values now.
        await ctx.magento.update_category(magento_id, update_payload(category))
    return magento_id


async def _magento_child_named(ctx: HandlerContext, parent_id: int, name: str) -> int | None:
    criteria = SearchCriteria(page_size=100).where("parent_id", parent_id)
    async for category in ctx.magento.iter_categories(criteria):
        if (category.name or "").strip().casefold() == name.strip().casefold():
            return category.id
    return None


async def sync_from_cr(ctx: HandlerContext, cr_id: str, depth: int = 0) -> str:
    """category.created / category.updated from Cloud Retailer. Returns what was done (for logs/tests)."""
    # Cloud Retailer confirms the id before anything is read or written under it: an unknown one is skipped
    # rather than dead-lettered (a replay could only meet the same 404).
    try:
        category = await cr_category(ctx, cr_id)
    except NotFound:
        raise Skip(f"category {cr_id} does not exist in Cloud Retailer; nothing to sync") from None
    cr_id = category.id
    binder = Binder(ctx.redis)
    bound = await binder.magento_id(KIND, cr_id)
    if bound is None:
        await magento_id_for(ctx, cr_id)
        return "created"
    # Created on demand when Cloud Retailer moved it under a category Magento does not have yet.
    parent_id = await _parent_in_magento(ctx, category, depth)
    synced = synced_state(category, parent_id)
    fingerprints = Fingerprints(ctx.redis, KIND)
    if await fingerprints.unchanged(cr_id, synced):
        return "unchanged"
    try:
        current = await ctx.magento.get_category(int(bound))
    except NotFound:
        # Deleted by hand in Magento: create it again under its parent.
        await binder.unbind(KIND, cr_id)
        await magento_id_for(ctx, cr_id)
        return "recreated"
    # Moved first: the move is the call Magento may refuse (under a descendant, a url_key taken under the new
    # parent), and a refusal then leaves the category as it was rather than renamed but still misplaced.
    moved = await _place(ctx, category, current, parent_id, depth)
    await ctx.magento.update_category(int(bound), update_payload(category))
    await fingerprints.remember(cr_id, synced)
    return "moved" if moved else "updated"


async def _place(ctx: HandlerContext, category: Category, current: dict[str, Any], parent_id: int, depth: int) -> bool:
    """Moves Magento category `current` under `parent_id` when it hangs elsewhere; whether it moved."""
    magento_id = int(current["id"])
    if int(current.get("parent_id") or 0) == parent_id:
        return False
    if category.parent_id is not None and await _is_below(ctx, parent_id, magento_id):
        # Cloud Retailer swapped the two (B under A became A under B) and the new parent's own move has not
        # reached Magento yet: Magento refuses a move under a descendant, so the parent is placed first.
        if depth >= MAX_DEPTH:
            raise PermanentError(f"category {category.id} is nested more than {MAX_DEPTH} deep (a parent loop?)")
        await sync_from_cr(ctx, category.parent_id, depth + 1)
    # No afterId: last among its new siblings, where Magento puts a new category too.
    await ctx.magento.move_category(magento_id, parent_id)
    return True


async def _is_below(ctx: HandlerContext, magento_id: int, ancestor_id: int) -> bool:
    path = str((await ctx.magento.get_category(magento_id)).get("path") or "")
    return str(ancestor_id) in path.split("/")[:-1]
