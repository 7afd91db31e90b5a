"""The scheduler of periodic work (workers/periodic/) against a real Redis, with a clock the tests move: due
times are honoured whatever the interval and across restarts, a due run is run by one worker, a crashed run is
tried once more with its run id, a remote that is down holds a due run back with a `skipped` report, and
every job, the shipped ones included, reports in one shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from crmcore import keys
from crmcore.remotes import MARK_DOWN_LUA, MARK_UP_LUA, Remote, read_states
from crmcore.settings import Settings
from tests.support.stack import full_stack
from workers.availability.gate import skip_reason
from workers.clients.errors import RemoteUnavailable
from workers.periodic import MAX_TRIES, Periodic, Run, Scheduler, execute, run_once
from workers.registry import handler_context
from workers.services import Services
from workers.sync.catchup.run import CATCHUP
from workers.sync.inventory.reconcile import RECONCILE
from workers.sync.orders.poll import POLL
from workers.worker import HOUSEKEEPING

T0 = 1_800_000_000.0  # a whole hour (epoch seconds), so "on the hour" is easy to see
MINUTE, HOUR = 60.0, 3600.0
ENVELOPE = ["name", "run_id", "trigger", "status", "started", "finished", "seconds"]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorded:
    """A job's run function that records each run and does what the test says: return a status, raise, or
    wait for `release`."""

    def __init__(self, *outcomes: str | BaseException) -> None:
        self.outcomes = list(outcomes)
        self.runs: list[tuple[str, int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, run: Run) -> str:
        self.runs.append((run.run_id, run.ctx.attempt))
        run.fields["n"] = len(self.runs)
        await self.release.wait()
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def linked(settings: Settings) -> Settings:
    """Settings naming both remotes, so jobs that need them are scheduled (nothing calls them here)."""
    return settings.model_copy(update={"magento_url": "http://127.0.0.1:9", "cr_url": "http://127.0.0.1:9/api/v1"})


@pytest.fixture
async def worker(redis: Redis, linked: Settings) -> AsyncIterator[dict[str, Any]]:
    services = Services()
    yield {"redis": redis, "settings": linked, "services": services}
    await services.close()


def job(run: Recorded, *, every: float = HOUR, needs: tuple[Remote, ...] = ()) -> Periodic:
    return Periodic("test-job", interval=lambda _: every, run=run, needs=needs)


async def tick(scheduler: Scheduler, at: float) -> str:
    """One tick at `at`, and the runs it started awaited; the test job's decision."""
    assert isinstance(scheduler.clock, Clock)
    scheduler.clock.now = at
    decision = (await scheduler.tick())["test-job"]
    await scheduler.idle()
    return decision


async def due(redis: Redis, name: str = "test-job") -> float:
    return float(await redis.hget(keys.schedule(name), "due"))


async def stored(redis: Redis, name: str = "test-job") -> dict[str, Any]:
    raw = await redis.hget(keys.REPORTS, name)
    assert raw is not None, f"no {name} report"
    return orjson.loads(raw)


# --- due times ----------------------------------------------------------------------------------------------


async def test_a_90_minute_interval_runs_every_90_minutes_and_a_restart_does_not_shift_it(
    worker: dict[str, Any], redis: Redis
) -> None:
    runs = Recorded()
    every = 90 * MINUTE
    first = Scheduler(worker, [job(runs, every=every)], clock=Clock())
    # The first tick ever only sets the cadence.
    assert await tick(first, T0) == "scheduled" and await due(redis) == T0 + every
    assert await tick(first, T0 + HOUR) == "not-due"  # an hourly clock would have run it here
    assert await tick(first, T0 + every - 1) == "not-due"
    assert await tick(first, T0 + every + 2) == "run"  # a tick a little late
    assert await due(redis) == T0 + 2 * every  # the cadence keeps its phase
    assert await tick(first, T0 + 2 * HOUR) == "not-due"

    # A restart (a new worker, nothing in memory) keeps the due time Redis holds.
    restarted = Scheduler(worker, [job(runs, every=every)], clock=Clock())
    assert await tick(restarted, T0 + 2 * every - 5) == "not-due"
    assert await tick(restarted, T0 + 2 * every) == "run"
    assert len(runs.runs) == 2 and runs.runs[0][0] != runs.runs[1][0]
    # After a long stop the next run comes at once, and the phase is still that of T0.
    assert await tick(restarted, T0 + 7 * every + 10) == "run"
    assert await due(redis) == T0 + 8 * every


