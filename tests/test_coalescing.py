"""The per-entity queue and the worker: coalescing, the change-while-running case, retries, dead letters,
replay and healing, with real arq workers on a real Redis."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

import orjson
import pytest
from aiohttp.test_utils import TestClient
from arq.connections import create_pool
from redis.asyncio import Redis

from crmcore import keys
from crmcore.entityqueue import EntityQueue
from crmcore.events import AcceptedEvent, Source
from crmcore.redis_conn import arq_redis_settings
from crmcore.remotes import MARK_UP_LUA, Remote, RemoteStateName, read_states
from crmcore.settings import Settings
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from workers.availability.drain import Drainer
from workers.errors import MisconfiguredError, PermanentError, Skip
from workers.registry import HandlerContext, Registry

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Recorder:
    """A handler that records each call: (event type, [webhook ids])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def __call__(self, ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        self.calls.append((events[-1].type, [e.id for e in events]))


async def _status(redis: Redis, source: str, msg_id: str) -> str | None:
    value = await redis.hget(keys.event(f"{source}:{msg_id}"), "status")
    return value.decode() if value else None


async def _send_product(gateway: TestClient, product_id: str = "P-1", event_type: str = "product.updated") -> str:
    msg_id = new_id()
    resp = await post_event(
        gateway, "cloudretailer", envelope(event_type, {"product_id": product_id, "sku": "S"}), msg_id=msg_id
    )
    assert resp.status == 202
    return msg_id


async def test_changes_waiting_for_a_worker_collapse_into_one_run(gateway, redis, start_worker) -> None:
    ids = [await _send_product(gateway) for _ in range(5)]
    assert await redis.zcard("crmagento:queue") == 1  # five changes, one job
    recorder = Recorder()
    registry = Registry()
    registry.register(CR, "product.updated", recorder)
    await start_worker(registry)
    await wait_for(lambda: _status(redis, "cloudretailer", ids[-1]), within=10)
    await wait_for(lambda: all_done(redis, ids))
    assert recorder.calls == [("product.updated", ids)]
    assert not await redis.exists(keys.entity("cloudretailer:product:P-1"))


async def all_done(redis: Redis, ids: list[str], status: str = "done") -> bool:
    return all([await _status(redis, "cloudretailer", i) == status for i in ids])


async def test_change_while_running_causes_exactly_one_more_run(gateway, redis, start_worker) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    calls: list[list[str]] = []

    async def slow(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        calls.append([e.id for e in events])
        if len(calls) == 1:
            entered.set()
            await release.wait()

    registry = Registry()
    registry.register(CR, "product.updated", slow)
    await start_worker(registry)
    first = await _send_product(gateway)
    await asyncio.wait_for(entered.wait(), 10)
    during = [await _send_product(gateway) for _ in range(3)]
    # While the first run is busy, the three changes wait: no second job runs in parallel.
    assert await redis.llen(keys.pending("cloudretailer:product:P-1")) == 3
    release.set()
    await wait_for(lambda: all_done(redis, [first, *during]))
    # The entity's state is gone only once its last job released it with nothing pending: no run can follow.
    await wait_for(lambda: _gone(redis, keys.entity("cloudretailer:product:P-1")))
    assert calls == [[first], during]


async def test_naive_per_entity_arq_job_id_drops_the_update(settings: Settings, redis: Redis) -> None:
    """Why the gateway does not use arq job ids per entity: arq refuses the second enqueue outright."""
    pool = await create_pool(arq_redis_settings(settings.redis_url.get_secret_value()))
    try:
        first = await pool.enqueue_job("process_entity", "x", _job_id="product:P-1", _queue_name="naive:queue")
        second = await pool.enqueue_job("process_entity", "x", _job_id="product:P-1", _queue_name="naive:queue")
        assert first is not None and second is None  # the newer change is silently lost
    finally:
        await pool.aclose()


async def test_no_handler_in_the_build_marks_skipped(gateway, redis, start_worker) -> None:
    await start_worker(Registry())
    msg_id = await _send_product(gateway)
    await wait_for(lambda: all_done(redis, [msg_id], "skipped"))
    reason = await redis.hget(keys.event(f"cloudretailer:{msg_id}"), "last_error")
    assert b"no handler for cloudretailer product.updated" in reason


async def test_skip_records_the_handlers_reason(gateway, redis, start_worker) -> None:
    async def not_complete(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        raise Skip("order 5 is processing, not complete")

    registry = Registry()
    registry.register(Source.MAGENTO, "order.completed", not_complete)
    await start_worker(registry)
    msg_id = new_id()
    body = envelope("order.completed", {"order_id": 5, "increment_id": "0005"})
    assert (await post_event(gateway, "magento", body, msg_id=msg_id)).status == 202
    await wait_for(lambda: _hget(redis, f"magento:{msg_id}", "status", b"skipped"))
    assert await redis.hget(keys.event(f"magento:{msg_id}"), "last_error") == b"order 5 is processing, not complete"


async def _hget(redis: Redis, ref: str, field: str, expected: bytes) -> bool:
    return await redis.hget(keys.event(ref), field) == expected


async def test_each_type_runs_once_ordered_by_newest(gateway, redis, start_worker) -> None:
    recorder = Recorder()
    registry = Registry()
    registry.register(CR, "product.updated", recorder)
    registry.register(CR, "product.deleted", recorder)
    registry.register(CR, "product.images.updated", recorder)
    a = await _send_product(gateway, event_type="product.updated")
    b = await _send_product(gateway, event_type="product.images.updated")
    c = await _send_product(gateway, event_type="product.deleted")
    d = await _send_product(gateway, event_type="product.images.updated")
    await start_worker(registry)
    await wait_for(lambda: all_done(redis, [a, b, c, d]))
    assert recorder.calls == [
        ("product.updated", [a]),
        ("product.deleted", [c]),
        ("product.images.updated", [b, d]),
    ]


async def test_transient_failures_retry_with_backoff_then_succeed(gateway, redis, start_worker) -> None:
    attempts: list[int] = []

    async def flaky(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise ConnectionError("Magento answered 503")

    registry = Registry()
    registry.register(CR, "product.updated", flaky)
    await start_worker(registry)
    msg_id = await _send_product(gateway)
    await wait_for(lambda: _status(redis, "cloudretailer", msg_id), within=5)
    await wait_for(lambda: all_done(redis, [msg_id]))
    assert attempts == [1, 2, 3]
    record = await redis.hgetall(keys.event(f"cloudretailer:{msg_id}"))
    assert record[b"attempts"] == b"3" and record[b"last_error"] == b""


async def test_exhausted_retries_dead_letter_then_replay_succeeds(redis_url, redis, gateway, start_worker) -> None:
    broken = {"on": True}
    seen: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        seen.append(events[-1].id)
        if broken["on"]:
            raise TimeoutError("Cloud Retailer did not answer")

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    await start_worker(registry, make_settings(redis_url, job_max_attempts=3, job_retry_base_seconds=0.01))
    msg_id = await _send_product(gateway)
    await wait_for(lambda: all_done(redis, [msg_id], "dead"))
    assert len(seen) == 3

    listing = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
    assert listing["total"] == 1
    (dl,) = listing["items"]
    assert dl["event_ids"] == [msg_id] and dl["attempts"] == 3 and dl["type"] == "product.updated"
    assert "gave up after 3 attempts" in dl["reason"] and "Cloud Retailer did not answer" in dl["reason"]
    assert not await redis.exists(keys.entity("cloudretailer:product:P-1"))  # the entity is not stuck

    broken["on"] = False
    resp = await gateway.post(f"/admin/dead-letters/{dl['id']}/replay", headers=AUTH)
    assert resp.status == 202
    await wait_for(lambda: all_done(redis, [msg_id]))
    assert await redis.zcard(keys.DEADLETTERS) == 0
    again = await gateway.post(f"/admin/dead-letters/{dl['id']}/replay", headers=AUTH)
    assert again.status == 404


async def test_replay_works_after_the_event_log_expired(gateway, redis, start_worker) -> None:
    async def permanent(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        raise PermanentError("attribute set 'Shoes' does not exist in Magento")

    registry = Registry()
    registry.register(CR, "product.updated", permanent)
    handle = await start_worker(registry)
    msg_id = await _send_product(gateway)
    await wait_for(lambda: all_done(redis, [msg_id], "dead"))
    (dl,) = (await (await gateway.get("/admin/dead-letters", headers=AUTH)).json())["items"]
    assert dl["attempts"] == 1 and dl["reason"] == "attribute set 'Shoes' does not exist in Magento"
    await handle.close()

    await redis.delete(keys.event(f"cloudretailer:{msg_id}"))  # as if 7 days passed
    recorder = Recorder()
    fixed = Registry()
    fixed.register(CR, "product.updated", recorder)
    await start_worker(fixed)
    assert (await gateway.post(f"/admin/dead-letters/{dl['id']}/replay", headers=AUTH)).status == 202
    # Recreated for as long as an accepted record lives: it is the delivery's dedupe marker again.
    assert 7 * 86400 - 60 < await redis.ttl(keys.event(f"cloudretailer:{msg_id}")) <= 7 * 86400
    await wait_for(lambda: all_done(redis, [msg_id]))
    assert recorder.calls == [("product.updated", [msg_id])]


async def test_stranded_entity_is_healed(gateway, redis, settings, start_worker) -> None:
    msg_id = await _send_product(gateway)
    (job_id,) = await redis.zrange("crmagento:queue", 0, -1)
    await redis.delete(b"arq:job:" + job_id)  # the job is gone (expired, or given up by arq)
    await redis.zrem("crmagento:queue", job_id)
    queue = EntityQueue(redis, settings.queue_name)
    now_ms = int(time.time() * 1000)  # arq treats a score of 0 as "not queued"
    assert await queue.heal(now_ms=now_ms) == 1
    assert await queue.heal(now_ms=now_ms) == 0  # healing twice makes one job
    # A new event for a stranded entity also heals it: covered by the accept script's job check.
    recorder = Recorder()
    registry = Registry()
    registry.register(CR, "product.updated", recorder)
    await start_worker(registry)
    await wait_for(lambda: all_done(redis, [msg_id]))
    assert recorder.calls == [("product.updated", [msg_id])]


async def test_a_worker_that_keeps_dying_ends_in_a_dead_letter(redis_url, gateway, redis, start_worker) -> None:
    msg_id = await _send_product(gateway)
    (job_id,) = await redis.zrange("crmagento:queue", 0, -1)
    queue = EntityQueue(redis, "crmagento:queue")
    for _ in range(3):  # three claims with no outcome: what three SIGKILLed tries leave behind
        assert await queue.claim("cloudretailer:product:P-1", job_id.decode()) is not None
    await start_worker(Registry(), make_settings(redis_url, job_max_attempts=3))
    await wait_for(lambda: all_done(redis, [msg_id], "dead"))
    (dl,) = (await (await gateway.get("/admin/dead-letters", headers=AUTH)).json())["items"]
    assert "stopped 3 times" in dl["reason"]


async def test_three_workers_never_run_one_entity_twice_at_once(gateway, redis, settings, start_worker) -> None:
    running: dict[str, int] = defaultdict(int)
    overlap: list[str] = []
    handled: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        entity = events[-1].entity
        running[entity] += 1
        if running[entity] > 1:
            overlap.append(entity)
        await asyncio.sleep(random.uniform(0, 0.02))
        handled.extend(e.id for e in events)
        running[entity] -= 1

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    for _ in range(3):
        await start_worker(registry)
    sent = []
    for round_ in range(6):
        batch = [_send_product(gateway, product_id=f"P-{i}") for i in range(10)]
        sent += await asyncio.gather(*batch)
        await asyncio.sleep(0.02 * round_)
    await wait_for(lambda: len(handled) == len(sent), within=20)
    assert sorted(handled) == sorted(sent) and not overlap


@pytest.mark.parametrize("count", [200])
async def test_every_accepted_event_is_handled_exactly_once(gateway, redis, start_worker, count: int) -> None:
    """Under concurrent load across 20 entities, each accepted event reaches a handler exactly once."""
    seen: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        seen.extend(e.id for e in events)

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    await start_worker(registry)
    ids = await asyncio.gather(*(_send_product(gateway, product_id=f"P-{i % 20}") for i in range(count)))
    await wait_for(lambda: len(seen) >= count, within=20)

    async def queue_empty() -> bool:
        return orjson.loads(await (await gateway.get("/admin/status", headers=AUTH)).read())["queue_depth"] == 0

    # arq takes a job off the queue only after it finished (result written), a moment after the handler ran.
    await wait_for(queue_empty, within=5)
    assert sorted(seen) == sorted(ids)
    stats = await redis.hgetall(keys.JOB_STATS)
    assert int(stats[b"done"]) == count


async def test_a_setting_that_is_not_set_parks_on_its_remote_instead_of_dead_lettering(
    redis_url, gateway, redis, settings, start_worker
) -> None:
    stores: list[str] = []

    async def needs_the_store(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        stores.append(ctx.linked_store_id)  # CRMAGENTO_CR_STORE_ID is not set in this worker

    registry = Registry()
    registry.register(CR, "product.updated", needs_the_store)
    handle = await start_worker(registry)
    first = await _send_product(gateway, "P-1")
    await wait_for(lambda: all_done(redis, [first], "parked"))

    cr = (await read_states(redis))[Remote.CLOUDRETAILER]
    assert cr.state is RemoteStateName.MISCONFIGURED and cr.setting == "CRMAGENTO_CR_STORE_ID"
    assert cr.error.startswith("CRMAGENTO_CR_STORE_ID: not set") and cr.parked == 1
    record = await redis.hgetall(keys.event(f"cloudretailer:{first}"))
    assert record[b"last_error"].decode().startswith("waiting for Cloud Retailer: misconfigured: CRMAGENTO_CR_STORE_ID")
    assert record[b"attempts"] == b"0"  # parking spends no attempt
    # Another entity that needs Cloud Retailer waits too, without running.
    second = await _send_product(gateway, "P-2")
    await wait_for(lambda: all_done(redis, [second], "parked"))
    assert stores == [] and await redis.zcard(keys.DEADLETTERS) == 0

    # The operator sets the store and restarts the worker; its start-up check finds Cloud Retailer up (here: the
    # drain a worker starts for a remote that is up again), and what waited runs.
    await handle.close()
    await start_worker(registry, make_settings(redis_url, cr_store_id="W-1"))
    await redis.eval(MARK_UP_LUA, 1, keys.remote(Remote.CLOUDRETAILER), int(time.time() * 1000))
    await Drainer(redis, settings, EntityQueue(redis, settings.queue_name), "test").drain(Remote.CLOUDRETAILER)
    await wait_for(lambda: all_done(redis, [first, second]))
    assert stores == ["W-1", "W-1"] and await redis.zcard(keys.DEADLETTERS) == 0


async def test_a_wrong_setting_of_no_remote_is_a_dead_letter_naming_it(gateway, redis, start_worker) -> None:
    async def wrong(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        raise MisconfiguredError("CRMAGENTO_WEB_ORDERS_TENDER", "no such tender type")

    registry = Registry()
    registry.register(CR, "product.updated", wrong)
    await start_worker(registry)
    msg_id = await _send_product(gateway)
    await wait_for(lambda: all_done(redis, [msg_id], "dead"))
    (dl,) = (await (await gateway.get("/admin/dead-letters", headers=AUTH)).json())["items"]
    assert dl["attempts"] == 1 and dl["reason"] == "CRMAGENTO_WEB_ORDERS_TENDER: no such tender type"
    assert all(state.up for state in (await read_states(redis)).values())


async def _gone(redis: Redis, key: str) -> bool:
    return not await redis.exists(key)
