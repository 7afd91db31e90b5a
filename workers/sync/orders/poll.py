"""The completed-order poll (the fallback for lost callbacks) and the `resync-orders` admin job.

Neither imports anything itself: each feeds the orders not yet imported into the entity queue as
`order.completed` changes, so they go through the same handler as the callback and are coalesced with one
racing for the same order. An order is "handled" once it is durably queued there (or already imported); the
queue retries it, and an order that fails for good is a dead letter an operator replays.

The poll's cursor (`keys.ORDER_POLL_CURSOR`, Magento time, UTC) is the newest `updated_at` handled; each run
looks again from `cursor - CRMAGENTO_ORDER_POLL_OVERLAP_SECONDS`, because Magento's timestamps have whole
seconds (another order saved later in the same second as the cursor) and a save's timestamp is taken before
its transaction commits. The first run starts one interval back: older orders are not booked as sales unless
an admin asks for them (`POST /admin/resync/orders {"since": ...}`).

The poll is a periodic job (workers/periodic/): every CRMAGENTO_ORDER_POLL_INTERVAL_MINUTES, one run at a
time under its lease, its report "order-poll" in GET /admin/status. A run needs both remotes (Magento to read,
Cloud Retailer to record the sales it feeds). With either one down (workers/availability/) it is skipped: its
report says `skipped` and why, and the cursor stays where it was, so the first run after the outage reads
every order completed during it. A run that meets `RemoteUnavailable` part way ends `skipped` too, its
cursor at the last page it handled. A first run that is skipped pins the cursor where it would have started,
so the window before the outage is not lost either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from crmcore import keys
from crmcore.events import MagentoEventType, MagentoOrderEvent, Source
from workers.clients.errors import RemoteUnavailable
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.search_criteria import SearchCriteria
from workers.errors import PermanentError
from workers.feed import feed
from workers.periodic import Periodic, Run, run_once
from workers.registry import HandlerContext, Progress
from workers.sync.orders import markers
from workers.sync.orders.search import completed_orders, earlier, linked_store_ids

log = structlog.get_logger(__name__)

CURSOR_KEY = keys.ORDER_POLL_CURSOR
LOCK_KEY = keys.ORDER_POLL_LOCK
REPORT = "order-poll"
EVENT = MagentoEventType.ORDER_COMPLETED
PAGE_SIZE = 100
_LOOKUP_BATCH = 100


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _queue(ctx: HandlerContext, origin: str, order: dict[str, Any]) -> bool:
    """Feed one order; False when this very change was fed before (its id is de-duplicated)."""
    change = MagentoOrderEvent(order_id=int(order["entity_id"]), increment_id=str(order["increment_id"]))
    return await feed(ctx.redis, ctx.settings, origin, [(Source.MAGENTO, EVENT, change)]) == 1


class Tally:
    def __init__(self) -> None:
        self.counts = {"checked": 0, "queued": 0, "already_queued": 0, "already_imported": 0, "in_dead_letters": 0}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


async def _feed_missing(
    ctx: HandlerContext, orders: list[dict[str, Any]], origin_of: Any, tally: Tally, *, retry_failed: bool
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


# --- the poll ------------------------------------------------------------------------------------------------


def _version(order: dict[str, Any]) -> str:
    return parse_time(str(order["updated_at"])).strftime("%Y%m%dT%H%M%SZ")


def _origin(order: dict[str, Any]) -> str:
    """The id names the order and its version: the next run's overlap feeds the same change again, and that
    is a duplicate, not a second event (nor a second dead letter)."""
    return f"order-poll:{order['entity_id']}:{_version(order)}"


async def _poll(run: Run) -> str:
    """One run: feed every complete order updated since the cursor (minus the overlap) not yet imported."""
    ctx, settings = run.ctx, run.ctx.settings
    cursor = await _cursor(ctx)
    tally = Tally()
    run.fields.update(since=earlier(cursor, settings.order_poll_overlap_seconds), cursor=cursor, **tally.counts)
    try:
        ours = await linked_store_ids(ctx.magento, settings.magento_website_id)
        pages = completed_orders(
            ctx.magento, since=run.fields["since"], store_ids=ours, page_size=run.params.get("page_size", PAGE_SIZE)
        )
        async for page in pages:
            await _feed_missing(ctx, page, _origin, tally, retry_failed=False)
            newest = max(magento_time(parse_time(str(o["updated_at"]))) for o in page)
            if newest > cursor:
                cursor = newest
                await ctx.redis.set(CURSOR_KEY, cursor)  # per page: a run cut short keeps what it handled
    except RemoteUnavailable:
        await ctx.redis.set(CURSOR_KEY, cursor, nx=True)  # a first run cut short: the next starts from here
        raise
    finally:
        run.fields.update(tally.counts, cursor=cursor)
    log.info("order_poll_done", **tally.counts, cursor=cursor)
    return "ok"


async def _cursor(ctx: HandlerContext) -> str:
    """The cursor, or where a first run starts: one interval back."""
    raw = await ctx.redis.get(CURSOR_KEY)
    if raw is not None:
        return _text(raw)
    return magento_time(datetime.now(UTC) - timedelta(seconds=ctx.settings.order_poll_interval_minutes * 60))


async def _pin_cursor(ctx: HandlerContext) -> dict[str, Any]:
    """A run not started because a remote is down leaves the cursor alone (or, before the first run, pins it
    where that run would have started)."""
    cursor = await _cursor(ctx)
    await ctx.redis.set(CURSOR_KEY, cursor, nx=True)
    return {"cursor": cursor}


POLL = Periodic(
    REPORT,
    interval=lambda settings: settings.order_poll_interval_minutes * 60,
    run=_poll,
    on_skip=_pin_cursor,
)


async def poll(ctx: HandlerContext, *, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One poll now, named ctx.job_id, as the schedule runs it; returns its report."""
    return await run_once(POLL, ctx, params={"page_size": page_size})


# --- the admin job -------------------------------------------------------------------------------------------


async def _by_ids(ctx: HandlerContext, order_ids: list[int]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), _LOOKUP_BATCH):
        batch = order_ids[start : start + _LOOKUP_BATCH]
        criteria = SearchCriteria(page_size=len(batch)).where("entity_id", list(batch), "in")
        found.extend((await ctx.magento.list_orders(criteria)).items)
    return found


async def resync(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """`POST /admin/resync/orders` with `order_ids` (Magento entity ids) and/or `since`: feed every one of those
    orders that is complete, of the linked website and not imported yet, its dead-lettered ones included."""
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
            seen.add(order_id)
        await _feed_missing(ctx, wanted, origin, tally, retry_failed=True)
        await progress(len(seen), None)
    if since:
        start = magento_time(parse_time(str(since)))
        async for page in completed_orders(ctx.magento, since=start, store_ids=ours):
            fresh = [o for o in page if int(o["entity_id"]) not in seen]
            seen.update(int(o["entity_id"]) for o in fresh)
            await _feed_missing(ctx, fresh, origin, tally, retry_failed=True)
            await progress(len(seen), None)
    await progress(len(seen), len(seen))
    return {**tally.counts, **{k: v[:100] for k, v in skipped.items()}}
