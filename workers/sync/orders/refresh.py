"""Keeping the ledger of held units (ledger.py) in step with Magento.

A refresh reads the orders of the linked website changed since its cursor (`keys.HELD_CURSOR`, Magento time)
and, for those with a shipment, their shipments; each order's entry is then replaced with what it holds now
(held.py). Run before every stock write (the stock sync asks for it through `refresh_held`), at the start of
every reconciliation and by the order poll, so the ledger is as fresh as the write that uses it. A refresh
that began a moment ago is shared by the callers that come while it runs (`Refresher`).

Without a cursor (first start, or Redis lost) the ledger is rebuilt: every order still open (new, pending
payment, payment review, processing, on hold) whenever it was placed, and the complete orders of the last
order-poll window (those the poll will import; older complete orders were imported before, or are left to
`resync orders`, see docs/runbook.md).

Each refresh reads again from `cursor - OVERLAP_S`: Magento's timestamps have whole seconds and are taken
before the save commits. It ends by releasing the orders whose sale is recorded but which still hold units
(a worker stopped between the two writes): no unit stays held twice for longer than until the next refresh.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import structlog

from crmcore import keys
from workers.clients.magento import Listing
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.search_criteria import Filter
from workers.registry import HandlerContext
from workers.sync.orders.held import has_shipped, order_units
from workers.sync.orders.ledger import Ledger
from workers.sync.orders.search import earlier, linked_store_ids
from workers.sync.orders.shipments import ShipmentDetails, shared_details

log = structlog.get_logger(__name__)

OVERLAP_S = 10
OPEN_STATES = ["new", "pending_payment", "payment_review", "processing", "holded"]
EPOCH = "1970-01-01 00:00:00"
PAGE_SIZE = 100
# A refresh that began this recently is fresh enough for a caller that arrives while it runs.
FRESH_S = 0.25

# Keeps the cursor moving forward only: two workers refreshing at once never take it back.
ADVANCE_LUA = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


_REFRESHER = "orders:held-refresher"


async def refresh_held(ctx: HandlerContext) -> None:
    """Bring the ledger up to Magento's orders and shipments (shared with a refresh that began a moment ago
    on this worker)."""
    refresher: Refresher = ctx.services.caches.setdefault(_REFRESHER, Refresher())
    await refresher.refresh(ctx)


class Refresher:
    """One refresh at a time per worker; callers arriving while one runs share it."""

    def __init__(self) -> None:
        self._running: asyncio.Task[int] | None = None
        self._started = 0.0

    async def refresh(self, ctx: HandlerContext) -> int:
        task = self._running
        if task is None or (task.done() and time.monotonic() - self._started > FRESH_S):
            self._started = time.monotonic()
            # The worker's one shipment cache: the importer reads the same shipments when it books the sale.
            task = self._running = asyncio.ensure_future(refresh(ctx, shared_details(ctx)))
        # A caller giving up (cancelled) must not cancel the refresh the others wait for.
        return await asyncio.shield(task)


async def refresh(ctx: HandlerContext, shipments: ShipmentDetails) -> int:
    """Apply every order change since the cursor; returns how many orders were looked at."""
    ledger = Ledger(ctx.redis)
    raw = await ctx.redis.get(keys.HELD_CURSOR)
    ours = await linked_store_ids(ctx.magento, ctx.settings.magento_website_id)
    started = magento_time(datetime.now(UTC))
    seen = 0
    if raw is None:
        seen += await _apply(ctx, ledger, shipments, EPOCH, [Filter("state", OPEN_STATES, "in")], ours)
        window = ctx.settings.order_poll_interval_minutes * 60 + ctx.settings.order_poll_overlap_seconds
        since = magento_time(datetime.now(UTC) - timedelta(seconds=window))
        seen += await _apply(ctx, ledger, shipments, since, [Filter("state", "complete")], ours)
        await _advance(ctx, earlier(started, OVERLAP_S))
        log.info("held_ledger_rebuilt", orders=seen)
    else:
        cursor = raw.decode() if isinstance(raw, bytes) else str(raw)
        seen += await _apply(ctx, ledger, shipments, earlier(cursor, OVERLAP_S), [], ours)
    await ledger.sweep()
    return seen


async def _apply(
    ctx: HandlerContext,
    ledger: Ledger,
    shipments: ShipmentDetails,
    since: str,
    where: list[Filter],
    store_ids: frozenset[int],
) -> int:
    seen = 0
    filters = [*where, Filter("store_id", sorted(store_ids), "in")]
    async for page in ctx.magento.iter_keyset(
        Listing.ORDERS, by="updated_at", since=since, where=filters, page_size=PAGE_SIZE
    ):
        shipped = await shipments.of_orders(ctx, [int(o["entity_id"]) for o in page if has_shipped(o)])
        for order in page:
            order_id = int(order["entity_id"])
            await ledger.hold(order_id, str(order["increment_id"]), order_units(order, shipped.get(order_id, [])))
        seen += len(page)
        newest = max(magento_time(parse_time(str(o["updated_at"]))) for o in page)
        await _advance(ctx, newest)
    return seen


async def _advance(ctx: HandlerContext, cursor: str) -> None:
    await ctx.redis.eval(ADVANCE_LUA, 1, keys.HELD_CURSOR, cursor)
