"""Handlers for the takeover tests, loaded by `crmagento worker --handlers-module`.

`read_pause_write` is a sync rule in miniature: it reads the source's current value, may be held in the
middle (where the test freezes its worker), and writes what it read through the same fence check the HTTP
clients make before every write."""

from __future__ import annotations

import asyncio

from crmcore.events import AcceptedEvent, Source
from workers.fence import check_fence
from workers.registry import HandlerContext, Registry


async def read_pause_write(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    value = await ctx.redis.get("test:source")
    await ctx.redis.rpush("test:started", ctx.job_id)
    pause = await ctx.redis.getdel("test:pause")  # only the first run is held
    if pause:
        await asyncio.sleep(float(pause))
    await check_fence()
    await ctx.redis.rpush("test:writes", value or b"")


def register(registry: Registry) -> None:
    registry.register(Source.CLOUDRETAILER, "product.updated", read_pause_write, needs=())
