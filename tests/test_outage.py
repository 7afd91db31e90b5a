"""A remote that is down is paused, not failed: outages longer than every retry budget end with no dead letter,
every change applied, and no admin action; a record's own failure still spends its attempts.

Everything is real: both sandboxes, the gateway, Redis and the shipped sync rules; outages are the sandboxes'
fault rules (503 on everything, a maintenance page with 200, a base path that is wrong).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from crmcore import keys
from crmcore.remotes import (
    MARK_DOWN_LUA,
    MARK_UP_LUA,
    PROBE_FIRST_MS,
    PROBE_MAX_MS,
    STABLE_UP_MS,
    Remote,
    RemoteState,
    RemoteStateName,
    read_states,
)
from sandbox.catalog import LINKED_STORE_ID
from sandbox.magento.routing import STATE
from tests.conftest import wait_for
from tests.support.stack import Stack, full_stack

# A retry budget that a 503 outage of a few seconds outlasts many times over.
TIGHT = {
    "job_max_attempts": 3,
    "job_retry_base_seconds": 0.2,
    "job_retry_max_seconds": 0.5,
    "http_retries": 1,
    "http_timeout_seconds": 2.0,
}
OUTAGE = {"match": "*", "error_rate": 1.0, "error_status": 503}


async def magento_faults(stack: Stack, *rules: dict[str, Any]) -> None:
    async with stack.magento_api.put(f"{stack.magento_url}/_sandbox/faults", json=list(rules)) as resp:
        assert resp.status == 200, await resp.text()


async def cr_faults(stack: Stack, *rules: dict[str, Any]) -> None:
    base = stack.cr_url.removesuffix("/api/v1")
    async with stack.cr_api.put(f"{base}/_sandbox/faults", json=list(rules)) as resp:
        assert resp.status == 200, await resp.text()


async def cr_products(stack: Stack, n: int) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/products", params={"limit": str(n)}))["items"]


def magento_price(stack: Stack, sku: str) -> float | None:
    product = stack.magento_app[STATE].products.get(sku.lower())
    return None if product is None else product.value("price")


def magento_qty(stack: Stack, sku: str) -> float | None:
    item = stack.magento_app[STATE].source_item(sku, "default")
    return None if item is None else item.quantity


async def status(stack: Stack) -> dict[str, Any]:
    code, body = await stack.admin("GET", "/admin/status")
    assert code == 200
    return body


async def dead_letters(stack: Stack) -> int:
    return (await status(stack))["dead_letters"]


async def synced(stack: Stack, products: list[dict[str, Any]]) -> None:
    """Wait until Magento has every product at its Cloud Retailer price."""

    async def equal() -> bool:
        for p in products:
            current = await stack.cr("GET", f"/products/{p['id']}")
            if magento_price(stack, p["sku"]) != current["price"]:
                return False
        return True

    await wait_for(equal, within=60, interval=0.2)


async def initial_sync(stack: Stack, products: list[dict[str, Any]]) -> None:
    code, body = await stack.admin("POST", "/admin/resync/products", json={})
    assert code == 202, body
    await synced(stack, [p for p in products if not _shoes(p)])


def _shoes(product: dict[str, Any]) -> bool:
    """The seeded products whose primary attribute set Magento lacks (they fail by design)."""
    return any(s["primary"] and s["name"] == "Shoes" for s in product["attribute_sets"])


async def test_a_magento_outage_longer_than_every_retry_budget_loses_nothing(redis_url: str) -> None:
    async with full_stack(redis_url, products=12, **TIGHT) as stack:
        await stack.start_worker()
        products = [p for p in await cr_products(stack, 12) if not _shoes(p)]
        await initial_sync(stack, products)
        before = await dead_letters(stack)

        await magento_faults(stack, OUTAGE)
        # Changes stream in for much longer than 3 tries with 0.5 s backoff (and one HTTP retry) last.
        for round_ in range(6):
            for i, p in enumerate(products):
                await stack.cr("PUT", f"/products/{p['id']}", json={"price": 100 + round_ * 10 + i})
                await stack.cr("PUT", f"/inventory/{LINKED_STORE_ID}/{p['sku']}", json={"on_hand": 50 + round_ + i})
            await asyncio.sleep(0.5)

        magento = (await status(stack))["remotes"]["magento"]
        assert magento["state"] == "unavailable", magento
        assert magento["parked"] > 0 and magento["parked_events"] >= magento["parked"]
        assert "503" in magento["error"] and magento["summary"].startswith("unavailable since ")

        await magento_faults(stack)
        back = time.monotonic()
        await synced(stack, products)

        async def stock_equal() -> bool:
            for p in products:
                level = await stack.cr("GET", f"/inventory/{LINKED_STORE_ID}/{p['sku']}")
                if magento_qty(stack, p["sku"]) != level["on_hand"]:
                    return False
            return True

        await wait_for(stock_equal, within=60, interval=0.2)
        converged = time.monotonic() - back
        assert converged < 60
        assert await dead_letters(stack) == before
        await wait_for(lambda: _drained(stack), within=10)
        assert (await read_states(stack.redis))[Remote.MAGENTO].up


async def _drained(stack: Stack) -> bool:
    return await stack.redis.zcard(keys.remote_parked(Remote.MAGENTO)) == 0


async def test_a_maintenance_page_answered_with_200_is_an_outage_not_a_bad_record(redis_url: str) -> None:
    async with full_stack(redis_url, products=6, **TIGHT) as stack:
        await stack.start_worker()
        products = [p for p in await cr_products(stack, 6) if not _shoes(p)]
        await initial_sync(stack, products)
        before = await dead_letters(stack)
        await magento_faults(stack, {"match": "*", "page_rate": 1.0})
        for i, p in enumerate(products):
            await stack.cr("PUT", f"/products/{p['id']}", json={"price": 300 + i})

        changed = {f"cloudretailer:product:{p['id']}" for p in products}

        async def at_rest() -> bool:
            # Parked, every one: nothing runs them again until Magento is back, so none can fail later.
            parked = await stack.redis.zrange(keys.remote_parked(Remote.MAGENTO), 0, -1)
            return changed <= {m.decode() for m in parked} or await dead_letters(stack) != before

        await wait_for(at_rest, within=20)
        assert await dead_letters(stack) == before
        await magento_faults(stack)
        await synced(stack, products)
        assert await dead_letters(stack) == before


async def test_one_record_that_fails_while_magento_answers_still_spends_its_attempts(redis_url: str) -> None:
    async with full_stack(redis_url, products=6, **TIGHT) as stack:
        await stack.start_worker()
        products = [p for p in await cr_products(stack, 6) if not _shoes(p)]
        await initial_sync(stack, products)
        before = await dead_letters(stack)
        victim = products[0]
        # Only this product's save answers 503; the probe (store configs, sources) answers.
        await magento_faults(stack, {"match": f"PUT */V1/products/{victim['sku']}", "error_rate": 1.0})
        await stack.cr("PUT", f"/products/{victim['id']}", json={"price": 777})
        await wait_for(lambda: _more_dead(stack, before), within=30)
        assert (await read_states(stack.redis))[Remote.MAGENTO].up


async def _more_dead(stack: Stack, before: int) -> bool:
    return await dead_letters(stack) > before


async def misconfigured(stack: Stack, remote: Remote) -> RemoteState:
    """The state of `remote` once a worker's start-up check has marked it misconfigured."""

    async def marked() -> RemoteState | None:
        state = (await read_states(stack.redis))[remote]
        return state if state.state is RemoteStateName.MISCONFIGURED else None

    state: RemoteState = await wait_for(marked, within=20)
    return state


