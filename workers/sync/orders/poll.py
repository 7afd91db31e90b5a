"""The completed-order poll: the fallback for lost callbacks.

It imports nothing itself: it feeds the complete orders not yet imported into the entity queue (feeding.py),
so they go through the same handler as the callback and are coalesced with one racing for the same order.

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
from workers.clients.errors import RemoteUnavailable
from workers.clients.magento_time import magento_time, parse_time
from workers.periodic import Periodic, Run, run_once
from workers.registry import HandlerContext
from workers.sync.orders.feeding import Tally, feed_missing
from workers.sync.orders.refresh import refresh_held
from workers.sync.orders.search import completed_orders, earlier, linked_store_ids

log = structlog.get_logger(__name__)

CURSOR_KEY = keys.ORDER_POLL_CURSOR
LOCK_KEY = keys.ORDER_POLL_LOCK
REPORT = "order-poll"
PAGE_SIZE = 100


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        # Also the ledger of held units: kept current even while no stock change asks for it.
        await refresh_held(ctx)
        ours = await linked_store_ids(ctx.magento, settings.magento_website_id)
        pages = completed_orders(
            ctx.magento, since=run.fields["since"], store_ids=ours, page_size=run.params.get("page_size", PAGE_SIZE)
        )
        async for page in pages:
            await feed_missing(ctx, page, _origin, tally, retry_failed=False)
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
