"""The initial sync end to end (POST /admin/sync/initial, `crmagento sync initial`): both sandboxes, the real
gateway and real workers with the shipped rules, against an empty Magento. Afterwards Magento has every
category of Cloud Retailer's tree (the Footwear department too, which no product Magento can take uses), every
product it can take, every customer and every stock level; one initial sync runs at a time; a worker stopped
mid-job leaves the next one to go on from the phase it was in."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crmcore import initialsync, jobrecords, keys
from crmcore.clock import iso_ms, now_ms
from crmcore.jobrecords import AdminJobKind
from sandbox.catalog import LINKED_STORE_ID
from sandbox.magento.routing import STATE
from tests.conftest import wait_for
from tests.support.signing import ADMIN_TOKEN
from tests.support.stack import ADMIN, Stack, full_stack
from tests.test_admin_cli import Run, _cli_for
from tests.test_openapi import check

PHASES = ["categories", "products", "customers", "inventory", "orders"]
# Every product create outlasts the workers' shutdown grace (2 s in tests): the products phase is still running
# when the test stops the worker.
SLOW_CREATES = {"faults": [{"match": "PUT /rest/all/V1/products/*", "latency_ms": 3000}]}


async def _start(stack: Stack, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, queued = await stack.admin("POST", "/admin/sync/initial", json=body or {})
    assert status == 202, queued
    return queued


async def _job(stack: Stack, job_id: str) -> dict[str, Any]:
    status, job = await stack.admin("GET", f"/admin/jobs/{job_id}")
    assert status == 200, job
    return job


async def _finished(stack: Stack, job_id: str, within: float = 90) -> dict[str, Any]:
    async def over() -> dict[str, Any] | None:
        job = await _job(stack, job_id)
        return job if job["status"] in ("done", "failed") else None

    return await wait_for(over, within=within, interval=0.2)


def _phases(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {phase["name"]: phase for phase in job["phases"]}


def _is_shoes(product: dict[str, Any]) -> bool:
    # Magento lacks the Shoes attribute set of Footwear products: they fail by design, and their categories
    # are used by no product Magento has.
    return any(s["primary"] and s["name"] == "Shoes" for s in product["attribute_sets"])


async def _assert_everything_in_magento(stack: Stack) -> None:
    state = stack.magento_app[STATE]
    cr_categories = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    names = {c.name for c in state.categories.values()}
    assert "Footwear" in names
    assert {c["name"] for c in cr_categories} <= names
    products = (await stack.cr("GET", "/products", params={"limit": "500"}))["items"]
    wanted = [p for p in products if not _is_shoes(p)]
    assert wanted and len(wanted) < len(products)
    source = state.source_items["default"]
    for product in wanted:
        assert product["sku"].lower() in state.products, product["sku"]
        level = await stack.cr("GET", f"/inventory/{LINKED_STORE_ID}/{product['sku']}")
        assert source[product["sku"].lower()].quantity == max(float(level["on_hand"]), 0.0), product["sku"]
    emails = {c.email.lower() for c in state.customers.values()}
    for customer in (await stack.cr("GET", "/customers"))["items"]:
        assert customer["email"].lower() in emails


async def test_one_initial_sync_fills_an_empty_magento_and_a_second_is_refused(redis_url: str) -> None:
    async with full_stack(redis_url, products=12, customers=4, magento_products=0) as stack:
        await stack.start_worker()
        queued = await _start(stack)
        status, refused = await stack.admin("POST", "/admin/sync/initial", json={})
        assert status == 409, refused
        assert refused["job_id"] == queued["job_id"]
        assert refused["href"] == queued["href"]

        job = await _finished(stack, queued["job_id"])
        assert job["status"] == "done", job
        assert job["progress"] == {"done": 5, "failed": 0, "total": 5}
        phases = _phases(job)
        assert list(phases) == PHASES
        assert [p["status"] for p in phases.values()] == ["done"] * 4 + ["skipped"]  # no orders_since given
        cats = phases["categories"]
        assert cats["total"] and cats["done"] == cats["total"] and cats["failed"] == 0
        assert phases["products"]["failed"] == sum(_is_shoes(p) for p in await _cr_products(stack))
        assert phases["products"]["done"] + phases["products"]["failed"] == phases["products"]["total"] == 12
        assert all(p["runs"] == 1 for name, p in phases.items() if name != "orders")
        await _assert_everything_in_magento(stack)
        answer = await stack.gateway.get(queued["href"], headers=ADMIN)
        await check(answer, "GET", "/admin/jobs/{job_id}")

        # Over: the lock is free, and the next initial sync finds everything in place.
        assert await stack.redis.get(keys.INITIAL_SYNC_LOCK) is None
        again = await _finished(stack, (await _start(stack, {"orders_since": "2026-01-01T00:00:00Z"}))["job_id"])
        assert again["status"] == "done", again
        assert _phases(again)["orders"]["status"] == "done"


async def _cr_products(stack: Stack) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/products", params={"limit": "500"}))["items"]


async def test_a_worker_stopped_mid_job_leaves_the_finished_phases_done(redis_url: str) -> None:
    async with full_stack(redis_url, products=12, customers=3, magento_config=SLOW_CREATES) as stack:
        await stack.start_worker()
        job_id = (await _start(stack))["job_id"]

        async def in_products() -> dict[str, Any] | None:
            job = await _job(stack, job_id)
            return job if job.get("phase") == "products" and _phases(job)["products"]["total"] == 12 else None

        before = _phases(await wait_for(in_products, within=60, interval=0.05))
        await stack.stop_workers()
        stopped = await _job(stack, job_id)
        assert stopped["status"] == "running" and stopped["phase"] == "products", stopped
        # Still this job's: a second one is refused while the first waits for a worker.
        status, refused = await stack.admin("POST", "/admin/sync/initial", json={})
        assert status == 409 and refused["job_id"] == job_id

        await stack.start_worker()
        job = await _finished(stack, job_id)
        assert job["status"] == "done", job
        phases = _phases(job)
        # The categories phase was not run again; the products phase, cut short, was.
        assert phases["categories"]["runs"] == 1
        assert phases["categories"]["finished"] == before["categories"]["finished"]
        assert phases["products"]["runs"] == 2
        assert phases["products"]["done"] + phases["products"]["failed"] == phases["products"]["total"] == 12
        assert job["started"] != stopped["started"]
        await _assert_everything_in_magento(stack)


@pytest.fixture
def stack_cli(tmp_path) -> Any:
    def make(stack: Stack) -> Run:
        return _cli_for(f"http://{stack.gateway.host}:{stack.gateway.port}", tmp_path)

    return make


async def test_the_cli_verb_runs_it_to_the_end_and_names_a_running_one(redis_url: str, stack_cli: Any) -> None:
    async with full_stack(redis_url, products=6, customers=2) as stack:
        cli: Run = stack_cli(stack)
        result = await cli("sync", "initial", "--orders-since", "not a time")
        assert result.code == 2, result.err

        await stack.start_worker()
        # TTY_COMPATIBLE=1: rich takes stderr for a terminal and draws the bars, one per phase.
        result = await cli("sync", "initial", "--orders-since", "2026-01-01T00:00:00Z", TTY_COMPATIBLE="1")
        assert result.code == 0, result.err
        assert "\x1b[" in result.err and all(f"{phase} [" in result.err for phase in PHASES), result.err
        rows = [line.replace("│", " ").split() for line in result.out.splitlines()]
        assert [row[:2] for row in rows if row and row[0] in PHASES] == [[p, "done"] for p in PHASES], result.out
        await _assert_everything_in_magento(stack)

        # No worker: the next one stays queued, and a second is refused naming it.
        await stack.stop_workers()
        queued = await cli("sync", "initial", "--no-wait")
        assert queued.code == 0, queued.err
        job_id = queued.out.strip()
        second = await cli("sync", "initial", "--no-wait")
        assert second.code == 2 and job_id in second.err, second.err
        await stack.start_worker()
        shown = await cli("jobs", "show", job_id, "--wait", "--json")
        assert shown.code == 0, shown.err
        assert [p["name"] for p in shown.json()["phases"]] == PHASES


async def test_the_answers_match_the_spec(gateway: TestClient, redis) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    path = "/admin/sync/initial"
    for body in ({"orders_since": "yesterday"}, {"since": "2026-01-01T00:00:00Z"}):
        refused = await gateway.post(path, json=body, headers=auth)
        assert refused.status == 422
        await check(refused, "POST", path)
    assert await redis.get(keys.INITIAL_SYNC_LOCK) is None  # a refused body takes no lock
    queued = await gateway.post(path, json={"orders_since": "2026-01-01T00:00:00Z"}, headers=auth)
    assert queued.status == 202
    job = await check(queued, "POST", path)
    running = await gateway.post(path, headers=auth)
    assert running.status == 409
    assert (await check(running, "POST", path))["job_id"] == job["job_id"]
    # The refused one left no record behind.
    listed = await (await gateway.get("/admin/jobs", headers=auth)).json()
    assert [j["id"] for j in listed["items"]] == [job["job_id"]]
    record = await gateway.get(job["href"], headers=auth)
    assert (await check(record, "GET", "/admin/jobs/{job_id}"))["params"] == {"orders_since": "2026-01-01T00:00:00Z"}


async def test_a_lock_whose_job_the_queue_no_longer_has_is_taken_over(gateway: TestClient, redis) -> None:
    """arq gave up on it (every try's worker died): its record would say `running` for ever and refuse every
    initial sync for a week."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    lost = "initial-sync-20260101000000-0badc0de"
    await jobrecords.create(redis, lost, AdminJobKind.INITIAL_SYNC, {})
    await jobrecords.update(redis, lost, status="running")
    assert await initialsync.claim(redis, lost) is None
    # Recorded just now: it may not be queued yet, so it still holds the lock.
    refused = await gateway.post("/admin/sync/initial", headers=auth)
    assert refused.status == 409 and (await refused.json())["job_id"] == lost
    await jobrecords.update(redis, lost, created=iso_ms(now_ms() - 120_000))
    queued = await gateway.post("/admin/sync/initial", headers=auth)
    assert queued.status == 202, await queued.text()
    assert await redis.get(keys.INITIAL_SYNC_LOCK) == (await queued.json())["job_id"].encode()
    record = await jobrecords.get(redis, lost)
    assert record is not None and record["status"] == "failed" and "abandoned" in (record["error"] or "")
