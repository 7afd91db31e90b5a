"""The inventory reconciliation: Cloud Retailer's on-hand at the linked store against Magento's source,
fixing only what differs. The fallback for every lost or failed `inventory.updated`.

One run:
1. finds the store's inventory API (MSI or legacy), as a worker does at start;
2. streams Cloud Retailer's rows for the store (cursor pages of 1,000), keeping SKU -> quantity and the
   newest `updated_at` seen (the high-water mark);
3. streams Magento's source items of the source (pages of 300 by SKU, several in flight) and compares each
   with Cloud Retailer's quantity as it arrives; a Cloud Retailer SKU with no source item is looked up
   among the products (a product gets its first source item; no product is reported, never created);
4. reads what changed in Cloud Retailer since the high-water mark and uses those newer counts;
5. writes only the SKUs that differ, CRMAGENTO_INVENTORY_BATCH_SIZE per call, then reads the changes since
   again: a SKU that changed while it was being written gets the newer count (see "Races" below);
6. records the report in the reports hash ("reconcile-inventory", shown by GET /admin/status) and returns it
   as the admin job's result. A dry run does steps 1-4 and writes nothing.

Races with the change handler. Cloud Retailer gives every write an `updated_at` later than any before, and
a listing with `updated_since=T` returns every row changed at or after T. Both writers check after writing:
the handler re-reads its SKU, the reconciliation reads everything changed since its high-water mark, and
either one writes again when Cloud Retailer moved on meanwhile. The last write to a SKU is therefore always
followed by a read of Cloud Retailer by the same writer, which corrects it if it was stale; whatever changes
later sends a new webhook. So a push and a reconciliation touching the same SKU end with the newest count.

A remote that is down. A cron tick that finds Magento or Cloud Retailer down (their shared state, see
workers/availability/) skips the run: it writes a `skipped` report with the reason and leaves the run due,
so the first tick after the outage runs it. A run that meets `RemoteUnavailable` part way stops, reports
`skipped` with the remote and the error, and is due again at once; an admin run raises it instead, and its
job waits for the remote and runs again (workers/adminjobs.py).

Once per interval however many workers run: an arq cron ticks every minute on every worker (one job per
tick, arq's unique cron job id), and a tick runs the reconciliation only if it claims the due time in Redis
(one Lua script: due, then moved one interval on). The run itself holds a lease lock (renewed while it runs,
freed at the end), so a run still going when the next one is due, or an admin run meanwhile, is not
started twice: the later one is skipped and says which run holds the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from arq.cron import CronJob, cron
from redis.asyncio import Redis

from crmcore import jobrecords, keys
from crmcore.remotes import RemoteState
from workers.availability.gate import BOTH, blocked_remote, outage_reason, skip_reason
from workers.clients.errors import RemoteUnavailable
from workers.errors import PermanentError
from workers.lease import Lease
from workers.registry import HandlerContext, Progress
from workers.sync.inventory import stock as st
from workers.sync.inventory.stock import LegacyStock, Mode, MsiStock, Outcome, Target

log = structlog.get_logger(__name__)

REPORT_NAME = "reconcile-inventory"
LOCK_KEY = keys.RECONCILE_LOCK
NEXT_KEY = keys.RECONCILE_NEXT
CLAIM_KEY = keys.RECONCILE_CLAIM
RUNS_KEY = keys.RECONCILE_RUNS
RUNS_KEPT = 50
CR_PAGE = 1000
SAMPLE = 50  # SKUs listed per category in a report (the counts are exact)
VERIFY_ROUNDS = 3
PROGRESS_EVERY_S = 1.0


class ReconcileFailed(PermanentError):
    """The run stopped (Magento or Cloud Retailer unreachable after retries...); the report says where."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id() -> str:
    return f"rec-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


# --- the report ---------------------------------------------------------------------------------------


@dataclass
class Listed:
    """A count and the first SAMPLE SKUs."""

    count: int = 0
    skus: list[str] = field(default_factory=list)

    def add(self, sku: str) -> None:
        self.count += 1
        if len(self.skus) < SAMPLE:
            self.skus.append(sku)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "skus": self.skus}


