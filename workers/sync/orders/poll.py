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

A run needs both remotes (Magento to read, Cloud Retailer to record the sales it feeds). With either one down
(workers/availability/) it is skipped: its report says `skipped` and why, and the cursor stays where it was,
so the first run after the outage reads every order completed during it. A run that meets `RemoteUnavailable`
part way ends `skipped` too, its cursor at the last page it handled. A first run that is skipped pins the
cursor where it would have started, so the window before the outage is not lost either.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from arq import cron
from arq.cron import CronJob

from crmcore import keys
from crmcore.events import MagentoOrderEvent, Source
from crmcore.remotes import RemoteState
from crmcore.settings import Settings
from workers.availability.gate import BOTH, blocked_remote, outage_reason, skip_reason
from workers.clients.errors import RemoteUnavailable
from workers.clients.search_criteria import SearchCriteria
from workers.errors import PermanentError
from workers.feed import feed
from workers.registry import HandlerContext, Progress
from workers.services import Services
from workers.sync.orders import markers
from workers.sync.orders.search import completed_orders, earlier, linked_store_ids, magento_time, parse_time

log = structlog.get_logger(__name__)

CURSOR_KEY = keys.ORDER_POLL_CURSOR
LOCK_KEY = keys.ORDER_POLL_LOCK
REPORT = "order-poll"
EVENT = "order.completed"
_LOOKUP_BATCH = 100
_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


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


async def _take_lock(ctx: HandlerContext, ttl_s: int) -> bool:
    """One poll at a time; a retry of the same cron run (same arq job id) may take over its own lock."""
    if await ctx.redis.set(LOCK_KEY, ctx.job_id, nx=True, ex=ttl_s):
        return True
    holder = await ctx.redis.get(LOCK_KEY)
    return holder is not None and _text(holder) == ctx.job_id


async def poll(ctx: HandlerContext, *, page_size: int = 100) -> dict[str, Any]:
    """One poll run: feed every complete order updated since the cursor (minus the overlap) not yet imported."""
    settings = ctx.settings
    interval_s = settings.order_poll_interval_minutes * 60
    down = await blocked_remote(ctx.redis, BOTH)
    if down is not None:
        return await _skipped(ctx, down)
    if not await _take_lock(ctx, max(interval_s, 60)):
        log.info("order_poll_busy", reason="another poll is running")
        return {"status": "busy"}
    started = time.monotonic()
    cursor = await _cursor(ctx)
    since = earlier(cursor, settings.order_poll_overlap_seconds)
    tally = Tally()
    report: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "since": since, "job_id": ctx.job_id}
    try:
        ours = await linked_store_ids(ctx.magento, settings.magento_website_id)
        async for page in completed_orders(ctx.magento, since=since, store_ids=ours, page_size=page_size):
            # The id names the order and its version: the next run's overlap feeds the same change again,
            # and that is a duplicate, not a second event (nor a second dead letter).
            await _feed_missing(
                ctx, page, lambda o: f"order-poll:{o['entity_id']}:{_version(o)}", tally, retry_failed=False
            )
            newest = max(magento_time(parse_time(str(o["updated_at"]))) for o in page)
            if newest > cursor:
                cursor = newest
                await ctx.redis.set(CURSOR_KEY, cursor)  # per page: a run cut short keeps what it handled
        report.update(status="ok")
    except RemoteUnavailable as exc:
        report.update(status="skipped", reason=outage_reason(exc)[:500])
        await ctx.redis.set(CURSOR_KEY, cursor, nx=True)  # a first run cut short: the next starts from here
        log.warning("cron_skipped", cron=REPORT, remote=exc.system, reason=report["reason"])
    except Exception as exc:
        report.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        report.update(tally.counts, cursor=cursor, duration_ms=int((time.monotonic() - started) * 1000))
        report["finished_at"] = datetime.now(UTC).isoformat()
        await ctx.redis.hset(keys.REPORTS, REPORT, orjson.dumps(report))
        await ctx.redis.eval(_RELEASE_LUA, 1, LOCK_KEY, ctx.job_id)
    log.info("order_poll_done", **tally.counts, cursor=cursor)
    return report


async def _cursor(ctx: HandlerContext) -> str:
    """The cursor, or where a first run starts: one interval back."""
    raw = await ctx.redis.get(CURSOR_KEY)
    if raw is not None:
        return _text(raw)
    return magento_time(datetime.now(UTC) - timedelta(seconds=ctx.settings.order_poll_interval_minutes * 60))


async def _skipped(ctx: HandlerContext, down: RemoteState) -> dict[str, Any]:
    """A run not started because a remote is down: nothing read, no lock taken, the cursor left alone (or,
    before the first run, pinned where that run would have started)."""
    cursor = await _cursor(ctx)
    await ctx.redis.set(CURSOR_KEY, cursor, nx=True)
    now = datetime.now(UTC).isoformat()
    report = {
        "status": "skipped",
        "reason": skip_reason(down),
        "started_at": now,
        "finished_at": now,
        "job_id": ctx.job_id,
        "cursor": cursor,
    }
    await ctx.redis.hset(keys.REPORTS, REPORT, orjson.dumps(report))
    log.info("cron_skipped", cron=REPORT, remote=down.remote.value, reason=report["reason"])
    return report


async def poll_cron(ctx: dict[str, Any]) -> dict[str, Any]:
    """The arq cron entry point, on the long queue (its ctx holds redis, settings and services)."""
    services: Services = ctx["services"]
    hctx = HandlerContext(
        redis=ctx["redis"],
        settings=ctx["settings"],
        job_id=str(ctx.get("job_id") or REPORT),
        attempt=int(ctx.get("job_try") or 1),
        services=services,
    )
    return await poll(hctx)


def poll_cron_job(settings: Settings) -> CronJob:
    """Every CRMAGENTO_ORDER_POLL_INTERVAL_MINUTES, on the clock (minute 0, 5, 10... of each hour for 5).

    arq names each run after its scheduled time, so with many workers a run happens once; two tries, so a
    worker restarting mid-run does not lose the run (arq's crons default to one try)."""
    minutes = settings.order_poll_interval_minutes
    if minutes < 60:
        schedule: dict[str, Any] = {"minute": set(range(0, 60, minutes)), "second": {0}}
    else:
        schedule = {"hour": set(range(0, 24, max(1, minutes // 60))), "minute": {0}, "second": {0}}
    # keep_result: a worker that enqueues the run late finds it done and does not run it again
    return cron(poll_cron, name=REPORT, max_tries=2, keep_result=60, **schedule)


# --- the admin job -------------------------------------------------------------------------------------------


async def _by_ids(ctx: HandlerContext, order_ids: list[int]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), _LOOKUP_BATCH):
        batch = order_ids[start : start + _LOOKUP_BATCH]
        criteria = SearchCriteria(page_size=len(batch)).where("entity_id", list(batch), "in")
        found.extend((await ctx.magento.search("orders", criteria)).items)
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
