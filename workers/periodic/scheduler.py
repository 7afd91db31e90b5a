"""The one way periodic work runs: reconciliation, order poll, catch-up and housekeeping.

A loop on the long worker of every worker process, not an arq cron. Every TICK_S it asks Redis, for each
job, whether a run is due; one Lua script decides and claims it, so however many workers tick, one runs it.
A loop rather than one arq cron ticking every minute, because a tick that starts a run would hold one of the
long worker's arq slots for as long as the run lasts: four admin jobs would then hold back housekeeping and
the order poll, and an hour-long reconciliation would hold a slot and its tick. The loop's runs are tasks of
their own, bounded by CRMAGENTO_ADMIN_JOB_TIMEOUT_SECONDS (workers/periodic/job.py), stopped with the
worker (given the shutdown grace, then cancelled).

The schedule of a job is a Redis hash (`keys.schedule(name)`): `due` (epoch seconds), and while a run is
claimed and not finished its `run` id and `tries`. Due-ness comes from `due`, not from the clock's minutes:
an interval that does not divide the hour (90 minutes) keeps its cadence, and a restart does not shift it.
The first tick ever only sets the cadence: the first run comes one interval later. A shortened interval takes
effect within one new interval.

The claim (one script, so a second worker never runs the same due run):
- a run claimed and still holding its lease is running: nothing to do, and a due time passing meanwhile is
  consumed (`busy`), so an overrunning run is not followed by a burst;
- a run claimed whose lease is gone crashed or lost its worker: it is tried again with the same run id, once
  (MAX_TRIES), then given up until its next due time;
- a due run while a remote it needs is down is not claimed: it stays due and reports `skipped` with the
  reason (once per outage, not every tick);
- a due run while another run holds the job's lease (an admin run) is consumed, `busy`;
- otherwise it is claimed, the next due time set one interval on (keeping the phase after a long outage) and
  the lease taken for the run, in the same script.
A run cut short by an outage is due again AFTER_OUTAGE_S later (or one interval, if shorter).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis

from crmcore import keys
from crmcore.errors import clip
from crmcore.remotes import Remote, RemoteState
from crmcore.settings import Settings
from workers.availability.gate import blocked_remote, skip_reason
from workers.lease import LEASE_MS, Lease
from workers.periodic.job import SCHEDULE, Periodic, Run, new_run_id, skip_report, supervise
from workers.registry import handler_context

log = structlog.get_logger(__name__)

TICK_S = 5.0
MAX_TRIES = 2
AFTER_OUTAGE_S = 60.0

# KEYS[1] the schedule hash, KEYS[2] the job's lease. ARGV: now, interval, a fresh run id, max tries, the
# reason a remote it needs is down ('' when none), lease ms. Returns {decision, run id or holder, try}.
_CLAIM_LUA = """
local now, interval, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local due = tonumber(redis.call('HGET', KEYS[1], 'due'))
if not due or due > now + interval then
  redis.call('HSET', KEYS[1], 'due', tostring(now + interval))
  return {'scheduled'}
end
local function consume()
  local nxt = due + interval
  if nxt <= now then nxt = due + (math.floor((now - due) / interval) + 1) * interval end
  redis.call('HSET', KEYS[1], 'due', tostring(nxt))
end
local holder = redis.call('GET', KEYS[2])
local run = redis.call('HGET', KEYS[1], 'run')
local tries = 0
if run then
  if holder == run then
    if now < due then return {'running', run} end
    consume()
    return {'busy', run}
  end
  tries = tonumber(redis.call('HGET', KEYS[1], 'tries')) or max
  if tries >= max then
    redis.call('HDEL', KEYS[1], 'run', 'tries')
    return {'gave-up', run}
  end
elseif now < due then
  return {'not-due'}
end
if ARGV[5] ~= '' then
  if redis.call('HGET', KEYS[1], 'skipped') == ARGV[5] then return {'held'} end
  redis.call('HSET', KEYS[1], 'skipped', ARGV[5])
  return {'blocked'}
end
if holder then
  if run then redis.call('HDEL', KEYS[1], 'run', 'tries') else consume() end
  return {'busy', holder}
end
if not run then
  run = ARGV[3]
  consume()
end
redis.call('HSET', KEYS[1], 'run', run, 'tries', tries + 1)
redis.call('HDEL', KEYS[1], 'skipped')
redis.call('SET', KEYS[2], run, 'PX', ARGV[6])
return {'run', run, tostring(tries + 1)}
"""

# KEYS[1] the schedule hash, KEYS[2] the lease. ARGV: the run id, '1' to leave it claimed for a retry, an
# earlier due time ('' to keep the one set at the claim). Frees the lease with the claim, in one step: a run
# seen claimed without its lease is taken for crashed.
_SETTLE_LUA = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] or ARGV[2] == '1' then return 0 end
redis.call('HDEL', KEYS[1], 'run', 'tries')
local due = tonumber(redis.call('HGET', KEYS[1], 'due'))
if ARGV[3] ~= '' and (not due or tonumber(ARGV[3]) < due) then redis.call('HSET', KEYS[1], 'due', ARGV[3]) end
return 1
"""

_URL_OF = {Remote.MAGENTO: "magento_url", Remote.CLOUDRETAILER: "cr_url"}


