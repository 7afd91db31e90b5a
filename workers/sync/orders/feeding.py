"""What the poll and the resync share: feeding the orders not yet imported into the entity queue as
`order.completed` changes, and counting what became of each.

An order is "handled" once it is durably queued there (or already imported): the queue retries it, and one
that fails for good is a dead letter an operator replays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmcore.events import MagentoEventType, MagentoOrderEvent, Source
from workers.feed import feed
from workers.registry import HandlerContext
from workers.sync.orders import markers

EVENT = MagentoEventType.ORDER_COMPLETED
# The id prefix one order is fed under; the same order and version fed again is a duplicate.
OriginOf = Callable[[dict[str, Any]], str]


class Tally:
    def __init__(self) -> None:
        self.counts = {"checked": 0, "queued": 0, "already_queued": 0, "already_imported": 0, "in_dead_letters": 0}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


async def _queue(ctx: HandlerContext, origin: str, order: dict[str, Any]) -> bool:
    """Feed one order; False when this very change was fed before (its id is de-duplicated)."""
    change = MagentoOrderEvent(order_id=int(order["entity_id"]), increment_id=str(order["increment_id"]))
    return await feed(ctx.redis, ctx.settings, origin, [(Source.MAGENTO, EVENT, change)]) == 1


async def feed_missing(
    ctx: HandlerContext, orders: list[dict[str, Any]], origin_of: OriginOf, tally: Tally, *, retry_failed: bool
) -> None:
    found = await markers.states(ctx.redis, [str(o["increment_id"]) for o in orders])
    for order in orders:
        tally.add("checked")
        state = found[str(order["increment_id"])]
        if state == markers.IMPORTED:
            tally.add("already_imported")
        elif state == markers.FAILED and not retry_failed:
            tally.add("in_dead_letters")  # its dead letter is the operator's to replay
        elif await _queue(ctx, origin_of(order), order):
            tally.add("queued")
        else:
            tally.add("already_queued")
