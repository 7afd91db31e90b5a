"""The periodic runs and the admin jobs while a remote is down: a cron run is skipped with the reason in its
report and moves no cursor, whether the shared state says the remote is down or its calls fail part way; an
admin job waits (`waiting`, with the reason) and completes once the remote is back. No dead letter, no admin
action.

Everything is real: both sandboxes, Redis, the gateway and workers. "Down" is either the remote's shared state
(set as a worker's probe would, with MARK_DOWN_LUA) or the Magento sandbox answering 503 to everything while
the state still says `up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import keys
from crmcore.remotes import MARK_DOWN_LUA, MARK_UP_LUA, Remote, read_states
from sandbox.catalog import LINKED_STORE_ID, sku
from sandbox.magento.routing import STATE
from tests.conftest import wait_for
from tests.support.stack import Stack, full_stack
from tests.test_catchup import magento_customers, new_cr_customer, rules
from tests.test_orders import SKU_A, complete, place
from workers.availability.gate import skip_reason
from workers.clients.magento_time import parse_time
from workers.periodic import Scheduler, run_once
from workers.registry import HandlerContext, handler_context
from workers.services import Services
from workers.sync.catchup import clock
from workers.sync.catchup import run as catchup
from workers.sync.inventory import reconcile as rec
from workers.sync.orders import poll

OUTAGE = {"match": "*", "error_rate": 1.0, "error_status": 503}
QUIET = {"X-Sandbox-Suppress-Webhook": "1"}


# --- helpers ------------------------------------------------------------------------------------------------


async def mark_down(redis: Redis) -> str:
    """Magento down in the shared state, as a worker's probe records it; returns the reason a run gives."""
    now_ms = int(time.time() * 1000)
    await redis.eval(MARK_DOWN_LUA, 1, keys.remote(Remote.MAGENTO), "unavailable", "Magento 503", "", now_ms)
    return skip_reason((await read_states(redis))[Remote.MAGENTO])


async def mark_up(redis: Redis) -> None:
    await redis.eval(MARK_UP_LUA, 1, keys.remote(Remote.MAGENTO), int(time.time() * 1000))


async def magento_faults(stack: Stack, *rules: dict[str, Any]) -> None:
    async with stack.magento_api.put(f"{stack.magento_url}/_sandbox/faults", json=list(rules)) as resp:
        assert resp.status == 200, await resp.text()


def _roots(stack: Stack) -> dict[str, str]:
    return {"magento": stack.magento_url, "cloudretailer": str(stack.cr_server.make_url("")).rstrip("/")}


async def calls(stack: Stack) -> dict[str, int]:
    """Requests each sandbox answered since the last reset."""
    out = {}
    for side, root in _roots(stack).items():
        async with stack.magento_api.get(f"{root}/_sandbox/stats") as resp:
            out[side] = (await resp.json())["total"]
    return out


async def reset_calls(stack: Stack) -> None:
    for root in _roots(stack).values():
        async with stack.magento_api.delete(f"{root}/_sandbox/stats"):
            pass


async def report(redis: Redis, name: str) -> dict[str, Any]:
    raw = await redis.hget(keys.REPORTS, name)
    assert raw is not None, f"no {name} report"
    return orjson.loads(raw)


def magento_stock(stack: Stack, code: str) -> tuple[float, int] | None:
    item = stack.magento_app[STATE].source_item(code, "default")
    return None if item is None else (item.quantity, item.status)