def configured(job: Periodic, settings: Settings) -> bool:
    """A job whose remotes have no URL (a test build, `--handlers-module`) is not scheduled."""
    return all(getattr(settings, _URL_OF[remote]) for remote in job.needs)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Scheduler:
    """The schedule of one worker process. `worker` holds what the runs share (arq's ctx of the long worker:
    redis, settings, services); `clock` is time.time but for tests."""

    def __init__(
        self,
        worker: Mapping[str, Any],
        jobs: Sequence[Periodic],
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float | None = None,
    ) -> None:
        self.worker = worker
        self.redis: Redis = worker["redis"]
        self.settings: Settings = worker["settings"]
        self.jobs = [job for job in jobs if configured(job, self.settings)]
        self.clock = clock
        shortest = min((job.interval(self.settings) for job in self.jobs), default=TICK_S * 4)
        # Test builds schedule jobs seconds apart: the tick follows, a quarter of the shortest interval.
        self.tick_s = tick_s or max(0.05, min(TICK_S, shortest / 4))
        self.runs: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None

    # --- the loop -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.create_task(self._ticking())

    def stop_claiming(self) -> None:
        if self._loop is not None:
            self._loop.cancel()

    async def close(self, grace_s: float) -> None:
        """No new run; those going get `grace_s` to finish, then are cancelled (their lease is released, and
        another worker tries them again)."""
        self.stop_claiming()
        if self._loop is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        runs = list(self.runs.values())
        if not runs:
            return
        _, going = await asyncio.wait(runs, timeout=grace_s)
        for task in going:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)

    async def idle(self) -> None:
        """Until the runs this worker started have ended (tests)."""
        while self.runs:
            await asyncio.gather(*self.runs.values(), return_exceptions=True)

    async def _ticking(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # Redis away: the worker reconnects or stops; the next tick tries again
                log.warning("scheduler_tick_failed", error=clip(f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(self.tick_s)

    # --- one tick -----------------------------------------------------------------------------------------
    async def tick(self) -> dict[str, str]:
        """Claim and start every due run; returns each job's decision (runs go on in the background)."""
        now = self.clock()
        decisions: dict[str, str] = {}
        for job in self.jobs:
            if job.name in self.runs:
                decisions[job.name] = "running"
                continue
            decisions[job.name] = await self._consider(job, now)
        return decisions

    async def _consider(self, job: Periodic, now: float) -> str:
        down = await blocked_remote(self.redis, job.needs) if job.needs else None
        decision, *rest = await self._claim(job, now, skip_reason(down) if down is not None else "")
        if decision == "run":
            self._start(job, rest[0], int(rest[1]))
        elif decision == "blocked" and down is not None:
            await self._skipped(job, down)
        elif decision == "busy":  # a due time consumed while a run goes on
            log.info("periodic_busy", job=job.name, running=rest[0])
        elif decision == "gave-up":
            log.warning("periodic_gave_up", job=job.name, run_id=rest[0], tries=MAX_TRIES)
        return decision

    async def _claim(self, job: Periodic, now: float, blocked: str) -> list[str]:
        args = (repr(now), repr(float(job.interval(self.settings))), new_run_id(job.name), MAX_TRIES, blocked, LEASE_MS)
        answer = await self.redis.eval(_CLAIM_LUA, 2, keys.schedule(job.name), job.lease_key, *args)
        return [_text(part) for part in answer]

    async def _skipped(self, job: Periodic, down: RemoteState) -> None:
        await skip_report(job, handler_context(self.worker, new_run_id(job.name)), down, SCHEDULE)

    def _start(self, job: Periodic, run_id: str, attempt: int) -> None:
        task = asyncio.create_task(self._run(job, run_id, attempt))
        self.runs[job.name] = task
        task.add_done_callback(lambda _: self.runs.pop(job.name, None))

    async def _run(self, job: Periodic, run_id: str, attempt: int) -> None:
        ctx = handler_context(self.worker, run_id, attempt)
        run = Run(ctx, SCHEDULE, Lease(self.redis, job.lease_key, run_id), release_lease=False)
        try:
            report = await supervise(job, run)
        except asyncio.CancelledError:
            # The worker is stopping: another one tries it again (this try counts).
            await self._settle(job, run_id, retry=True)
            raise
        except Exception:
            # Stored `failed` already. Left claimed, the next tick tries it again; after the last try it is
            # let go, and the next run comes at its due time.
            await self._settle(job, run_id, retry=attempt < MAX_TRIES)
            return
        soon = self.clock() + min(AFTER_OUTAGE_S, job.interval(self.settings))
        await self._settle(job, run_id, due=soon if report["status"] == "skipped" else None)

    async def _settle(self, job: Periodic, run_id: str, *, retry: bool = False, due: float | None = None) -> None:
        args = (run_id, "1" if retry else "0", repr(due) if due else "")
        try:
            await self.redis.eval(_SETTLE_LUA, 2, keys.schedule(job.name), job.lease_key, *args)
        except Exception as exc:  # left claimed: once its lease expires, the next tick tries it once more
            log.warning("periodic_not_settled", job=job.name, run_id=run_id, error=clip(str(exc)))
