"""Catch-up sync end to end: changes whose webhook or callback was lost (the sandboxes' header
`X-Sandbox-Suppress-Webhook: 1`) reach the other side after one catch-up run, through the real gateway,
workers and handlers; a change that already arrived by webhook, and a second run, write nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from crmcore import keys
from tests.conftest import wait_for
from tests.support.stack import Stack, full_stack
from workers import sync
from workers.binder import Binder
from workers.lease import Lease
from workers.periodic import Run, run_once
from workers.registry import Registry, handler_context
from workers.services import Services
from workers.sync import catchup
from workers.sync.catchup import clock, run

QUIET = {"X-Sandbox-Suppress-Webhook": "1"}
WRITES = ("POST ", "PUT ", "DELETE ")
SETTLED = ("done", "skipped", "dead")
STREAMS = {
    "cloudretailer:categories",
    "cloudretailer:products",
    "cloudretailer:styles",
    "cloudretailer:customers",
    "magento:categories",
    "magento:customers",
}


def rules() -> Registry:
    """The handlers a catch-up feeds (catalog, customers) and the catch-up itself."""
    registry = Registry()
    sync.catalog.register(registry)
    sync.customers.register(registry)
    catchup.register(registry)
    return registry


@contextlib.asynccontextmanager
async def stack_for_catchup(redis_url: str) -> AsyncIterator[Stack]:
    async with full_stack(redis_url, products=6, customers=1, magento_config={"customers": 0}) as stack:
        await stack.start_worker(rules())
        yield stack


# --- helpers ------------------------------------------------------------------------------------------------


async def admin_job(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, queued = await stack.admin("POST", path, json=body)
    assert status == 202, queued

    async def finished() -> dict[str, Any] | None:
        _, job = await stack.admin("GET", queued["href"])
        return job if job["status"] in ("done", "failed") else None

    return await wait_for(finished, within=20)


async def catchup_run(stack: Stack) -> dict[str, Any]:
    """POST /admin/resync/catchup; the job is done once its changes are settled."""
    return await admin_job(stack, "/admin/resync/catchup", {})


async def report(stack: Stack) -> dict[str, Any]:
    _, status = await stack.admin("GET", "/admin/status")
    return status["reports"]["catchup"]


async def events(stack: Stack) -> list[dict[str, Any]]:
    _, body = await stack.admin("GET", "/admin/events", params={"limit": "500"})
    return body["items"]


async def settled(stack: Stack) -> None:
    async def quiet() -> bool:
        # A handler's write may make a sandbox send another webhook: each look waits for those first.
        await stack.deliveries_landed()
        return await _all_settled(stack)

    await wait_for(quiet, within=15)


async def _all_settled(stack: Stack) -> bool:
    return all(e["status"] in SETTLED for e in await events(stack))


async def writes(stack: Stack) -> dict[str, int]:
    """Writes (POST/PUT/DELETE) each sandbox answered since the last reset, by route."""
    out = {}
    for side, url in (("magento", stack.magento_url), ("cloudretailer", _cr_root(stack))):
        async with stack.magento_api.get(f"{url}/_sandbox/stats") as resp:
            calls = (await resp.json())["calls"]
        out.update({f"{side} {k}": v for k, v in calls.items() if k.startswith(WRITES)})
    return out


async def reset_stats(stack: Stack) -> None:
    for url in (stack.magento_url, _cr_root(stack)):
        async with stack.magento_api.delete(f"{url}/_sandbox/stats"):
            pass


def _cr_root(stack: Stack) -> str:
    return str(stack.cr_server.make_url("")).rstrip("/")


async def cr_faults(stack: Stack, rules: list[dict[str, Any]] | None) -> None:
    url = f"{_cr_root(stack)}/_sandbox/faults"
    method = stack.cr_api.put(url, json=rules) if rules is not None else stack.cr_api.delete(url)
    async with method as resp:
        assert resp.status < 300, await resp.text()


async def a_product(stack: Stack) -> dict[str, Any]:
    """A product whose primary attribute set Magento has (the seeded "Shoes" ones fail by design)."""
    items = (await stack.cr("GET", "/products", params={"limit": "100"}))["items"]
    return next(p for p in items if not any(s["primary"] and s["name"] == "Shoes" for s in p["attribute_sets"]))


def where(**fields: Any) -> dict[str, str]:
    params = {}
    for n, (name, value) in enumerate(fields.items()):
        params[f"searchCriteria[filter_groups][{n}][filters][0][field]"] = name
        params[f"searchCriteria[filter_groups][{n}][filters][0][value]"] = str(value)
    return params


async def magento_price(stack: Stack, sku: str, price: float) -> bool:
    return (await stack.magento("GET", f"products/{sku}"))["price"] == price


async def magento_customers(stack: Stack, email: str) -> list[dict[str, Any]]:
    return (await stack.magento("GET", "customers/search", params=where(email=email)))["items"]


async def cr_customer(stack: Stack, email: str) -> dict[str, Any] | None:
    items = (await stack.cr("GET", "/customers", params={"email": email}))["items"]
    return items[0] if items else None


async def new_cr_customer(stack: Stack, email: str) -> dict[str, Any]:
    body = {"email": email, "first_name": "Lost", "last_name": "Webhook"}
    return await stack.cr("POST", "/customers", json=body, headers=QUIET)


# --- the tests ----------------------------------------------------------------------------------------------


async def test_lost_changes_reach_the_other_side_after_one_run_and_a_second_run_writes_nothing(redis_url):
    async with stack_for_catchup(redis_url) as stack:
        product = await a_product(stack)
        synced = await admin_job(stack, "/admin/resync/products", {"product_ids": [product["id"]]})
        assert synced["progress"] == {"done": 1, "failed": 0, "total": 1}, synced

        # 1. A change that arrives by webhook is applied by its handler; a catch-up meeting it again knows that
        #    version is in Magento already: it counts it and feeds nothing (no burst of no-op jobs every run).
        await stack.cr("PUT", f"/products/{product['id']}", json={"price": 11.5})
        await wait_for(lambda: magento_price(stack, product["sku"], 11.5))
        await settled(stack)
        await reset_stats(stack)
        first = await catchup_run(stack)
        assert first["status"] == "done", first
        products_stream = first["result"]["streams"]["cloudretailer:products"]
        assert products_stream["queued"] == 0 and products_stream["in_step"] == 1, products_stream
        assert await writes(stack) == {}
        first_cursor = first["result"]["cursors"]["cloudretailer:products"]

        # 2. Changes on both sides whose webhooks are lost.
        await stack.cr("PUT", f"/products/{product['id']}", json={"price": 12.75}, headers=QUIET)
        changed = await stack.cr("GET", f"/products/{product['id']}")
        department = next(c for c in (await stack.cr("GET", "/categories"))["items"] if c["parent_id"] is None)
        category = await stack.cr(
            "POST",
            "/categories",
            json={"code": "LOST-HOOK", "name": "Lost Hook Finds", "parent_id": department["id"]},
            headers=QUIET,
        )
        cr_person = await new_cr_customer(stack, "lost.in.cloud@example.com")
        account = await stack.magento(
            "POST",
            "customers",
            store="default",
            json={"customer": {"email": "lost.in.magento@example.com", "firstname": "Mia", "lastname": "Gento"}},
            headers=QUIET,
        )
        magento_category = await stack.magento(
            "POST", "categories", json={"category": {"parent_id": 2, "name": "Made In Magento", "is_active": True}},
            headers=QUIET,
        )  # fmt: skip
        before = len(await events(stack))
        await stack.deliveries_landed()
        assert len(await events(stack)) == before, "a suppressed change sent its webhook after all"
        assert (await stack.magento("GET", f"products/{product['sku']}"))["price"] == 11.5

        second = await catchup_run(stack)
        assert second["status"] == "done", second
        assert (await stack.magento("GET", f"products/{product['sku']}"))["price"] == 12.75
        category_id = await Binder(stack.redis).magento_id("category", category["id"])
        assert category_id is not None
        made = await stack.magento("GET", f"categories/{category_id}")
        assert made["name"] == "Lost Hook Finds" and made["parent_id"] != 2  # under its department
        assert [a["firstname"] for a in await magento_customers(stack, "lost.in.cloud@example.com")] == ["Lost"]
        mirrored = await cr_customer(stack, "lost.in.magento@example.com")
        assert mirrored is not None and mirrored["first_name"] == "Mia"
        assert await Binder(stack.redis).cr_id("customer", account["id"]) == mirrored["id"]
        cr_category = await Binder(stack.redis).cr_id("category", magento_category["id"])
        assert cr_category is not None
        assert (await stack.cr("GET", f"/categories/{cr_category}"))["name"] == "Made In Magento"

        # GET /admin/status: the run, what it found and applied, and each cursor.
        shown = await report(stack)
        assert shown["run_id"] == second["id"] and shown["status"] == "ok" and shown["trigger"] == "admin"
        streams = shown["streams"]
        assert streams["cloudretailer:products"]["queued"] == 1
        assert streams["cloudretailer:categories"]["queued"] >= 1
        assert streams["cloudretailer:customers"]["queued"] == 1
        assert streams["magento:customers"]["queued"] == 1
        assert streams["magento:categories"]["queued"] == 1
        assert shown["found"] >= shown["queued"] >= 5
        assert shown["applied"] == shown["queued"] and shown["failed"] == 0 and shown["pending"] == 0
        assert second["progress"] == {"done": shown["queued"], "failed": 0, "total": shown["queued"]}
        assert set(shown["cursors"]) == STREAMS
        assert shown["cursors"]["cloudretailer:products"] == changed["updated_at"]
        assert shown["cursors"]["cloudretailer:customers"] >= cr_person["updated_at"]
        assert shown["cursors"]["magento:customers"] == account["created_at"]
        assert streams["cloudretailer:products"]["since"] == clock.CLOUDRETAILER.minus(first_cursor, 120)

        # 3. A second run meets every change again (the overlap) and writes nothing on either side.
        await settled(stack)
        await reset_stats(stack)
        third = await catchup_run(stack)
        assert third["status"] == "done", third
        again = await report(stack)
        assert again["run_id"] == third["id"] and again["found"] >= 5 and again["applied"] == again["queued"]
        assert await writes(stack) == {}


async def test_a_stream_that_fails_keeps_its_cursor_and_the_next_run_catches_up(redis_url):
    async with stack_for_catchup(redis_url) as stack:
        first_person = await new_cr_customer(stack, "first.lost@example.com")
        first = await catchup_run(stack)
        assert first["status"] == "done", first
        cursor = (await clock.cursors(stack.redis))["cloudretailer:customers"]
        assert cursor == first_person["updated_at"]

        # Cloud Retailer's customer listing fails (a 500: the listing's own error; a 503 would be Cloud Retailer
        # down, which skips the whole run, tests/test_cron_outage.py): that stream fails, the others still run.
        await cr_faults(stack, [{"match": "GET /api/v1/customers*", "error_rate": 1.0, "error_status": 500}])
        await new_cr_customer(stack, "second.lost@example.com")
        product = await a_product(stack)
        await stack.cr("PUT", f"/products/{product['id']}", json={"price": 3.25}, headers=QUIET)
        failed = await catchup_run(stack)
        assert failed["status"] == "failed" and "cloudretailer:customers" in failed["error"], failed
        shown = await report(stack)
        assert shown["status"] == "failed" and shown["streams"]["cloudretailer:customers"]["error"]
        assert shown["cursors"]["cloudretailer:customers"] == cursor  # not past what was never handled
        assert shown["streams"]["cloudretailer:products"]["queued"] == 1
        assert (await stack.magento("GET", f"products/{product['sku']}"))["price"] == 3.25
        assert await magento_customers(stack, "second.lost@example.com") == []

        await cr_faults(stack, None)
        healed = await catchup_run(stack)
        assert healed["status"] == "done", healed
        assert len(await magento_customers(stack, "second.lost@example.com")) == 1
        assert (await report(stack))["cursors"]["cloudretailer:customers"] > cursor


async def test_a_run_is_skipped_while_another_holds_the_lease(redis_url):
    async with stack_for_catchup(redis_url) as stack:
        await new_cr_customer(stack, "held.back@example.com")
        other = Lease(stack.redis, run.LOCK_KEY, "catchup-another-run")
        assert await other.take()
        services = Services.from_settings(stack.settings)
        worker = {"redis": stack.redis, "settings": stack.settings, "services": services}
        try:
            busy = await run_once(run.CATCHUP, handler_context(worker, "catchup-1000"))
            assert (busy["status"], busy["run_id"], busy["running"]) == (
                "skipped",
                "catchup-1000",
                "catchup-another-run",
            )
            assert busy["reason"] == "catchup run catchup-another-run is still running"
            assert await magento_customers(stack, "held.back@example.com") == []
            assert await clock.cursors(stack.redis) == {}
            assert not await stack.redis.hexists(keys.REPORTS, run.REPORT)

            await other.release()
            done = await run_once(run.CATCHUP, handler_context(worker, "catchup-2000"))
            assert done["status"] == "ok" and done["queued"] == 1 and done["applied"] == 1
            assert len(await magento_customers(stack, "held.back@example.com")) == 1
            # Every stream's cursor is pinned by its first run, those that found nothing too (a run after a long
            # outage looks back to it, not one interval back from its own start).
            pinned = await clock.cursors(stack.redis)
            assert set(pinned) == STREAMS and pinned["magento:categories"] < clock.MAGENTO.now_minus(29 * 60)
            _, job = await stack.admin("GET", "/admin/jobs/catchup-2000")
            assert job["kind"] == "catchup" and job["status"] == "done" and job["result"]["run_id"] == "catchup-2000"
            assert job["progress"] == {"done": 1, "failed": 0, "total": 1}
            # The same run again (the scheduler retrying a run whose worker died): its changes are duplicates.
            retried = await run_once(run.CATCHUP, handler_context(worker, "catchup-2000", attempt=2))
            assert retried["queued"] == 0 and retried["already_queued"] == 1
        finally:
            await services.close()


async def test_two_workers_run_it_once_per_interval(redis_url):
    """The scheduler claims each due run once, whatever the number of workers, and the lease keeps a run from
    starting while the previous one is still going. Every second here to see several runs."""
    runs: list[tuple[str, float, float, str]] = []

    async def recorded(one: Run) -> str:
        started = asyncio.get_running_loop().time()
        try:
            status = await run.CATCHUP.run(one)
        except BaseException:
            runs.append((one.run_id, started, asyncio.get_running_loop().time(), "crashed"))
            raise
        runs.append((one.run_id, started, asyncio.get_running_loop().time(), status))
        return status

    registry = rules()
    registry.register_periodic(replace(run.CATCHUP, interval=lambda _: 1.0, run=recorded))
    async with full_stack(redis_url, products=2, customers=0) as stack:
        await new_cr_customer(stack, "two.workers@example.com")
        await stack.magento(
            "POST", "customers", store="default", headers=QUIET,
            json={"customer": {"email": "one.account@example.com", "firstname": "One", "lastname": "Account"}},
        )  # fmt: skip
        await reset_stats(stack)
        await stack.start_worker(registry)
        await stack.start_worker(registry)
        await wait_for(lambda: len([r for r in runs if r[3] == "ok"]) >= 3, within=20)
        await stack.stop_workers()
        made = await writes(stack)

    ids = [r[0] for r in runs]
    assert len(ids) == len(set(ids)), ids
    ran = sorted((start, end) for _, start, end, status in runs if status == "ok")
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(ran)), ran
    # Each lost account was made on the other side once, however many runs met it.
    creations = {k: v for k, v in made.items() if k.endswith(("/V1/customers", "/api/v1/customers"))}
    assert creations == {"magento POST /rest/{store_code}/V1/customers": 1, "cloudretailer POST /api/v1/customers": 1}