@dataclass
class Report:
    run_id: str
    trigger: str
    dry_run: bool
    store_id: str
    source_code: str
    admin_job: str | None = None
    mode: str | None = None
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    seconds: float | None = None
    status: str = "running"
    reason: str | None = None  # why a run was skipped
    cr_skus: int = 0
    magento_skus: int = 0
    compared: int = 0
    drift_found: int = 0
    drift_fixed: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    missing_in_magento: Listed = field(default_factory=Listed)
    missing_in_cr: Listed = field(default_factory=Listed)
    changed_during_run: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    magento_reads: int = 0
    magento_writes: int = 0
    items_written: int = 0
    cr_reads: int = 0

    def error(self, message: str, skus: list[str] | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < 20:
            entry: dict[str, Any] = {"error": message[:500]}
            if skus:
                entry["skus"] = skus[:SAMPLE]
            self.errors.append(entry)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, Listed)}
        out["missing_in_magento"] = self.missing_in_magento.as_dict()
        out["missing_in_cr"] = self.missing_in_cr.as_dict()
        return out


# --- the run ------------------------------------------------------------------------------------------

_SEEN = object()  # a Cloud Retailer SKU already matched with its Magento row


async def _all_or_none(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """`gather`, except that the first failure cancels the others: a run that stops must not leave writes
    going on behind its report."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Reconciliation:
    def __init__(self, ctx: HandlerContext, report: Report, progress: Progress | None) -> None:
        self.ctx = ctx
        self.report = report
        self.progress = progress
        self.settings = ctx.settings
        self.concurrency = max(1, self.settings.magento_concurrency)
        self._progress_at = 0.0

    async def run(self) -> None:
        r = self.report
        magento, cr = self.ctx.magento, self.ctx.cr
        mode, _ = await st.detect_mode(magento, self.settings.magento_source_code)
        r.magento_reads += 1
        r.mode = mode.value
        cached = self.ctx.services.caches.get(st.CACHE_KEY)
        if cached is not None and cached.mode is not mode:
            self.ctx.services.caches.pop(st.CACHE_KEY, None)  # this worker's handlers follow the change
        stock: MsiStock | LegacyStock
        if mode is Mode.MSI:
            stock = MsiStock(magento, self.settings.magento_source_code, self.settings.inventory_batch_size)
        else:
            stock = LegacyStock(magento, self.concurrency)
        self.stock = stock

        levels, high_water = await self._read_cr(cr)
        r.cr_skus = len(levels)
        await self._report_progress(0, force=True)
        if isinstance(stock, MsiStock):
            drift = await self._compare_msi(stock, levels)
        else:
            drift = await self._compare_legacy(stock, levels)
        del levels
        # Counts that changed in Cloud Retailer while the two sides were read: write the newer ones.
        changed, high_water = await self._changes_since(cr, high_water)
        for key, quantity in changed.items():
            if key in drift:
                drift[key] = Target(drift[key].sku, quantity, drift[key].legacy_item_id)
        r.drift_found = len(drift)
        self._sample_drift(drift)
        if r.dry_run or not drift:
            return
        written = await self._write(stock, list(drift.values()))
        await self._recheck(cr, stock, written, high_water)
        r.drift_fixed = len(written)

    # --- Cloud Retailer ---------------------------------------------------------------------------------
    async def _read_cr(self, cr: Any) -> tuple[dict[str, tuple[str, float]], str]:
        """lower-case SKU -> (SKU, target quantity). A row changed while paging comes again later with its new
        count (keyset paging on updated_at), and the later one wins."""
        levels: dict[str, tuple[str, float]] = {}
        high_water = ""
        params = {"store_id": self._store_id()}
        rows = 0
        async for item in cr.iter_pages("inventory", params, limit=CR_PAGE):
            sku = str(item["sku"])
            levels[sku.lower()] = (sku, st.target_quantity(item.get("on_hand") or 0))
            updated = item.get("updated_at") or ""
            if updated > high_water:
                high_water = updated
            rows += 1
        self.report.cr_reads += rows // CR_PAGE + 1
        return levels, high_water

    async def _changes_since(self, cr: Any, since: str) -> tuple[dict[str, float], str]:
        if not since:
            return {}, since
        changed: dict[str, float] = {}
        high_water = since
        rows = 0
        async for item in cr.iter_pages(
            "inventory", {"store_id": self._store_id(), "updated_since": since}, limit=CR_PAGE
        ):
            updated = item.get("updated_at") or ""
            changed[str(item["sku"]).lower()] = st.target_quantity(item.get("on_hand") or 0)
            high_water = max(high_water, updated)
            rows += 1
        self.report.cr_reads += rows // CR_PAGE + 1
        # `updated_since` is inclusive: the row at the mark itself comes back unchanged; it is harmless.
        return changed, high_water

    def _store_id(self) -> str:
        store_id = self.settings.cr_store_id
        if not store_id:
            raise PermanentError("CRMAGENTO_CR_STORE_ID is not set: the Cloud Retailer store linked to Magento")
        return store_id

    # --- comparing ------------------------------------------------------------------------------------
    async def _compare_msi(self, stock: MsiStock, levels: dict[str, Any]) -> dict[str, Target]:
        r = self.report
        source = stock.source_code
        drift: dict[str, Target] = {}
        self._before: dict[str, float | None] = {}
        extra_seen: set[str] = set()
        async for page in stock.pages(self.concurrency):
            for item in page:
                if item.get("source_code") != source:
                    continue
                sku = str(item["sku"])
                key = sku.lower()
                entry = levels.get(key)
                if entry is None:
                    if key not in extra_seen:  # a repeated last page lists it twice
                        extra_seen.add(key)
                        r.magento_skus += 1
                        r.missing_in_cr.add(sku)
                    continue
                if entry is _SEEN:
                    continue
                levels[key] = _SEEN
                r.magento_skus += 1
                r.compared += 1
                quantity = entry[1]
                if not st.same_stock(item.get("quantity") or 0, item.get("status") or 0, quantity):
                    drift[key] = Target(sku, quantity)
                    if len(self._before) < SAMPLE:
                        self._before[key] = float(item.get("quantity") or 0)
            await self._report_progress(r.compared)
        await self._match_products(stock, levels, drift)
        self._sync_counts()
        return drift

    async def _match_products(self, stock: MsiStock, levels: dict[str, Any], drift: dict[str, Target]) -> None:
        """Cloud Retailer SKUs with no source item here: a product gets one, a SKU without product is reported."""
        r = self.report
        unmatched = [entry for entry in levels.values() if entry is not _SEEN]
        if not unmatched:
            return
        products = await st.existing_products(stock.magento, [sku for sku, _ in unmatched], stock.counts)
        for sku, quantity in unmatched:
            magento_sku = products.get(sku.lower())
            if magento_sku is None:
                r.missing_in_magento.add(sku)
                continue
            r.compared += 1
            drift[sku.lower()] = Target(magento_sku, quantity)
            if len(self._before) < SAMPLE:
                self._before[sku.lower()] = None

    async def _compare_legacy(self, stock: LegacyStock, levels: dict[str, Any]) -> dict[str, Target]:
        """Without MSI there is no list of stock items by SKU: the products are listed, and each one that
        Cloud Retailer also has is read (one call per SKU, `concurrency` at a time)."""
        r = self.report
        drift: dict[str, Target] = {}
        self._before = {}
        limit = asyncio.Semaphore(self.concurrency)
        async for page in st.product_pages(stock.magento, stock.counts, self.concurrency):
            checks = []
            for product in page:
                sku = str(product["sku"])
                entry = levels.get(sku.lower())
                if entry is _SEEN:
                    continue
                r.magento_skus += 1
                if entry is None:
                    r.missing_in_cr.add(sku)
                    continue
                levels[sku.lower()] = _SEEN
                checks.append(self._check_legacy(stock, limit, sku, entry[1], drift))
            await _all_or_none(checks)
            await self._report_progress(r.compared)
        for entry in levels.values():
            if entry is not _SEEN:
                r.missing_in_magento.add(entry[0])
        self._sync_counts()
        return drift

    async def _check_legacy(
        self, stock: LegacyStock, limit: asyncio.Semaphore, sku: str, quantity: float, drift: dict[str, Target]
    ) -> None:
        r = self.report
        async with limit:
            try:
                item = await stock.stock_item(sku)
            except RemoteUnavailable:
                raise  # every SKU after it would fail the same way: the run stops, skipped
            except Exception as exc:
                r.error(f"{type(exc).__name__}: {exc}", [sku])
                return
        if item is None:  # deleted since it was listed
            r.missing_in_magento.add(sku)
            return
        r.compared += 1
        if not st.same_stock(item.get("qty") or 0, item.get("is_in_stock") or 0, quantity):
            drift[sku.lower()] = Target(sku, quantity, int(item["item_id"]))
            if len(self._before) < SAMPLE:
                self._before[sku.lower()] = float(item.get("qty") or 0)

    def _sample_drift(self, drift: dict[str, Target]) -> None:
        self.report.drift = [
            {"sku": t.sku, "magento": self._before.get(key), "cloud_retailer": t.quantity}
            for key, t in list(drift.items())[:SAMPLE]
        ]

    # --- writing ----------------------------------------------------------------------------------------
    async def _write(self, stock: MsiStock | LegacyStock, targets: list[Target]) -> dict[str, Target]:
        """Batches of CRMAGENTO_INVENTORY_BATCH_SIZE, `concurrency` in flight. Returns what was written, by
        lower-case SKU. A batch that fails after the client's retries is reported and left for the next run."""
        size = self.settings.inventory_batch_size
        written: dict[str, Target] = {}
        limit = asyncio.Semaphore(self.concurrency)
        await _all_or_none(
            self._send(stock, limit, targets[i : i + size], written) for i in range(0, len(targets), size)
        )
        self._sync_counts()
        return written

    async def _send(
        self, stock: MsiStock | LegacyStock, limit: asyncio.Semaphore, batch: list[Target], written: dict[str, Target]
    ) -> None:
        async with limit:
            try:
                outcomes = await stock.write(batch)
            except RemoteUnavailable:
                raise  # the other batches would fail the same way: the run stops, skipped
            except Exception as exc:
                self.report.error(f"{type(exc).__name__}: {exc}", [t.sku for t in batch])
                return
        for t in batch:
            outcome = outcomes.get(t.sku)
            if outcome is Outcome.WRITTEN:
                written[t.sku.lower()] = t
            elif isinstance(outcome, RemoteUnavailable):
                raise outcome
            elif isinstance(outcome, BaseException):
                self.report.error(f"{type(outcome).__name__}: {outcome}", [t.sku])
        await self._report_progress(self.report.compared)

    async def _recheck(
        self, cr: Any, stock: MsiStock | LegacyStock, written: dict[str, Target], high_water: str
    ) -> None:
        """SKUs whose count changed in Cloud Retailer while we wrote them get the newer count."""
        for _ in range(VERIFY_ROUNDS):
            changed, high_water = await self._changes_since(cr, high_water)
            again = [
                Target(written[key].sku, quantity, written[key].legacy_item_id)
                for key, quantity in changed.items()
                if key in written and abs(written[key].quantity - quantity) > 1e-6
            ]
            if not again:
                return
            self.report.changed_during_run += len(again)
            log.info("reconcile_rewrite_changed", skus=len(again))
            written.update(await self._write(stock, again))

    def _sync_counts(self) -> None:
        counts = self.stock.counts
        self.report.magento_reads = 1 + counts.reads
        self.report.magento_writes = counts.writes
        self.report.items_written = counts.items_written

    async def _report_progress(self, done: int, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._progress_at < PROGRESS_EVERY_S:
            return
        self._progress_at = now
        await self.progress(min(done, self.report.cr_skus), self.report.cr_skus)


async def run_reconciliation(
    ctx: HandlerContext,
    *,
    dry_run: bool,
    trigger: str,
    progress: Progress | None = None,
    admin_job: str | None = None,
) -> dict[str, Any]:
    """One reconciliation under the run lock. Returns its report (also stored in the reports hash), or a
    `skipped` answer naming the run still going. A run cut short by a remote outage is `skipped` too; an
    admin run raises the RemoteUnavailable instead, so its job waits for the remote and runs again."""
    run_id = new_run_id()
    lock = Lease(ctx.redis, LOCK_KEY, run_id)
    if not await lock.take():
        holder = await lock.held_by()
        log.info("reconcile_skipped", trigger=trigger, running=holder)
        return {
            "run_id": None,
            "status": "skipped",
            "reason": f"reconciliation {holder or '(just finishing)'} is still running",
            "running": holder,
            "trigger": trigger,
            "dry_run": dry_run,
        }
    report = _new_report(ctx, run_id, trigger, dry_run=dry_run, admin_job=admin_job)
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started = time.monotonic()
    log.info("reconcile_started", trigger=trigger, dry_run=dry_run)
    await _record_run(ctx.redis, report)
    failure: BaseException | None = None
    job = Reconciliation(ctx, report, progress)
    try:
        async with lock.kept(stop_on_loss=True):
            await job.run()
    except RemoteUnavailable as exc:
        failure = exc
        report.reason = outage_reason(exc)
    except (Exception, asyncio.CancelledError) as exc:
        failure = exc
        report.error(f"{type(exc).__name__}: {exc}")
    finally:
        # The lease was released on leaving `kept()`.
        body = await _finish(ctx, job, failure, started)
    return await _outcome(ctx, report, body, failure, progress)


def _new_report(ctx: HandlerContext, run_id: str, trigger: str, *, dry_run: bool, admin_job: str | None) -> Report:
    return Report(
        run_id=run_id,
        trigger=trigger,
        dry_run=dry_run,
        store_id=ctx.settings.cr_store_id or "",
        source_code=ctx.settings.magento_source_code,
        admin_job=admin_job,
    )


async def _finish(
    ctx: HandlerContext, job: Reconciliation, failure: BaseException | None, started: float
) -> dict[str, Any]:
    """Completes the report, stores it and logs the run; returns it."""
    report = job.report
    if hasattr(job, "stock"):
        job._sync_counts()
    report.finished = now_iso()
    report.seconds = round(time.monotonic() - started, 3)
    if isinstance(failure, RemoteUnavailable):
        report.status = "skipped"
    elif failure is not None:
        report.status = "failed"
    else:
        report.status = "partial" if report.error_count else "ok"
    body = report.as_dict()
    with contextlib.suppress(Exception):
        await ctx.redis.hset(keys.REPORTS, REPORT_NAME, orjson.dumps(body))
        await _record_run(ctx.redis, report)
    log.info(
        "reconcile_finished",
        status=report.status,
        compared=report.compared,
        drift_found=report.drift_found,
        drift_fixed=report.drift_fixed,
        errors=report.error_count,
        seconds=report.seconds,
    )
    structlog.contextvars.unbind_contextvars("run_id")
    return body


async def _outcome(
    ctx: HandlerContext, report: Report, body: dict[str, Any], failure: BaseException | None, progress: Progress | None
) -> dict[str, Any]:
    """What the caller gets: the report, or the failure raised."""
    if isinstance(failure, RemoteUnavailable):
        if report.admin_job is not None:
            raise failure
        log.warning("cron_skipped", cron=REPORT_NAME, remote=failure.system, reason=report.reason)
        return body
    if isinstance(failure, asyncio.CancelledError):
        raise failure
    if failure is not None:
        if progress is not None and report.admin_job is not None:
            await jobrecords.update(ctx.redis, report.admin_job, result=body)
        raise ReconcileFailed(
            f"reconciliation {report.run_id} failed: {type(failure).__name__}: {failure}"
        ) from failure
    if progress is not None:
        await progress(report.cr_skus, report.cr_skus)
    return body


async def skip_report(ctx: HandlerContext, state: RemoteState, trigger: str) -> dict[str, Any]:
    """The report of a run not started because a remote it needs is down (nothing read, nothing locked)."""
    report = _new_report(ctx, new_run_id(), trigger, dry_run=False, admin_job=None)
    report.status, report.reason = "skipped", skip_reason(state)
    report.finished, report.seconds = report.started, 0.0
    body = report.as_dict()
    await ctx.redis.hset(keys.REPORTS, REPORT_NAME, orjson.dumps(body))
    log.info("cron_skipped", cron=REPORT_NAME, remote=state.remote.value, reason=report.reason)
    return body


async def _record_run(redis: Redis, report: Report) -> None:
    """The recent runs, newest first, one entry per run (replaced when it finishes)."""
    entry = orjson.dumps(
        {
            "run_id": report.run_id,
            "trigger": report.trigger,
            "dry_run": report.dry_run,
            "started": report.started,
            "finished": report.finished,
            "status": report.status,
        }
    )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.RECONCILE_RUN_ENTRIES, report.run_id, entry)
        pipe.zadd(RUNS_KEY, {report.run_id: time.time()}, nx=True)
        await pipe.execute()
    stale = await redis.zrange(RUNS_KEY, 0, -RUNS_KEPT - 1)
    if stale:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(RUNS_KEY, *stale)
            pipe.hdel(keys.RECONCILE_RUN_ENTRIES, *stale)
            await pipe.execute()


async def recent_runs(redis: Redis) -> list[dict[str, Any]]:
    ids = await redis.zrevrange(RUNS_KEY, 0, -1)
    if not ids:
        return []
    raw = await redis.hmget(keys.RECONCILE_RUN_ENTRIES, ids)
    return [orjson.loads(v) for v in raw if v is not None]


# --- admin job and cron --------------------------------------------------------------------------------


async def reconcile_job(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """POST /admin/reconcile/inventory[?dry_run=true]."""
    return await run_reconciliation(
        ctx, dry_run=bool(params.get("dry_run")), trigger="admin", progress=progress, admin_job=ctx.job_id
    )


Tick = Callable[[dict[str, Any]], Awaitable[str]]

# KEYS[1] next due time (epoch seconds), KEYS[2] the tick that claimed the current run.
# ARGV: now, interval, this tick's job id, '1' when a remote is down. The first tick ever only sets the
# cadence: the first run comes one interval after the workers first ran (and a test suite whose workers live
# for seconds never runs one). A due run with a remote down is not claimed: it stays due for the next tick.
_CLAIM_LUA = """
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = tonumber(redis.call('GET', KEYS[1]))
if not due then
  redis.call('SET', KEYS[1], tostring(now + interval))
  return 'scheduled'
end
if redis.call('GET', KEYS[2]) == ARGV[3] then return 'run' end
if now < due then return 'not-due' end
if ARGV[4] == '1' then return 'blocked' end
local nxt = due + interval
if nxt <= now then nxt = now + interval end
redis.call('SET', KEYS[1], tostring(nxt))
redis.call('SET', KEYS[2], ARGV[3], 'EX', math.max(60, math.ceil(interval * 2)))
return 'run'
"""


def make_tick(interval_seconds: float | None = None) -> Tick:
    """The cron body. `interval_seconds` overrides CRMAGENTO_RECONCILE_INTERVAL_MINUTES (tests)."""

    async def reconcile_inventory_tick(ctx: dict[str, Any]) -> str:
        settings = ctx["settings"]
        if not (settings.magento_url and settings.cr_url and settings.cr_store_id):
            return "not-configured"
        interval = interval_seconds or settings.reconcile_interval_minutes * 60
        job_id = str(ctx.get("job_id") or "")
        redis: Redis = ctx["redis"]
        hctx = HandlerContext(redis=redis, settings=settings, job_id=job_id, attempt=1, services=ctx["services"])
        down = await blocked_remote(redis, BOTH)
        claim = await _claim(redis, interval, job_id, blocked=down is not None)
        if claim not in ("run", "blocked"):  # another worker's tick ran this interval, or it is not due yet
            return claim
        if down is not None:
            await skip_report(hctx, down, "cron")
            return "skipped"
        result = await run_reconciliation(hctx, dry_run=False, trigger="cron")
        if result["status"] == "skipped" and result["run_id"] is not None:
            # Cut short by an outage (a run skipped because another holds the lock has no id): the drift it
            # came for is still there, so it is due again at once rather than an interval later.
            await redis.set(NEXT_KEY, repr(time.time()))
        return str(result["status"])

    return reconcile_inventory_tick


async def _claim(redis: Redis, interval: float, job_id: str, *, blocked: bool) -> str:
    args = (repr(time.time()), repr(float(interval)), job_id, "1" if blocked else "0")
    claim = await redis.eval(_CLAIM_LUA, 2, NEXT_KEY, CLAIM_KEY, *args)
    return claim.decode() if isinstance(claim, bytes) else str(claim)


def reconcile_cron(interval_seconds: float | None = None, **schedule: Any) -> CronJob:
    """Ticks every minute (second 0) unless `schedule` says otherwise; a tick runs the reconciliation when
    it is due. Two tries: a worker that dies during a run has it re-run (arq crons default to one try)."""
    schedule.setdefault("second", {0})
    return cron(
        make_tick(interval_seconds),
        name="cron:reconcile-inventory",
        max_tries=2,
        keep_result=0,
        **schedule,
    )
