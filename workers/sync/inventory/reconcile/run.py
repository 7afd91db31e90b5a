"""One reconciliation, the periodic job that runs it every CRMAGENTO_RECONCILE_INTERVAL_MINUTES, the admin
job (`POST /admin/reconcile/inventory[?dry_run=true]`) and the history of recent runs.

One run finds the store's inventory API (MSI or legacy) once, as a worker does at start, then takes every
stock link in turn (location -> source, one at a time so memory holds one link's levels); for each:
1. refreshes the ledger of units held for orders not yet sales (workers/sync/orders/) and reads those of the
   link's place (its source), before any Cloud Retailer count (read in that order, a release racing the run
   can only make it sell less);
2. streams Cloud Retailer's rows for the link's location, keeping SKU -> target (on-hand minus held) and the
   high-water mark (levels.py);
3. streams Magento's side and compares each row with Cloud Retailer's quantity as it arrives (compare.py);
4. reads what changed in Cloud Retailer since the high-water mark and uses those newer counts;
5. writes only the SKUs that differ, then refreshes the ledger and reads the changes since again: a SKU
   whose on-hand or held units changed while it was being written gets the newer target (write.py);
6. reports (report.py): totals over the links, each link's line under `links`, in the envelope every periodic
   run has, stored in the reports hash as
   "reconcile-inventory" (GET /admin/status) and returned as the admin job's result. A dry run does steps
   1-4 and writes nothing.

One run at a time, the scheduled ones and the admin ones alike: the job's lease (workers/periodic/). A run
that meets a remote outage part way ends `skipped` (a scheduled one is due again soon; an admin one waits
for the remote and runs again, workers/adminjobs.py).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from crmcore import keys
from crmcore.settings import StockLink
from workers.clients.cloudretailer import linked_store_id
from workers.periodic import ADMIN, Periodic, Run, execute
from workers.registry import HandlerContext, Progress
from workers.sync import orders
from workers.sync.inventory.reconcile.compare import Comparison, side_of
from workers.sync.inventory.reconcile.levels import HeldBack, changes_since, read_levels
from workers.sync.inventory.reconcile.report import Report, Throttled
from workers.sync.inventory.reconcile.write import Writer
from workers.sync.inventory.setup import CACHE_KEY, adapter, detect_mode, held_place
from workers.sync.inventory.stock import Mode, Target

log = structlog.get_logger(__name__)

REPORT_NAME = "reconcile-inventory"
LOCK_KEY = keys.RECONCILE_LOCK
RUNS_KEY = keys.RECONCILE_RUNS
RUNS_KEPT = 50


class Reconciliation:
    """A run over every link: the mode found once, then each link compared and healed in turn (one at a time,
    so memory holds one link's levels), its report counted into the totals."""

    def __init__(self, ctx: HandlerContext, report: Report, progress: Progress | None) -> None:
        self.ctx, self.report, self.progress = ctx, report, progress
        self.settings = ctx.settings

    async def run(self) -> None:
        links = self.settings.links
        if not links:
            linked_store_id(self.settings.cr_store_id)  # raises: no store is linked
        mode = await self._mode()
        for link in links:
            part = Report(
                dry_run=self.report.dry_run, store_id=link.location_id, source_code=link.source_code, mode=mode.value
            )
            one = LinkReconciliation(self.ctx, link, mode, part, Throttled(self.progress, part, before=self.report))
            try:
                await one.run()
            finally:
                part.calls(one.stock.counts)
                self.report.add(part)

    async def _mode(self) -> Mode:
        mode, _ = await detect_mode(self.ctx.magento, self.settings)
        self.report.mode, self.report.magento_reads = mode.value, 1  # GET /V1/inventory/sources
        cached = self.ctx.services.caches.get(CACHE_KEY)
        if cached is not None and cached.mode is not mode:
            self.ctx.services.caches.pop(CACHE_KEY, None)  # this worker's handlers follow the change
        return mode


class LinkReconciliation:
    """One link: its location's on-hand (less the units held at its source) against its source."""

    def __init__(self, ctx: HandlerContext, link: StockLink, mode: Mode, report: Report, progress: Throttled) -> None:
        self.ctx, self.link, self.report, self.progress = ctx, link, report, progress
        self.settings = ctx.settings
        self.concurrency = max(1, self.settings.magento_concurrency)
        self.place = held_place(mode, link.source_code)
        self.stock = adapter(mode, ctx.magento, link.source_code, self.settings.inventory_batch_size, self.concurrency)

    async def run(self) -> None:
        r, cr, stock, store_id = self.report, self.ctx.cr, self.stock, self.link.location_id
        held = HeldBack(await self._read_held())
        r.held_skus = len(held.units)
        levels, high_water = await read_levels(cr, store_id, r, held)
        r.cr_skus = len(levels)
        await self.progress(force=True)
        comparison = Comparison(r, self.progress)
        drift = await comparison.run(side_of(stock, self.concurrency), levels)
        del levels
        r.calls(stock.counts)
        # Counts that changed in Cloud Retailer while the two sides were read: write the newer ones.
        changed, high_water = await changes_since(cr, store_id, high_water, r, held)
        for key, quantity in changed.items():
            if key in drift:
                drift[key] = Target(drift[key].sku, quantity, drift[key].legacy_item_id)
        r.drift_found = len(drift)
        r.drift = comparison.sample(held)
        if r.dry_run or not drift:
            return
        writer = Writer(stock, self.settings.inventory_batch_size, self.concurrency, r, self.progress)
        written = await writer.write(list(drift.values()))
        await writer.recheck(cr, store_id, written, high_water, held, self._read_held)
        r.drift_fixed = len(written)

    async def _read_held(self) -> dict[str, float]:
        await orders.refresh_held(self.ctx)
        return await orders.all_held_units(self.ctx, self.place)


async def reconcile(run: Run) -> str:
    """The periodic job's run: its report fields are the Report's (totals, and per link under `links`),
    complete even for a run cut short."""
    settings = run.ctx.settings
    report = Report(
        dry_run=bool(run.params.get("dry_run")),
        store_id=settings.cr_store_id or "",
        source_code=settings.magento_source_code,
    )
    job = Reconciliation(run.ctx, report, run.progress)
    try:
        await job.run()
    finally:
        run.fields.update(report.as_dict())
    log.info(
        "reconcile_finished",
        links=len(report.links),
        compared=report.compared,
        drift_found=report.drift_found,
        drift_fixed=report.drift_fixed,
        errors=report.error_count,
    )
    if run.progress is not None:
        await run.progress(report.cr_skus, report.cr_skus)
    return "partial" if report.error_count else "ok"


# --- history ------------------------------------------------------------------------------------------------


async def record_run(ctx: HandlerContext, report: dict[str, Any]) -> None:
    """The recent runs, newest first, one entry per run that started."""
    entry = {k: report.get(k) for k in ("run_id", "trigger", "dry_run", "started", "finished", "status")}
    redis = ctx.redis
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.RECONCILE_RUN_ENTRIES, report["run_id"], orjson.dumps(entry))
        pipe.zadd(RUNS_KEY, {report["run_id"]: time.time()}, nx=True)
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


# --- how a run starts ---------------------------------------------------------------------------------------

RECONCILE = Periodic(
    REPORT_NAME,
    interval=lambda settings: settings.reconcile_interval_minutes * 60,
    run=reconcile,
    on_report=record_run,
)


async def run_reconciliation(
    ctx: HandlerContext, *, dry_run: bool, trigger: str, progress: Progress | None = None
) -> dict[str, Any]:
    """One reconciliation now, named ctx.job_id. Returns its report, or a `skipped` one naming the run that
    holds the lease (`running`)."""
    return await execute(RECONCILE, ctx, trigger, params={"dry_run": dry_run}, progress=progress)


async def reconcile_job(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """POST /admin/reconcile/inventory[?dry_run=true]: the admin job's id is the run id."""
    return await run_reconciliation(ctx, dry_run=bool(params.get("dry_run")), trigger=ADMIN, progress=progress)
