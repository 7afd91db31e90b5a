"""`POST /admin/resync/orders` (admin job `resync-orders`): re-check given orders and/or every complete order
since a time, and feed the ones not imported yet, dead-lettered ones included, like the poll does."""

from __future__ import annotations

from typing import Any

from workers.clients.magento_time import magento_time, parse_time
from workers.clients.search_criteria import SearchCriteria
from workers.errors import PermanentError
from workers.registry import HandlerContext, Progress
from workers.sync.orders.feeding import Tally, feed_missing
from workers.sync.orders.search import completed_orders, linked_store_ids

_LOOKUP_BATCH = 100


async def _by_ids(ctx: HandlerContext, order_ids: list[int]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), _LOOKUP_BATCH):
        batch = order_ids[start : start + _LOOKUP_BATCH]
        criteria = SearchCriteria(page_size=len(batch)).where("entity_id", list(batch), "in")
        found.extend((await ctx.magento.list_orders(criteria)).items)
    return found


async def _wanted(
    ctx: HandlerContext, order_ids: list[int], ours: frozenset[int], skipped: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The given orders that are to be fed; the others go to `skipped` with why."""
    orders = {int(o["entity_id"]): o for o in await _by_ids(ctx, order_ids)}
    wanted = []
    for order_id in dict.fromkeys(order_ids):
        order = orders.get(order_id)
        if order is None:
            skipped["not_found"].append(str(order_id))
        elif order.get("state") != "complete":
            skipped["not_complete"].append(f"{order['increment_id']} ({order.get('state')})")
        elif order.get("store_id") is not None and int(order["store_id"]) not in ours:
            skipped["other_website"].append(str(order["increment_id"]))
        else:
            wanted.append(order)
    return wanted


async def resync_orders(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """`order_ids` (Magento entity ids) and/or `since`: feed every one of those orders that is complete, of the
    linked website and not imported yet."""
    order_ids = [int(i) for i in params.get("order_ids") or []]
    since = params.get("since")
    if not order_ids and not since:
        raise PermanentError("give order_ids and/or since: a resync of every order ever would book years of sales")
    ours = await linked_store_ids(ctx.magento, ctx.settings.magento_website_id)
    tally = Tally()
    skipped: dict[str, list[str]] = {"not_found": [], "not_complete": [], "other_website": []}

    def origin(order: dict[str, Any]) -> str:
        return f"resync:{ctx.job_id}:{order['entity_id']}"

    seen: set[int] = set()
    if order_ids:
        await feed_missing(ctx, await _wanted(ctx, order_ids, ours, skipped), origin, tally, retry_failed=True)
        seen.update(order_ids)
        await progress(len(seen), None)
    if since:
        start = magento_time(parse_time(str(since)))
        async for page in completed_orders(ctx.magento, since=start, store_ids=ours):
            fresh = [o for o in page if int(o["entity_id"]) not in seen]
            seen.update(int(o["entity_id"]) for o in fresh)
            await feed_missing(ctx, fresh, origin, tally, retry_failed=True)
            await progress(len(seen), None)
    await progress(len(seen), len(seen))
    return {**tally.counts, **{k: v[:100] for k, v in skipped.items()}}
