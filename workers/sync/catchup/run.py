"""One catch-up run, its report, and the two ways to start one (the cron and the `resync-catchup` admin job).

A run reads each stream (streams.py) from `cursor - CRMAGENTO_CATCHUP_OVERLAP_SECONDS` on and feeds every
change into the entity queue (workers/feed.py), so it goes through the same handlers, per-entity coalescing
and no-op detection as a webhook; one that already arrived by webhook finds Magento in step and writes
nothing. A stream's cursor moves past a page once every change on it is durably queued: from there the queue
retries it until it is applied or dead-lettered (where an operator sees and replays it). A page that could
not be read or queued leaves the cursor where it was, so the next run reads it again. The overlap covers a
change saved in the same second as the cursor (Magento's times have whole seconds) and a save whose time was
taken before its transaction committed; its cost is that each run meets the changes of the window before
the newest one again (their handlers find nothing to write). The first run of a stream pins its cursor one
interval back.

A run needs both remotes. A cron run that finds one down (workers/availability/) does not start: it writes a
`skipped` report with the reason, and no cursor moves (a stream that has none yet gets it pinned, as its
first run would have). A run that meets `RemoteUnavailable` part way stops there, `skipped`, every cursor at
the last page handled; an admin run raises it instead, so its job waits for the remote and runs again.

Every run has a job record (`GET /admin/jobs/{run id}`): the changes are fed as `job:<run id>:...`, so the
workers count them applied (`done`) or failed as they settle. The run waits (a bounded time) for that, then
writes its report, with each stream's cursor, to the reports hash (`keys.REPORTS`) as "catchup" (GET /admin/status).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import structlog
from arq import cron
from arq.cron import CronJob

from crmcore import jobrecords, keys
from crmcore.remotes import RemoteState
from crmcore.settings import Settings
from workers.availability.gate import BOTH, blocked_remote, outage_reason, skip_reason
from workers.clients.errors import RemoteUnavailable
from workers.errors import PermanentError
from workers.feed import feed
from workers.lease import Lease, LeaseLost
from workers.registry import HandlerContext, Progress
from workers.services import Services
from workers.sync.catchup import clock
from workers.sync.catchup.streams import STREAMS, Found, Stream

log = structlog.get_logger(__name__)

REPORT = "catchup"  # the reports field, and the cron's name
ADMIN_KIND = "resync-catchup"  # POST /admin/resync/catchup
CRON_KIND = "catchup"  # the job record of a cron run
LOCK_KEY = keys.CATCHUP_LOCK
SETTLE_MAX_S = 300.0
SETTLE_POLL_S = 0.2


@dataclass
class StreamTally:
    since: str
    cursor: str
    found: int = 0
    queued: int = 0
    already_queued: int = 0  # fed by this very run before (a retried run)
    in_step: int = 0  # Magento records the gateway links already
    error: str | None = None


def run_id_of(job_id: str) -> str:
    """A run id usable in event ids: `job:<run id>:...` names the job between the first two colons."""
    return job_id.replace(":", "-")


async def _feed_page(ctx: HandlerContext, stream: Stream, page: list[Found], tally: StreamTally) -> None:
    origin = jobrecords.feed_origin(ctx.job_id)
    for found in page:
        tally.found += 1
        if found.change is None:
            tally.in_step += 1
        elif await feed(ctx.redis, ctx.settings, f"{origin}:{stream.name}:{found.key}", [found.change]):
            tally.queued += 1
        else:
            tally.already_queued += 1
    newest = max((f.at for f in page if f.at), default="")
    if newest:
        await clock.advance(ctx.redis, stream.name, newest)
        tally.cursor = max(tally.cursor, newest)


async def _read_stream(
    ctx: HandlerContext, stream: Stream, tally: StreamTally, lease: Lease, progress: Progress, fed: list[int]
) -> None:
    try:
        async for page in stream.pages(ctx, tally.since):
            if lease.lost:
                raise LeaseLost("the catch-up lease expired or was taken over; stopped")
            before = tally.queued + tally.already_queued
            await _feed_page(ctx, stream, page, tally)
            fed[0] += tally.queued + tally.already_queued - before
            await progress(total=fed[0])
    except LeaseLost:
        raise
    except RemoteUnavailable as exc:
        # The whole run stops: the streams after this one need the same remotes.
        tally.error = f"{type(exc).__name__}: {exc}"[:500]
        raise
    except Exception as exc:
        # This stream stops here (its cursor stays at the last page handled); the others still run.
        tally.error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("catchup_stream_failed", stream=stream.name, error=tally.error)


async def _pinned_cursors(ctx: HandlerContext) -> dict[str, str]:
    """Every stream's cursor. One without (its first run) is pinned one interval back at once, even if nothing
    is found, the stream fails or the run is skipped: a run after a long outage then looks back to here, not
    just one interval back from its own start."""
    known = await clock.cursors(ctx.redis)
    first_look = ctx.settings.catchup_interval_minutes * 60
    for stream in STREAMS:
        if stream.name not in known:
            known[stream.name] = stream.clock.now_minus(first_look)
            await clock.advance(ctx.redis, stream.name, known[stream.name])
    return known


async def _settle(ctx: HandlerContext, fed: int, lease: Lease) -> tuple[int, int]:
    """(applied, failed) of the changes this run fed, once all are settled or the wait is over."""
    within = min(SETTLE_MAX_S, ctx.settings.catchup_interval_minutes * 30.0)
    deadline = time.monotonic() + within
    while True:
        done, failed = await ctx.redis.hmget(keys.admin_job(ctx.job_id), ["done", "failed"])
        applied, failed_n = int(done or 0), int(failed or 0)
        if applied + failed_n >= fed or time.monotonic() >= deadline or lease.lost:
            return applied, failed_n
        await asyncio.sleep(SETTLE_POLL_S)


async def _save(ctx: HandlerContext, report: dict[str, Any]) -> None:
    report["cursors"] = await clock.cursors(ctx.redis)
    await ctx.redis.hset(keys.REPORTS, REPORT, orjson.dumps(report))


async def run(ctx: HandlerContext, progress: Progress, *, trigger: str) -> dict[str, Any]:
    """One catch-up run named ctx.job_id. Returns its report (status ok, failed, or busy: another run holds the
    lease, and this one did nothing)."""
    lease = Lease(ctx.redis, LOCK_KEY, ctx.job_id)
    if not await lease.take():
        held_by = await lease.held_by()
        log.info("catchup_busy", run_id=ctx.job_id, held_by=held_by)
        return {"status": "busy", "run_id": ctx.job_id, "held_by": held_by}
    started = time.monotonic()
    report: dict[str, Any] = {
        "run_id": ctx.job_id,
        "trigger": trigger,
        "status": "running",
        "started_at": jobrecords.now_iso(),
        "job": f"/admin/jobs/{ctx.job_id}",
    }
    tallies: dict[str, StreamTally] = {}
    fed = [0]
    async with lease.kept():
        try:
            known = await _pinned_cursors(ctx)
            for stream in STREAMS:
                cursor = known[stream.name]
                since = stream.clock.minus(cursor, ctx.settings.catchup_overlap_seconds)
                tallies[stream.name] = StreamTally(since=since, cursor=cursor)
                await _read_stream(ctx, stream, tallies[stream.name], lease, progress, fed)
            await progress(total=fed[0])
            report.update(_totals(tallies), status="settling", streams={k: asdict(v) for k, v in tallies.items()})
            await _save(ctx, report)
            applied, failed = await _settle(ctx, fed[0], lease)
            failures = {name: t.error for name, t in tallies.items() if t.error}
            report.update(
                applied=applied,
                failed=failed,
                pending=max(0, fed[0] - applied - failed),
                status="failed" if failures else "ok",
            )
            if failures:
                report["error"] = "; ".join(f"{name}: {error}" for name, error in failures.items())
        except RemoteUnavailable as exc:
            report.update(status="skipped", reason=outage_reason(exc)[:500])
            if trigger == "admin":
                raise
            log.warning("cron_skipped", cron=REPORT, remote=exc.system, reason=report["reason"])
        except Exception as exc:
            report.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        finally:
            report.update(_totals(tallies), streams={k: asdict(v) for k, v in tallies.items()})
            report["finished_at"] = jobrecords.now_iso()
            report["duration_ms"] = int((time.monotonic() - started) * 1000)
            await _save(ctx, report)
    log.info("catchup_done", **{k: report.get(k) for k in ("run_id", "status", "found", "queued", "applied", "failed")})
    return report


def _totals(tallies: dict[str, StreamTally]) -> dict[str, int]:
    return {
        "found": sum(t.found for t in tallies.values()),
        "queued": sum(t.queued for t in tallies.values()),
        "already_queued": sum(t.already_queued for t in tallies.values()),
        "in_step": sum(t.in_step for t in tallies.values()),
    }


async def _skipped(ctx: HandlerContext, down: RemoteState, trigger: str) -> dict[str, Any]:
    """A run not started because a remote is down: nothing read, no lease, no job record."""
    now = jobrecords.now_iso()
    await _pinned_cursors(ctx)
    report = {
        "run_id": ctx.job_id,
        "trigger": trigger,
        "status": "skipped",
        "reason": skip_reason(down),
        "started_at": now,
        "finished_at": now,
    }
    await _save(ctx, report)
    log.info("cron_skipped", cron=REPORT, remote=down.remote.value, reason=report["reason"])
    return report


# --- the admin job -------------------------------------------------------------------------------------------


async def catchup_job(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """`POST /admin/resync/catchup`: a run now, with the admin job's id as run id."""
    report = await run(ctx, progress, trigger="admin")
    if report["status"] == "busy":
        raise PermanentError(f"another catch-up run is going ({report['held_by']}); try again when it is done")
    if report["status"] == "failed":
        raise PermanentError(f"catch-up run {ctx.job_id} failed: {report.get('error')}")
    return report


