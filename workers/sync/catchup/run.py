"""One catch-up run, its report, and the two ways to start one (the periodic job and the `resync-catchup`
admin job).

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

A run needs both remotes. A scheduled run that finds one down (workers/availability/) does not start: it
writes a `skipped` report with the reason, and no cursor moves (a stream that has none yet gets it pinned, as
its first run would have). A run that meets `RemoteUnavailable` part way stops there, `skipped`, every cursor
at the last page handled; an admin run raises it instead, so its job waits for the remote and runs again.

Every run has a job record (`GET /admin/jobs/{run id}`; a scheduled run makes its own, kind "catchup"): the
changes are fed with the run's job as their origin (`jobrecords.feed_origin`, one `within` it per stream and
found change), so the workers count them applied (`done`) or failed on that record as they settle.
The run waits (a bounded time) for that; its report, with each stream's cursor, is "catchup" in the reports
hash (GET /admin/status). One run at a time: the periodic job's lease, not renewed past its loss (the
cursors only move forward, so a run that lost it stops at its next page).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from crmcore import jobrecords, keys
from workers.clients.errors import RemoteUnavailable
from workers.errors import PermanentError
from workers.feed import feed
from workers.lease import Lease, LeaseLost
from workers.periodic import ADMIN, SCHEDULE, Periodic, Run, execute
from workers.registry import HandlerContext, Progress
from workers.sync.catchup import clock, record
from workers.sync.catchup.streams import STREAMS, Found, Stream

log = structlog.get_logger(__name__)

REPORT = "catchup"  # the reports field, and the periodic job's name
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


async def _feed_page(ctx: HandlerContext, stream: Stream, page: list[Found], tally: StreamTally) -> None:
    origin = jobrecords.feed_origin(ctx.job_id)
    for found in page:
        tally.found += 1
        if found.change is None:
            tally.in_step += 1
        elif await feed(ctx.redis, ctx.settings, origin.within(f"{stream.name}:{found.key}"), [found.change]):
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


async def _read_streams(run: Run, tallies: dict[str, StreamTally], progress: Progress, fed: list[int]) -> None:
    known = await _pinned_cursors(run.ctx)
    for stream in STREAMS:
        cursor = known[stream.name]
        since = stream.clock.minus(cursor, run.ctx.settings.catchup_overlap_seconds)
        tallies[stream.name] = StreamTally(since=since, cursor=cursor)
        await _read_stream(run.ctx, stream, tallies[stream.name], run.lease, progress, fed)
    await progress(total=fed[0])


async def _catchup(run: Run) -> str:
    """One run named ctx.job_id: ok, or failed when a stream failed (the others ran)."""
    ctx = run.ctx
    if run.trigger == SCHEDULE:
        await record.open_record(ctx)
    tallies: dict[str, StreamTally] = {}
    fed = [0]
    run.fields["job"] = f"/admin/jobs/{ctx.job_id}"
    try:
        await _read_streams(run, tallies, run.progress or record.total_on_record(ctx), fed)
        run.fields.update(_totals(tallies))
        applied, failed = await _settle(ctx, fed[0], run.lease)
        run.fields.update(applied=applied, failed=failed, pending=max(0, fed[0] - applied - failed))
    finally:
        run.fields.update(_totals(tallies), streams={k: asdict(v) for k, v in tallies.items()})
        run.fields["cursors"] = await clock.cursors(ctx.redis)
    log.info("catchup_done", **{k: run.fields.get(k) for k in ("found", "queued", "applied", "failed")})
    failures = {name: t.error for name, t in tallies.items() if t.error}
    if not failures:
        return "ok"
    run.error = "; ".join(f"{name}: {error}" for name, error in failures.items())
    return "failed"


def _totals(tallies: dict[str, StreamTally]) -> dict[str, int]:
    return {
        "found": sum(t.found for t in tallies.values()),
        "queued": sum(t.queued for t in tallies.values()),
        "already_queued": sum(t.already_queued for t in tallies.values()),
        "in_step": sum(t.in_step for t in tallies.values()),
    }


async def _pin(ctx: HandlerContext) -> dict[str, Any]:
    """A run not started because a remote is down: no cursor moves (a stream without one gets it pinned)."""
    await _pinned_cursors(ctx)
    return {"cursors": await clock.cursors(ctx.redis)}


CATCHUP = Periodic(
    REPORT,
    interval=lambda settings: settings.catchup_interval_minutes * 60,
    run=_catchup,
    stop_on_loss=False,
    on_skip=_pin,
    on_report=record.close_record,
)


# --- the admin job -------------------------------------------------------------------------------------------


async def catchup_job(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """`POST /admin/resync/catchup`: a run now, with the admin job's id as run id."""
    report = await execute(CATCHUP, ctx, ADMIN, progress=progress)
    if "running" in report:
        raise PermanentError(f"another catch-up run is going ({report['running']}); try again when it is done")
    if report["status"] == "failed":
        raise PermanentError(f"catch-up run {ctx.job_id} failed: {report.get('error')}")
    return report
