"""Handlers and a periodic job for the scale-out and Sentinel tests, loaded by `crmagento worker --handlers-module`.

Every effect names the worker process that made it (its pid), so a test can tell which of several workers
ran what. The handler stands for a real sync rule: it reads the entity's current state (a Redis key the
test sets before each webhook, as the source system would change before it notifies), takes a while to
"write" it, then records what it applied. Two runs for one entity at once are caught with a marker key.
"""

from __future__ import annotations

import asyncio
import os

from crmcore import keys
from crmcore.events import AcceptedEvent, Source
from workers.periodic import Periodic, Run
from workers.registry import HandlerContext, Registry

PID = str(os.getpid())
TICK_SECONDS = 2  # the test job's interval

# Release the running-marker only if this run set it: an overlapping run must not clear the first one's.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


async def record(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    entity = events[-1].entity
    me = f"{PID}:{ctx.job_id}"
    running = f"test:running:{entity}"
    if not await ctx.redis.set(running, me, nx=True, px=30_000):
        await ctx.redis.hincrby("test:overlaps", entity, 1)
    try:
        state = await ctx.redis.get(f"test:state:{entity}")
        await asyncio.sleep(float(await ctx.redis.get("test:handler_seconds") or 0.02))
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(f"test:applied:{entity}", state or b"-")
            for event in events:
                pipe.hincrby("test:seen", event.id, 1)
                pipe.hset("test:seen_by", event.id, PID)
            pipe.hincrby("test:events_by_worker", PID, len(events))
            pipe.hincrby("test:runs_by_worker", PID, 1)
            await pipe.execute()
    finally:
        await ctx.redis.eval(_RELEASE, 1, running, me)


async def tick(run: Run) -> str:
    """A periodic job scheduled the way the shipped ones are (workers/periodic/). Counts its runs per due time:
    the scheduler that claimed this run set the next due time, this one's plus the interval, in the same step."""
    due = float(await run.ctx.redis.hget(keys.schedule(TICK.name), "due") or 0)
    scheduled_ms = str(round((due - TICK_SECONDS) * 1000))
    async with run.ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hincrby("test:tick_runs", scheduled_ms, 1)
        pipe.hset("test:tick_by", scheduled_ms, PID)
        await pipe.execute()
    return "ok"


TICK = Periodic("test-tick", interval=lambda _: float(TICK_SECONDS), run=tick, needs=())


def register(registry: Registry) -> None:
    registry.register(Source.CLOUDRETAILER, "category.updated", record)
    registry.register(Source.CLOUDRETAILER, "customer.updated", record)
    registry.register_periodic(TICK)