@contextlib.asynccontextmanager
async def cron_ctx(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """What the long worker's jobs share, arq's ctx (workers/worker.py build_long_worker)."""
    services = Services.from_settings(stack.settings)
    try:
        yield {"redis": stack.redis, "settings": stack.settings, "services": services}
    finally:
        await services.close()


def handler_ctx(ctx: dict[str, Any], job_id: str) -> HandlerContext:
    return handler_context(ctx, job_id)


# --- the inventory reconciliation ---------------------------------------------------------------------------


async def test_the_reconciliation_is_skipped_while_magento_is_down_and_runs_after(redis_url: str) -> None:
    async with full_stack(redis_url, products=6, magento_products=6) as stack, cron_ctx(stack) as ctx:
        await stack.cr("PUT", f"/inventory/{LINKED_STORE_ID}/{sku(2)}", json={"on_hand": 77}, headers=QUIET)
        was = magento_stock(stack, sku(2))
        assert was != (77, 1)
        scheduler = Scheduler(ctx, [replace(rec.RECONCILE, interval=lambda _: 600.0)])
        due = time.time() - 1
        await stack.redis.hset(keys.schedule(rec.REPORT_NAME), "due", repr(due))
        reason = await mark_down(stack.redis)
        await reset_calls(stack)

        # The state says Magento is down: nothing is read, claimed or locked, and the run stays due.
        assert await tick(scheduler) == "blocked"
        shown = await report(stack.redis, rec.REPORT_NAME)
        assert (shown["status"], shown["reason"], shown["trigger"]) == ("skipped", reason, "schedule")
        assert reason.startswith("Magento is unavailable since") and "Magento 503" in reason
        assert await due_at(stack.redis) == due
        assert not await stack.redis.exists(rec.LOCK_KEY)
        assert await rec.recent_runs(stack.redis) == []
        assert await calls(stack) == {"magento": 0, "cloudretailer": 0}

        # The state says up, but Magento answers 503: the run stops at its first Magento call, skipped, and is
        # due again within a minute rather than an interval later.
        await mark_up(stack.redis)
        await magento_faults(stack, OUTAGE)
        assert await tick(scheduler) == "run"
        shown = await report(stack.redis, rec.REPORT_NAME)
        assert shown["status"] == "skipped" and shown["error_count"] == 0, shown
        assert shown["reason"].startswith("Magento is unavailable (magento 503"), shown["reason"]
        assert await due_at(stack.redis) <= time.time() + 60
        assert not await stack.redis.exists(rec.LOCK_KEY)
        assert magento_stock(stack, sku(2)) == was

        # Magento is back: the next due run fixes the drift.
        await magento_faults(stack)
        scheduler.clock = lambda: time.time() + 60
        assert await tick(scheduler) == "run"
        assert magento_stock(stack, sku(2)) == (77, 1)
        assert (await report(stack.redis, rec.REPORT_NAME))["drift_fixed"] == 1
        assert await due_at(stack.redis) > time.time() + 60


async def tick(scheduler: Scheduler) -> str:
    """One tick of the scheduler, and the run it started awaited."""
    decision = (await scheduler.tick())[rec.REPORT_NAME]
    await scheduler.idle()
    return decision


async def due_at(redis: Redis) -> float:
    return float(await redis.hget(keys.schedule(rec.REPORT_NAME), "due"))


# --- the completed-order poll -------------------------------------------------------------------------------


async def test_the_order_poll_is_skipped_while_magento_is_down_and_its_cursor_stays(redis_url: str) -> None:
    async with (
        full_stack(redis_url, products=10, customers=5, magento_products=10, magento_config={"customers": 3}) as stack,
        cron_ctx(stack) as ctx,
    ):
        order = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 4}]), quiet=True)
        cursor = order["updated_at"]
        await stack.redis.set(poll.CURSOR_KEY, cursor)
        reason = await mark_down(stack.redis)
        await reset_calls(stack)
        hctx = handler_ctx(ctx, "cron:order-poll:1")

        skipped = await poll.poll(hctx)
        assert (skipped["status"], skipped["reason"]) == ("skipped", reason)
        assert await report(stack.redis, poll.REPORT) == skipped
        assert (await stack.redis.get(poll.CURSOR_KEY)).decode() == cursor
        assert not await stack.redis.exists(poll.LOCK_KEY)
        assert await calls(stack) == {"magento": 0, "cloudretailer": 0}

        await mark_up(stack.redis)
        await magento_faults(stack, OUTAGE)
        cut_short = await poll.poll(hctx)
        assert cut_short["status"] == "skipped" and cut_short["queued"] == 0, cut_short
        assert cut_short["reason"].startswith("Magento is unavailable (magento 503"), cut_short["reason"]
        assert (await report(stack.redis, poll.REPORT))["status"] == "skipped"
        assert (await stack.redis.get(poll.CURSOR_KEY)).decode() == cursor
        assert not await stack.redis.exists(poll.LOCK_KEY)

        await magento_faults(stack)
        done = await poll.poll(handler_ctx(ctx, "cron:order-poll:2"))
        assert (done["status"], done["queued"], done["cursor"]) == ("ok", 1, cursor), done


async def test_a_first_order_poll_that_is_skipped_pins_where_it_would_have_started(redis_url: str) -> None:
    async with full_stack(redis_url, products=2, customers=0) as stack, cron_ctx(stack) as ctx:
        await mark_down(stack.redis)
        skipped = await poll.poll(handler_ctx(ctx, "cron:order-poll:1"))
        assert skipped["status"] == "skipped"
        # One interval back, as the first run would have looked: the outage's orders are read after it.
        pinned = (await stack.redis.get(poll.CURSOR_KEY)).decode()
        first_look = datetime.now(UTC) - timedelta(minutes=stack.settings.order_poll_interval_minutes)
        assert pinned == skipped["cursor"] and abs(parse_time(pinned) - first_look) < timedelta(seconds=30)


# --- the catch-up -------------------------------------------------------------------------------------------