async def parked(stack: Stack, remote: Remote, entities: int) -> None:
    async def enough() -> bool:
        return (await read_states(stack.redis))[remote].parked >= entities

    await wait_for(enough, within=20)


async def test_a_cloud_retailer_url_without_its_api_path_parks_its_work_and_says_which_setting(redis_url: str) -> None:
    async with full_stack(redis_url, products=4, **TIGHT) as stack:
        wrong = stack.settings.model_copy(update={"cr_url": stack.cr_url.removesuffix("/api/v1")})
        await stack.start_worker(settings=wrong)
        state = await misconfigured(stack, Remote.CLOUDRETAILER)
        assert state.setting == "CRMAGENTO_CR_URL"
        assert "/api/v1" in state.error and stack.cr_url not in state.error  # the name, never the value
        products = await cr_products(stack, 4)
        for i, p in enumerate(products):
            await stack.cr("PUT", f"/products/{p['id']}", json={"price": 40 + i})
        await parked(stack, Remote.CLOUDRETAILER, len(products))
        assert await dead_letters(stack) == 0
        _, event_list = await stack.admin("GET", "/admin/events", params={"limit": "50"})
        assert {e["status"] for e in event_list["items"] if e["type"] == "product.updated"} == {"parked"}

        # The operator fixes the setting and restarts the worker: the parked work drains by itself.
        await stack.stop_workers()
        await stack.start_worker()
        await synced(stack, [p for p in products if not _shoes(p)])
        assert (await read_states(stack.redis))[Remote.CLOUDRETAILER].up