# --- the cron ------------------------------------------------------------------------------------------------


async def catchup_cron(ctx: dict[str, Any]) -> dict[str, Any]:
    """The arq cron entry point, on the long queue. arq names the job after its scheduled time, so a retry
    of the same run (a worker died mid-run) has the same run id and re-feeds nothing twice."""
    redis = ctx["redis"]
    run_id = run_id_of(str(ctx.get("job_id") or f"{REPORT}:{int(time.time() * 1000)}"))
    services: Services = ctx["services"]
    hctx = HandlerContext(
        redis=redis,
        settings=ctx["settings"],
        job_id=run_id,
        attempt=int(ctx.get("job_try") or 1),
        services=services,
    )
    down = await blocked_remote(redis, BOTH)
    if down is not None:
        return await _skipped(hctx, down, "cron")
    if not await redis.exists(keys.admin_job(run_id)):
        await jobrecords.create(redis, run_id, CRON_KIND, {"trigger": "cron"})
    await jobrecords.update(redis, run_id, status="running", started=jobrecords.now_iso())

    async def progress(done: int | None = None, total: int | None = None) -> None:
        if total is not None:
            await jobrecords.update(redis, run_id, total=total)

    try:
        report = await run(hctx, progress, trigger="cron")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        await jobrecords.update(redis, run_id, status="failed", finished=jobrecords.now_iso(), error=error)
        raise
    status = "failed" if report["status"] == "failed" else "done"
    await jobrecords.update(redis, run_id, status=status, finished=jobrecords.now_iso(), result=report)
    return report


def cron_job(settings: Settings) -> CronJob:
    """Every CRMAGENTO_CATCHUP_INTERVAL_MINUTES on the clock (minute 0, 30 of each hour for 30; an interval
    that does not divide the hour restarts at minute 0). Two tries, so a worker restarting mid-run does not
    lose the run (arq's crons default to one)."""
    minutes = settings.catchup_interval_minutes
    if minutes < 60:
        schedule: dict[str, Any] = {"minute": set(range(0, 60, minutes)), "second": {0}}
    else:
        schedule = {"hour": set(range(0, 24, max(1, minutes // 60))), "minute": {0}, "second": {0}}
    # keep_result: a worker that enqueues the run late finds it done and does not run it again
    return cron(catchup_cron, name=REPORT, max_tries=2, keep_result=60, **schedule)
