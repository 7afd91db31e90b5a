"""Handlers for the process-level tests, loaded by `crmagento worker --handlers-module`.

The effect is idempotent the way real handlers are (a natural key guards it: SKU, external_ref), so a
job that runs again after a crash does not repeat it."""

from __future__ import annotations

import asyncio

from crmcore.events import AcceptedEvent, Source
from workers.registry import HandlerContext, Registry


async def effect_then_hang_once(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    for event in events:
        if await ctx.redis.set(f"test:effect:{event.id}", 1, nx=True):
            await ctx.redis.incr("test:effects")
    await ctx.redis.rpush("test:runs", ctx.attempt)
    if await ctx.redis.set("test:hang:armed", 1, nx=True):
        # The first run stops here, after its effect and before "done": the test kills the worker now.
        await asyncio.sleep(3600)


async def slow(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    await ctx.redis.rpush("test:runs", ctx.attempt)
    await asyncio.sleep(float(await ctx.redis.get("test:slow_seconds") or 1))
    await ctx.redis.rpush("test:finished", events[-1].id)


def register(registry: Registry) -> None:
    registry.register(Source.CLOUDRETAILER, "product.updated", effect_then_hang_once)
    registry.register(Source.CLOUDRETAILER, "customer.updated", slow)