async def test_no_linked_store_parks_the_stock_work_and_says_which_setting(redis_url: str) -> None:
    async with full_stack(redis_url, products=4, **TIGHT) as stack:
        await stack.start_worker(settings=stack.settings.model_copy(update={"cr_store_id": None}))
        state = await misconfigured(stack, Remote.CLOUDRETAILER)
        assert state.setting == "CRMAGENTO_CR_STORE_ID" and "not set" in state.error
        products = [p for p in await cr_products(stack, 4) if not _shoes(p)]
        for i, p in enumerate(products):
            await stack.cr("PUT", f"/inventory/{LINKED_STORE_ID}/{p['sku']}", json={"on_hand": 60 + i})
        await parked(stack, Remote.CLOUDRETAILER, len(products))
        assert await dead_letters(stack) == 0

        # The operator sets the store and restarts the worker: the parked work drains by itself.
        await stack.stop_workers()
        await stack.start_worker()
        await initial_sync(stack, products)  # the products exist in Magento, so their stock can follow

        async def stock_equal() -> bool:
            return all(magento_qty(stack, p["sku"]) == 60 + i for i, p in enumerate(products))

        await wait_for(stock_equal, within=60, interval=0.2)
        _, letters = await stack.admin("GET", "/admin/dead-letters")
        assert {dl["type"] for dl in letters["items"]} <= {"product.updated"}  # only the seeded Shoes products


async def test_a_flapping_remote_settles_and_loses_or_repeats_nothing(redis_url: str) -> None:
    async with full_stack(redis_url, products=8, **TIGHT) as stack:
        await stack.start_worker()
        products = [p for p in await cr_products(stack, 8) if not _shoes(p)]
        await initial_sync(stack, products)
        before = await dead_letters(stack)
        # Cloud Retailer up 2 s, down 2 s, for 16 s, while prices change.
        flapping = asyncio.create_task(_flap(stack, periods=4))
        price = 500
        while not flapping.done():
            for p in products:
                price += 1
                await stack.cr("PUT", f"/products/{p['id']}", json={"price": price})
            await asyncio.sleep(0.3)
        await flapping
        await synced(stack, products)
        assert await dead_letters(stack) == before
        outages = int(await stack.redis.hget(keys.remote(Remote.CLOUDRETAILER), "outages") or 0)
        # Each down period may be seen once; a remote that thrashed would count many more.
        assert 1 <= outages <= 4 + 1, outages
        await wait_for(lambda: _drained(stack), within=10)


async def _flap(stack: Stack, periods: int) -> None:
    """Cloud Retailer's API down (503) 2 s, up 2 s. The sandbox's own webhooks keep flowing: only the API the
    workers call is down, as in a maintenance window of its API tier."""
    for _ in range(periods):
        await cr_faults(stack, {"match": "GET /api/v1/*", "error_rate": 1.0, "error_status": 503})
        await asyncio.sleep(2)
        await cr_faults(stack)
        await asyncio.sleep(2)


async def test_the_probe_backoff_doubles_once_per_due_probe_and_restarts_after_a_stable_minute(redis) -> None:
    mark_down = redis.register_script(MARK_DOWN_LUA)
    mark_up = redis.register_script(MARK_UP_LUA)
    key = keys.remote(Remote.MAGENTO)

    async def down(now: int, probe: int = 1) -> None:
        await mark_down(keys=[key], args=["unavailable", "503", "", now, probe])

    async def backoff() -> tuple[int, int]:
        b, due = await redis.hmget(key, "backoff_ms", "next_probe_ms")
        return int(b), int(due)

    await down(1_000_000, probe=0)  # a job's failure confirmed: the outage starts, first probe in 1 s
    assert await backoff() == (PROBE_FIRST_MS, 1_001_000)
    await down(1_000_500)  # two workers starting at once before the probe is due: no doubling
    await down(1_000_500)
    assert await backoff() == (PROBE_FIRST_MS, 1_001_000)
    now = 1_001_000
    for expected in (2_000, 4_000, 8_000, 16_000, 32_000, PROBE_MAX_MS, PROBE_MAX_MS):
        await down(now)
        assert await backoff() == (expected, now + expected)
        now += expected
    # Up, then down again within a minute: a flapping remote goes on from where it was.
    await mark_up(keys=[key], args=[now])
    await down(now + 5_000, probe=0)
    assert (await backoff())[0] == PROBE_MAX_MS
    # Up for longer than a minute: a new outage starts again at 1 s.
    await mark_up(keys=[key], args=[now + 6_000])
    await down(now + 6_000 + STABLE_UP_MS + 1, probe=0)
    assert (await backoff())[0] == PROBE_FIRST_MS