async def test_a_shortened_interval_takes_effect_within_one_new_interval(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded()
    daily = Scheduler(worker, [job(runs, every=24 * HOUR)], clock=Clock())
    assert await tick(daily, T0) == "scheduled"
    hourly = Scheduler(worker, [job(runs, every=HOUR)], clock=Clock())
    assert await tick(hourly, T0 + MINUTE) == "scheduled" and await due(redis) == T0 + MINUTE + HOUR
    assert await tick(hourly, T0 + MINUTE + HOUR) == "run"


# --- one run across workers ---------------------------------------------------------------------------------


async def test_a_second_worker_does_not_run_the_same_due_run(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded()
    runs.release.clear()
    workers = [Scheduler(worker, [job(runs)], clock=Clock(T0 + HOUR)) for _ in range(5)]
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    decisions = await asyncio.gather(*(w.tick() for w in workers))
    assert sorted(d["test-job"] for d in decisions) == ["run"] + ["running"] * 4
    runs.release.set()
    await asyncio.gather(*(w.idle() for w in workers))
    assert [await w.tick() for w in workers] == [{"test-job": "not-due"}] * 5
    assert len(runs.runs) == 1 and await due(redis) == T0 + 2 * HOUR
    assert not await redis.exists(keys.lock("test-job"))


async def test_a_run_still_going_when_the_next_is_due_is_not_started_twice(
    worker: dict[str, Any], redis: Redis
) -> None:
    runs = Recorded()
    runs.release.clear()
    mine, other = (Scheduler(worker, [job(runs, every=MINUTE)], clock=Clock()) for _ in range(2))
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    mine.clock.now = other.clock.now = T0  # type: ignore[attr-defined]
    assert (await mine.tick())["test-job"] == "run"
    assert await tick_only(other, T0 + 30) == "running"
    assert await tick_only(other, T0 + 2 * MINUTE) == "busy"  # that due time is consumed, not queued up
    runs.release.set()
    await mine.idle()
    assert await tick_only(other, T0 + 2 * MINUTE + 1) == "not-due"
    assert len(runs.runs) == 1 and await due(redis) == T0 + 3 * MINUTE


async def tick_only(scheduler: Scheduler, at: float) -> str:
    scheduler.clock.now = at  # type: ignore[attr-defined]
    return (await scheduler.tick())["test-job"]


async def test_an_admin_run_holding_the_lease_makes_the_due_run_busy(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded()
    scheduler = Scheduler(worker, [job(runs)], clock=Clock())
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    await redis.set(keys.lock("test-job"), "admin-run-1")
    assert await tick(scheduler, T0) == "busy"
    assert runs.runs == [] and await due(redis) == T0 + HOUR
    answer = await execute(job(runs), handler_context(worker, "admin-run-2"), "admin")
    assert (answer["status"], answer["running"]) == ("skipped", "admin-run-1")
    assert "admin-run-1 is still running" in answer["reason"]
    assert not await redis.hexists(keys.REPORTS, "test-job")  # the last report stays that of a run that ran


# --- crashes ------------------------------------------------------------------------------------------------


async def test_a_run_that_crashes_is_retried_once_with_its_run_id(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded(ValueError("boom 1"), ValueError("boom 2"))
    scheduler = Scheduler(worker, [job(runs)], clock=Clock())
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    assert await tick(scheduler, T0) == "run"
    report = await stored(redis)
    assert (report["status"], report["error"], report["n"]) == ("failed", "ValueError: boom 1", 1)
    assert await tick(scheduler, T0 + 5) == "run"
    assert (await stored(redis))["error"] == "ValueError: boom 2"
    assert runs.runs == [(runs.runs[0][0], 1), (runs.runs[0][0], 2)] and MAX_TRIES == 2
    # Given up: the next run comes at its due time, with a new id.
    assert await tick(scheduler, T0 + 10) == "not-due"
    assert await tick(scheduler, T0 + HOUR) == "run"
    assert runs.runs[2][0] != runs.runs[0][0] and (await stored(redis))["status"] == "ok"


async def test_a_run_whose_worker_stops_is_taken_over_by_another(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded()
    runs.release.clear()
    stopping, other = (Scheduler(worker, [job(runs)], clock=Clock()) for _ in range(2))
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    assert await tick_only(stopping, T0) == "run"
    await asyncio.sleep(0.05)
    await stopping.close(grace_s=0.1)  # the run does not finish within the grace: cancelled
    runs.release.set()
    assert await tick(other, T0 + 5) == "run"
    assert runs.runs == [(runs.runs[0][0], 1), (runs.runs[0][0], 2)]
    assert (await stored(redis))["status"] == "ok"


# --- remotes ------------------------------------------------------------------------------------------------


async def mark_magento_down(redis: Redis) -> str:
    await redis.eval(
        MARK_DOWN_LUA, 1, keys.remote(Remote.MAGENTO), "unavailable", "Magento 503", "", int(time.time() * 1000)
    )
    return skip_reason((await read_states(redis))[Remote.MAGENTO])


async def test_a_remote_down_makes_a_skipped_report_with_the_reason_and_keeps_the_due_time(
    worker: dict[str, Any], redis: Redis
) -> None:
    runs = Recorded()
    pinned: list[str] = []

    async def on_skip(ctx: Any) -> dict[str, Any]:
        pinned.append(ctx.job_id)
        return {"cursor": "kept"}

    needs_magento = replace(job(runs, needs=(Remote.MAGENTO,)), on_skip=on_skip)
    scheduler = Scheduler(worker, [needs_magento], clock=Clock())
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    reason = await mark_magento_down(redis)

    assert await tick(scheduler, T0 + 1) == "blocked"
    report = await stored(redis)
    assert (report["status"], report["reason"], report["trigger"], report["cursor"]) == (
        "skipped",
        reason,
        "schedule",
        "kept",
    )
    assert reason.startswith("Magento is unavailable since") and await due(redis) == T0
    assert not await redis.exists(keys.lock("test-job")) and runs.runs == []
    # Every tick of the outage does not write it again.
    assert await tick(scheduler, T0 + 6) == "held" and (await stored(redis))["run_id"] == report["run_id"]
    assert len(pinned) == 1

    await redis.eval(MARK_UP_LUA, 1, keys.remote(Remote.MAGENTO), int(time.time() * 1000))
    assert await tick(scheduler, T0 + 11) == "run"
    assert (await stored(redis))["status"] == "ok" and await due(redis) == T0 + HOUR


async def test_a_run_cut_short_by_an_outage_is_skipped_and_due_again_soon(worker: dict[str, Any], redis: Redis) -> None:
    runs = Recorded(RemoteUnavailable("magento", 503, "Service Unavailable"))
    scheduler = Scheduler(worker, [job(runs, needs=(Remote.MAGENTO,))], clock=Clock())
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    assert await tick(scheduler, T0) == "run"
    report = await stored(redis)
    assert report["status"] == "skipped" and report["reason"].startswith("Magento is unavailable (magento 503")
    assert report["n"] == 1  # what it did before it stopped
    assert await due(redis) == T0 + MINUTE  # not an hour later
    assert await tick(scheduler, T0 + MINUTE) == "run"


async def test_a_job_whose_remotes_have_no_url_is_not_scheduled(settings: Settings, redis: Redis) -> None:
    needs_both = replace(job(Recorded(), needs=(Remote.MAGENTO, Remote.CLOUDRETAILER)), name="needs-both")
    scheduler = Scheduler({"redis": redis, "settings": settings, "services": Services()}, [needs_both, HOUSEKEEPING])
    assert [j.name for j in scheduler.jobs] == ["housekeeping"]


# --- one shape --------------------------------------------------------------------------------------------


def assert_envelope(report: dict[str, Any], name: str, status: str) -> None:
    head = [k for k in report if k in ENVELOPE]
    assert head == ENVELOPE and list(report)[:4] == ENVELOPE[:4], list(report)
    assert (report["name"], report["status"]) == (name, status)
    assert report["trigger"] in ("schedule", "admin")
    assert report["started"].endswith("Z") and report["finished"].endswith("Z")
    assert report["started"] <= report["finished"] and report["seconds"] >= 0


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("ok", "ok"),
        ("partial", "partial"),
        (KeyError("sku"), "failed"),
        (RemoteUnavailable("cloudretailer", 502, "Bad Gateway"), "skipped"),
    ],
)
async def test_every_outcome_reports_in_the_same_shape(
    worker: dict[str, Any], redis: Redis, outcome: Any, status: str
) -> None:
    scheduler = Scheduler(worker, [job(Recorded(outcome))], clock=Clock())
    await redis.hset(keys.schedule("test-job"), "due", repr(T0))
    await tick(scheduler, T0)
    report = await stored(redis)
    assert_envelope(report, "test-job", status)
    assert report["n"] == 1
    assert ("error" in report) is (status == "failed") and ("reason" in report) is (status == "skipped")


async def test_the_shipped_jobs_report_in_the_same_shape(redis_url: str) -> None:
    """Each shipped job run once for real, against both sandboxes: the same envelope first, then its own."""
    async with full_stack(redis_url, products=4, customers=1, magento_products=4) as stack:
        await stack.start_worker()  # applies what the catch-up feeds, which it waits for
        worker = {"redis": stack.redis, "settings": stack.settings, "services": Services.from_settings(stack.settings)}
        try:
            own = {"housekeeping": "healed", "reconcile-inventory": "drift_found", "order-poll": "cursor"}
            own["catchup"] = "cursors"
            for shipped in (HOUSEKEEPING, replace(CATCHUP, interval=lambda _: 2.0), RECONCILE, POLL):
                report = await run_once(shipped, handler_context(worker, f"{shipped.name}-run-1"))
                assert_envelope(report, shipped.name, "ok")
                assert report == await stored(stack.redis, shipped.name)
                assert own[shipped.name] in report
            # And skipped the same way while a remote is down.
            await mark_magento_down(stack.redis)
            for shipped in (CATCHUP, RECONCILE, POLL):
                skipped = await run_once(shipped, handler_context(worker, f"{shipped.name}-run-2"))
                assert_envelope(skipped, shipped.name, "skipped")
                assert skipped["reason"].startswith("Magento is unavailable since")
        finally:
            await worker["services"].close()


def test_each_shipped_job_leases_the_lock_the_key_map_names() -> None:
    assert (RECONCILE.lease_key, POLL.lease_key, CATCHUP.lease_key) == (
        keys.RECONCILE_LOCK,
        keys.ORDER_POLL_LOCK,
        keys.CATCHUP_LOCK,
    )
