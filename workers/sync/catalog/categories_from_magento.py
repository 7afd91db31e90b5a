"""category.created from Magento: the category is created (or linked) in Cloud Retailer under its parent's
counterpart, parents first. Magento edits never go back; a category outside the linked root is not synced.
"""

from __future__ import annotations

from typing import Any

from crmcore import keys
from workers.binder import Binder
from workers.clients.errors import Conflict, NotFound
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.catalog import category_mapper
from workers.sync.catalog.categories import KIND, MAX_DEPTH, cr_category, locked, synced_state
from workers.sync.catalog.fingerprints import Fingerprints
from workers.sync.catalog.magento_meta import meta


async def sync_from_magento(ctx: HandlerContext, magento_id: int, depth: int = 0) -> str:
    """category.created from Magento: create (or link) it in Cloud Retailer. Never updates Cloud Retailer."""
    binder = Binder(ctx.redis)
    if await binder.cr_id(KIND, magento_id) is not None:
        return "already linked"
    if depth > MAX_DEPTH:
        raise PermanentError(f"Magento category {magento_id} is nested more than {MAX_DEPTH} deep")
    category, root = await _magento_category_under_root(ctx, magento_id)
    parent_mg = int(category.get("parent_id") or 0)
    async with locked(ctx, keys.category_lock(f"mg:{magento_id}")):
        if await binder.cr_id(KIND, magento_id) is not None:
            return "already linked"
        parent_cr = None if parent_mg == root else await _cr_parent(ctx, parent_mg, depth)
        cr_id = await _cr_child_named(ctx, parent_cr, str(category["name"]))
        outcome = "linked"
        if cr_id is None:
            cr_id, outcome = await _create_in_cr(ctx, category, parent_cr)
        conflict = await binder.bind_new(KIND, cr_id, magento_id)
        if conflict is not None:
            return "already linked"
        created_cr = await cr_category(ctx, cr_id)
        # Cloud Retailer's echo (its category.created webhook) must not write Magento again.
        await Fingerprints(ctx.redis, KIND).remember(cr_id, synced_state(created_cr, parent_mg))
        return outcome


async def _magento_category_under_root(ctx: HandlerContext, magento_id: int) -> tuple[dict[str, Any], int]:
    """The Magento category and the linked root, or Skip when it is gone or not in the synced tree."""
    try:
        category = await ctx.magento.get_category(magento_id)
    except NotFound:
        raise Skip(f"Magento category {magento_id} no longer exists") from None
    root = (await meta(ctx)).root_category_id
    parent_mg = int(category.get("parent_id") or 0)
    if magento_id == root or category.get("level", 2) < 2:
        raise Skip("a root category is not synced")
    if parent_mg != root and not await _under_root(ctx, category, root):
        raise Skip(f"category {magento_id} is not under the linked store's root category {root}")
    return category, root


async def _cr_parent(ctx: HandlerContext, parent_mg: int, depth: int) -> str | None:
    """The Cloud Retailer id of a Magento parent category, creating it there first when it is not linked."""
    binder = Binder(ctx.redis)
    parent_cr = await binder.cr_id(KIND, parent_mg)
    if parent_cr is None:
        await sync_from_magento(ctx, parent_mg, depth + 1)
        parent_cr = await binder.cr_id(KIND, parent_mg)
    return parent_cr


async def _create_in_cr(ctx: HandlerContext, category: dict[str, Any], parent_cr: str | None) -> tuple[str, str]:
    """(Cloud Retailer id, "created"), or "linked" when an earlier try of ours created it already."""
    try:
        return (await ctx.cr.create_category(category_mapper.cr_category(category, parent_cr))).id, "created"
    except Conflict as exc:
        # A retry after a crash between "created" and "bound": the code names this Magento category.
        cr_id = str((exc.body or {}).get("existing", {}).get("id") or "")
        if not cr_id:
            raise
        return cr_id, "linked"


async def _under_root(ctx: HandlerContext, category: dict[str, Any], root: int) -> bool:
    path = str(category.get("path") or "")
    return str(root) in path.split("/") if path else True


async def _cr_child_named(ctx: HandlerContext, parent_cr: str | None, name: str) -> str | None:
    wanted = name.strip().casefold()
    for category in await ctx.cr.categories():
        if category.parent_id == parent_cr and category.name.strip().casefold() == wanted:
            return category.id
    return None
