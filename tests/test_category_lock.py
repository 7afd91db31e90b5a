"""The per-category creation lock: short and renewed while held, so two workers needing one new category create
it once even when creating it outlasts the lease, and a lock left by a killed worker clears within its lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from crmcore import keys
from sandbox.cloudretailer.keys import STATE as CR_STATE
from sandbox.magento.routing import STATE as MAGENTO_STATE
from tests.support.stack import Stack, full_stack
from workers.registry import HandlerContext
from workers.services import Services
from workers.sync.catalog import categories


@contextlib.asynccontextmanager
async def context(redis_url: str) -> AsyncIterator[tuple[Stack, HandlerContext]]:
    async with full_stack(redis_url, products=1, customers=0) as stack:
        services = Services.from_settings(stack.settings)
        try:
            yield (
                stack,
                HandlerContext(redis=stack.redis, settings=stack.settings, job_id="t", attempt=1, services=services),
            )
        finally:
            await services.close()


def deepest_category(stack: Stack) -> tuple[str, str]:
    rows = stack.cr_app[CR_STATE].categories.rows.values()
    leaf = max(rows, key=lambda c: c.level)
    return leaf.id, leaf.name


def magento_names(stack: Stack) -> list[str]:
    return [c.name for c in stack.magento_app[MAGENTO_STATE].categories.values()]


async def test_a_creation_longer_than_the_lease_still_creates_the_category_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(categories, "LOCK_LEASE_MS", 300)
    monkeypatch.setattr(categories, "LOCK_RENEW_S", 0.05)
    async with context(redis_url) as (stack, ctx):
        cr_id, name = deepest_category(stack)
        # Each category save takes twice the lease: only renewal keeps the second caller out.
        faults = [{"match": "POST /rest/*/V1/categories", "latency_ms": 600}]
        async with stack.magento_api.put(f"{stack.magento_url}/_sandbox/faults", json=faults) as resp:
            assert resp.status == 200
        first, second = await asyncio.gather(
            categories.magento_id_for(ctx, cr_id), categories.magento_id_for(ctx, cr_id)
        )
        assert first == second
        assert magento_names(stack).count(name) == 1


async def test_a_lock_left_by_a_killed_worker_clears_within_its_lease(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(categories, "LOCK_LEASE_MS", 1000)
    async with context(redis_url) as (stack, ctx):
        cr_id, name = deepest_category(stack)
        # What a worker SIGKILLed mid-creation leaves: the lock, with nobody renewing it.
        await stack.redis.set(keys.category_lock(f"cr:{cr_id}"), "killed-worker", px=categories.LOCK_LEASE_MS)
        started = time.monotonic()
        magento_id = await categories.magento_id_for(ctx, cr_id)
        waited = time.monotonic() - started
        assert 0.8 < waited < 5, waited  # blocked until the dead holder's lease ran out, then went on
        assert magento_id and magento_names(stack).count(name) == 1