async def test_the_catchup_is_skipped_while_magento_is_down_and_no_cursor_moves_past_what_was_read(
    redis_url: str,
) -> None:
    async with (
        full_stack(redis_url, products=6, customers=1, magento_config={"customers": 0}) as stack,
        cron_ctx(stack) as ctx,
    ):
        for stream in catchup.STREAMS:  # as an earlier run left them
            await clock.advance(stack.redis, stream.name, stream.clock.now_minus(0))
        await asyncio.sleep(0.05)
        person = await new_cr_customer(stack, "lost.in.outage@example.com")
        before = await clock.cursors(stack.redis)
        reason = await mark_down(stack.redis)
        await reset_calls(stack)

        skipped = await run_once(catchup.CATCHUP, handler_ctx(ctx, "catchup-1000"))
        assert (skipped["status"], skipped["reason"]) == ("skipped", reason)
        shown = await report(stack.redis, catchup.REPORT)
        assert shown["status"] == "skipped" and shown["cursors"] == before
        assert await clock.cursors(stack.redis) == before
        assert not await stack.redis.exists(catchup.LOCK_KEY)
        assert not await stack.redis.exists(keys.admin_job("catchup-1000"))
        assert await calls(stack) == {"magento": 0, "cloudretailer": 0}

        # The state says up, Magento answers 503: Cloud Retailer's streams are read and their changes queued,
        # then the first Magento stream stops the run. Each cursor is at most what its stream read.
        await mark_up(stack.redis)
        await magento_faults(stack, OUTAGE)
        cut_short = await run_once(catchup.CATCHUP, handler_ctx(ctx, "catchup-2000"))
        assert cut_short["status"] == "skipped", cut_short
        assert cut_short["reason"].startswith("Magento is unavailable (magento 503"), cut_short["reason"]
        assert cut_short["streams"]["magento:categories"]["error"].startswith("RemoteUnavailable")
        assert "magento:customers" not in cut_short["streams"]
        after = await clock.cursors(stack.redis)
        assert after["magento:categories"] == before["magento:categories"]
        assert after["magento:customers"] == before["magento:customers"]
        assert after["cloudretailer:customers"] == person["updated_at"]
        assert not await stack.redis.exists(catchup.LOCK_KEY)
        _, job = await stack.admin("GET", "/admin/jobs/catchup-2000")
        assert job["result"]["status"] == "skipped" and job["error"] is None, job

        # Magento is back: a run with workers applies what the outage held back.
        await magento_faults(stack)
        await stack.start_worker(rules())
        done = await run_once(catchup.CATCHUP, handler_ctx(ctx, "catchup-3000"))
        assert done["status"] == "ok" and done["queued"] >= 1, done
        await wait_for(lambda: magento_customers(stack, person["email"]), within=15)


# --- an admin job -------------------------------------------------------------------------------------------


async def test_an_admin_job_waits_for_magento_and_completes_once_it_is_back(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.cr("PUT", f"/inventory/{LINKED_STORE_ID}/{sku(3)}", json={"on_hand": 33}, headers=QUIET)
        await magento_faults(stack, OUTAGE)  # so no worker's probe finds it up before we say so
        await mark_down(stack.redis)
        await stack.start_worker()
        code, queued = await stack.admin("POST", "/admin/reconcile/inventory")
        assert code == 202, queued

        async def waiting() -> dict[str, Any] | None:
            _, job = await stack.admin("GET", queued["href"])
            return job if job["status"] == "waiting" else None

        job = await wait_for(waiting, within=15)
        assert job["reason"].startswith("Magento is unavailable since"), job
        assert job["finished"] is None and job["error"] is None
        await asyncio.sleep(4.5)  # a couple of polls: still waiting, not failed, and not an arq retry
        _, job = await stack.admin("GET", queued["href"])
        assert job["status"] == "waiting", job
        assert await stack.redis.get(f"arq:retry:admin:{queued['job_id']}") == b"1"

        await magento_faults(stack)
        await mark_up(stack.redis)

        async def finished() -> dict[str, Any] | None:
            _, job = await stack.admin("GET", queued["href"])
            return job if job["status"] in ("done", "failed") else None

        job = await wait_for(finished, within=30)
        assert job["status"] == "done" and job["reason"] is None, job
        assert job["result"]["status"] == "ok" and job["result"]["drift_fixed"] == 1
        assert magento_stock(stack, sku(3)) == (33, 1)


async def test_an_admin_job_cut_short_by_magento_503s_runs_again_once_they_stop(redis_url: str) -> None:
    async with full_stack(redis_url, products=5, magento_products=5) as stack:
        await stack.cr("PUT", f"/inventory/{LINKED_STORE_ID}/{sku(4)}", json={"on_hand": 44}, headers=QUIET)
        await stack.start_worker()
        await magento_faults(stack, {**OUTAGE, "match": "POST */inventory/source-items"})
        code, queued = await stack.admin("POST", "/admin/reconcile/inventory")
        assert code == 202, queued

        async def waiting() -> dict[str, Any] | None:
            _, job = await stack.admin("GET", queued["href"])
            return job if job["status"] == "waiting" else None

        job = await wait_for(waiting, within=20)
        assert job["reason"].startswith("Magento is unavailable"), job
        assert magento_stock(stack, sku(4)) != (44, 1)

        await magento_faults(stack)

        async def finished() -> dict[str, Any] | None:
            _, job = await stack.admin("GET", queued["href"])
            return job if job["status"] in ("done", "failed") else None

        job = await wait_for(finished, within=60)
        assert job["status"] == "done", job
        assert job["result"]["status"] == "ok" and job["result"]["drift_fixed"] == 1
        assert magento_stock(stack, sku(4)) == (44, 1)
