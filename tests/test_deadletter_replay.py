"""Bulk replay of dead letters (`POST /admin/dead-letters/replay`, `crmagento dead-letters replay --reason ...`):
real dead letters made by a real worker, replayed over real HTTP into real Redis, then checked where the worker
would find them again: the event record, the entity's pending list and its arq job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from crmcore import deadletters, keys
from crmcore.events import AcceptedEvent, Source
from crmcore.settings import Settings
from tests.conftest import post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from tests.test_admin_cli import Run, _cli_for
from workers.errors import PermanentError
from workers.registry import HandlerContext, Registry

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REPLAY = "/admin/dead-letters/replay"
SHOES = "attribute set 'Shoes' does not exist in Magento"
EMAIL = "customer email 'x@' is invalid"
PRODUCT, CUSTOMER = "product.updated", "customer.updated"


@dataclass(frozen=True)
class Dead:
    """One dead letter holding one event, as the worker left it."""

    dl_id: str
    msg_id: str
    entity: str
    reason: str


def _event(event_type: str, key: str) -> tuple[bytes, str]:
    if event_type == CUSTOMER:
        return envelope(event_type, {"customer_id": key}), f"cloudretailer:customer:{key}"
    return envelope(event_type, {"product_id": key, "sku": f"SKU-{key}"}), f"cloudretailer:product:{key}"


async def make_dead_letters(
    gateway: TestClient, redis: Redis, start_worker: Callable[..., Any], specs: list[tuple[str, str, str]]
) -> list[Dead]:
    """specs: (event type, entity key, reason). A worker whose handler fails each event permanently with its
    reason makes one dead letter per entity; the worker is stopped afterwards, so replayed events stay queued
    where the tests can see them. Returned oldest first, as the dead-letter zset orders them."""
    reasons: dict[str, str] = {}

    async def failing(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        raise PermanentError(reasons[events[-1].id])

    registry = Registry()
    for event_type in {s[0] for s in specs}:
        registry.register(CR, event_type, failing)
    handle = await start_worker(registry)
    entities: dict[str, str] = {}
    for event_type, key, reason in specs:
        msg_id = new_id()
        reasons[msg_id] = reason
        body, entities[msg_id] = _event(event_type, key)
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
    await wait_for(lambda: _settled(redis, len(specs), list(entities.values())))
    await handle.close()

    made = []
    for member in await redis.zrange(keys.DEADLETTERS, 0, -1):
        dl = await deadletters.get_deadletter(redis, member.decode())
        assert dl is not None
        (msg_id,) = dl["event_ids"]
        made.append(Dead(dl["id"], msg_id, entities[msg_id], reasons[msg_id]))
    return made


async def _settled(redis: Redis, dead: int, entities: list[str]) -> bool:
    # Dead-lettered and released: no entity still holds a job, so what a replay schedules is all there is.
    return await redis.zcard(keys.DEADLETTERS) == dead and not await redis.exists(*(keys.entity(e) for e in entities))


async def replay(gateway: TestClient, body: object) -> Any:
    resp = await gateway.post(REPLAY, json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


async def remaining(gateway: TestClient) -> set[str]:
    page = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
    return {dl["id"] for dl in page["items"]}


async def assert_requeued(gateway: TestClient, redis: Redis, settings: Settings, dead: Dead) -> None:
    """The event is where a worker picks it up: record queued, on its entity's pending list, and the entity has
    a live arq job in the queue."""
    record = await (await gateway.get(f"/admin/events/{dead.msg_id}", headers=AUTH)).json()
    assert record["status"] == "queued" and record["last_error"] is None, record
    ref = f"cloudretailer:{dead.msg_id}"
    assert await redis.lrange(keys.pending(dead.entity), 0, -1) == [ref.encode()]
    state, job = await redis.hmget(keys.entity(dead.entity), "state", "job")
    assert state == b"queued" and job is not None
    assert await redis.exists(b"arq:job:" + job)
    assert await redis.zscore(settings.queue_name, job) is not None


async def assert_still_dead(gateway: TestClient, redis: Redis, dead: Dead) -> None:
    record = await (await gateway.get(f"/admin/events/{dead.msg_id}", headers=AUTH)).json()
    assert record["status"] == "dead"
    assert not await redis.exists(keys.entity(dead.entity))


# ----------------------------------------------------------------------------------------------- filters


async def test_replay_by_reason_takes_only_the_matching_ones_and_they_run_again(
    gateway: TestClient, redis: Redis, settings: Settings, start_worker
) -> None:
    dead = await make_dead_letters(
        gateway,
        redis,
        start_worker,
        [(PRODUCT, "P-1", SHOES), (CUSTOMER, "C-1", EMAIL), (PRODUCT, "P-2", f"PermanentError: {SHOES}")],
    )
    shoes = [d for d in dead if d.entity != "cloudretailer:customer:C-1"]
    (email,) = [d for d in dead if d.entity == "cloudretailer:customer:C-1"]

    # Any case, anywhere in the reason.
    answer = await replay(gateway, {"reason": "ATTRIBUTE SET 'shoes'"})
    assert answer == {"replayed": 2, "events": 2, "ids": [d.dl_id for d in shoes], "matched": 2}
    for d in shoes:
        await assert_requeued(gateway, redis, settings, d)
    await assert_still_dead(gateway, redis, email)
    assert await remaining(gateway) == {email.dl_id}

    # The requeued events are ordinary work again: a fixed worker handles them, the other stays dead.
    handled: list[str] = []

    async def fixed(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        handled.extend(e.id for e in events)

    registry = Registry()
    registry.register(CR, PRODUCT, fixed)
    await start_worker(registry)
    await wait_for(lambda: _all_status(gateway, [d.msg_id for d in shoes], "done"))
    assert sorted(handled) == sorted(d.msg_id for d in shoes)
    await assert_still_dead(gateway, redis, email)


async def _all_status(gateway: TestClient, msg_ids: list[str], status: str) -> bool:
    for msg_id in msg_ids:
        record = await (await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)).json()
        if record["status"] != status:
            return False
    return True


async def test_replay_by_type_and_by_type_and_reason(
    gateway: TestClient, redis: Redis, settings: Settings, start_worker
) -> None:
    dead = await make_dead_letters(
        gateway,
        redis,
        start_worker,
        [(PRODUCT, "P-1", SHOES), (CUSTOMER, "C-1", EMAIL), (CUSTOMER, "C-2", "Magento answered 400")],
    )
    p1, c1, c2 = (next(d for d in dead if d.entity.endswith(k)) for k in (":P-1", ":C-1", ":C-2"))

    # Both must match: the customer dead letter with another reason and the product with no such reason stay.
    assert await replay(gateway, {"type": CUSTOMER, "reason": "email"}) == {
        "replayed": 1,
        "events": 1,
        "ids": [c1.dl_id],
        "matched": 1,
    }
    await assert_requeued(gateway, redis, settings, c1)
    assert await remaining(gateway) == {p1.dl_id, c2.dl_id}

    # The type is matched exactly, not as a substring.
    assert (await replay(gateway, {"type": "customer"}))["matched"] == 0
    answer = await replay(gateway, {"type": f" {CUSTOMER} "})
    assert answer["ids"] == [c2.dl_id]
    await assert_requeued(gateway, redis, settings, c2)
    await assert_still_dead(gateway, redis, p1)
    assert await remaining(gateway) == {p1.dl_id}


async def test_replay_all_then_again_replays_nothing(
    gateway: TestClient, redis: Redis, settings: Settings, start_worker
) -> None:
    dead = await make_dead_letters(
        gateway,
        redis,
        start_worker,
        [(PRODUCT, "P-1", SHOES), (CUSTOMER, "C-1", EMAIL), (PRODUCT, "P-2", "timeout")],
    )
    answer = await replay(gateway, {"all": True})
    assert answer == {"replayed": 3, "events": 3, "ids": [d.dl_id for d in dead], "matched": 3}
    for d in dead:
        await assert_requeued(gateway, redis, settings, d)
    assert await redis.zcard(keys.DEADLETTERS) == 0

    assert await replay(gateway, {"all": True}) == {"replayed": 0, "events": 0, "ids": [], "matched": 0}
    # Nothing was queued a second time.
    for d in dead:
        await assert_requeued(gateway, redis, settings, d)
    # Nor by the single replay of an id the bulk one took.
    assert (await gateway.post(f"/admin/dead-letters/{dead[0].dl_id}/replay", headers=AUTH)).status == 404


async def test_limit_takes_the_oldest(gateway: TestClient, redis: Redis, settings: Settings, start_worker) -> None:
    dead = await make_dead_letters(gateway, redis, start_worker, [(PRODUCT, f"P-{i}", SHOES) for i in range(3)])
    answer = await replay(gateway, {"reason": "shoes", "limit": 2})
    assert answer == {"replayed": 2, "events": 2, "ids": [d.dl_id for d in dead[:2]], "matched": 2}
    assert await remaining(gateway) == {dead[2].dl_id}


async def test_matching_walks_pages_across_equal_scores(
    gateway: TestClient, redis: Redis, settings: Settings, start_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny pages and chunks, and dead letters failed in the same millisecond: the walk must neither skip nor
    # repeat one at a page boundary, and the answer lists only the first ids.
    monkeypatch.setattr(deadletters, "MATCH_PAGE", 2)
    monkeypatch.setattr(deadletters, "REPLAY_CHUNK", 3)
    monkeypatch.setattr(deadletters, "BULK_IDS_SHOWN", 4)
    reasons = [SHOES, EMAIL, SHOES, SHOES, EMAIL, SHOES, SHOES, SHOES]
    dead = await make_dead_letters(
        gateway, redis, start_worker, [(PRODUCT, f"P-{i}", r) for i, r in enumerate(reasons)]
    )
    scores = [1000, 1000, 1000, 1000, 1000, 2000, 2000, 3000]
    await redis.zadd(keys.DEADLETTERS, {d.dl_id: s for d, s in zip(dead, scores, strict=True)}, xx=True)
    by_id = {d.dl_id: d for d in dead}
    in_order = [by_id[m.decode()] for m in await redis.zrange(keys.DEADLETTERS, 0, -1)]
    wanted = [d.dl_id for d in in_order if d.reason == SHOES]
    assert len(wanted) == 6

    assert await deadletters.matching_ids(redis, deadletters.ReplayFilter(reason="shoes")) == wanted
    answer = await replay(gateway, {"reason": "shoes"})
    assert answer == {"replayed": 6, "events": 6, "ids": wanted[:4], "matched": 6}
    for d in dead:
        if d.reason == SHOES:
            await assert_requeued(gateway, redis, settings, d)
        else:
            await assert_still_dead(gateway, redis, d)


async def test_concurrent_replays_queue_each_dead_letter_once(
    gateway: TestClient, redis: Redis, settings: Settings, start_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks so the two bulk calls and the single replays interleave at many points.
    monkeypatch.setattr(deadletters, "REPLAY_CHUNK", 2)
    dead = await make_dead_letters(gateway, redis, start_worker, [(PRODUCT, f"P-{i}", SHOES) for i in range(12)])
    singles = [gateway.post(f"/admin/dead-letters/{d.dl_id}/replay", headers=AUTH) for d in dead[::3]]
    bulks = [gateway.post(REPLAY, json={"all": True}, headers=AUTH) for _ in range(2)]
    answers = await asyncio.gather(*bulks, *singles)

    bulk_replayed = [(await r.json())["replayed"] for r in answers[:2]]
    single_replayed = sum(1 for r in answers[2:] if r.status == 202)
    assert {r.status for r in answers[2:]} <= {202, 404}
    assert sum(bulk_replayed) + single_replayed == len(dead)
    for d in dead:
        await assert_requeued(gateway, redis, settings, d)  # each ref exactly once on its pending list


# ----------------------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "all"),
        (b"{}", "all"),
        (b'{"all": false}', "all"),
        (b'{"all": false, "reason": null, "type": null}', "all"),
        (b'{"all": true, "reason": "shoes"}', "all"),
        (b'{"colour": "red"}', "colour"),
        (b'{"all": true, "dry_run": true}', "dry_run"),
        (b'{"reason": 5}', "reason"),
        (b'{"reason": ""}', "reason"),
        (b'{"reason": "   "}', "reason"),
        (b'{"type": ["product.updated"]}', "type"),
        (b'{"all": "yes"}', "all"),
        (b'{"all": 1}', "all"),
        (b'{"all": true, "limit": 0}', "limit"),
        (b'{"all": true, "limit": 10001}', "limit"),
        (b'{"all": true, "limit": "5"}', "limit"),
        (b"[]", "body"),
    ],
)
async def test_a_body_without_one_valid_filter_is_422_naming_the_field(
    gateway: TestClient, redis: Redis, body: bytes, field: str
) -> None:
    await redis.zadd(keys.DEADLETTERS, {"0123456789abcdef": 1})  # something that `all` would take
    resp = await gateway.post(REPLAY, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json(content_type=None)
    assert problem["type"] == "urn:crmagento:problem:invalid-body" and problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == [field]
    assert field in problem["detail"]
    assert await redis.zcard(keys.DEADLETTERS) == 1


async def test_not_json_is_400_and_no_token_is_401(gateway: TestClient) -> None:
    bad = await gateway.post(REPLAY, data=b"{all: true", headers={**AUTH, "Content-Type": "application/json"})
    assert bad.status == 400
    assert (await bad.json(content_type=None))["type"] == "urn:crmagento:problem:bad-body"
    denied = await gateway.post(REPLAY, json={"all": True})
    assert denied.status == 401 and denied.content_type == "application/problem+json"
    # The literal segment is not read as a dead letter's id by the id routes.
    assert (await gateway.get(REPLAY, headers=AUTH)).status == 404
    assert (await gateway.post(f"{REPLAY}/replay", headers=AUTH)).status == 404


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(gateway: TestClient, tmp_path: Path) -> Run:
    return _cli_for(f"http://{gateway.host}:{gateway.port}", tmp_path)


async def test_cli_replays_by_reason_and_type(
    cli: Run, gateway: TestClient, redis: Redis, settings: Settings, start_worker
) -> None:
    dead = await make_dead_letters(
        gateway,
        redis,
        start_worker,
        [(PRODUCT, "P-1", SHOES), (CUSTOMER, "C-1", EMAIL), (PRODUCT, "P-2", SHOES), (PRODUCT, "P-3", "timeout")],
    )
    shoes = [d for d in dead if d.entity.endswith((":P-1", ":P-2"))]

    result = await cli("dead-letters", "replay", "--reason", "Shoes")
    assert result.code == 0, result.err
    assert result.out.strip() == "replayed 2 dead letters (2 events)"
    for d in shoes:
        await assert_requeued(gateway, redis, settings, d)

    as_json = await cli("dead-letters", "replay", "--type", PRODUCT, "--json")
    assert as_json.code == 0, as_json.err
    (p3,) = [d for d in dead if d.entity.endswith(":P-3")]
    assert as_json.json() == {"replayed": 1, "events": 1, "ids": [p3.dl_id], "matched": 1}

    none = await cli("dead-letters", "replay", "--reason", "shoes")
    assert none.code == 0 and "none matched" in none.out
    (c1,) = [d for d in dead if d.entity.endswith(":C-1")]
    assert await remaining(gateway) == {c1.dl_id}


async def test_cli_wants_exactly_one_way_of_choosing(cli: Run, redis: Redis) -> None:
    await redis.zadd(keys.DEADLETTERS, {"0123456789abcdef": 1})
    for args, got in (
        ((), ""),
        (("0123456789abcdef", "--all"), "(got ID and --all)"),
        (("--all", "--reason", "shoes"), "(got --all and --reason/--type)"),
        (("0123456789abcdef", "--type", PRODUCT), "(got ID and --reason/--type)"),
    ):
        result = await cli("dead-letters", "replay", *args)
        assert result.code == 2, (args, result.out, result.err)
        assert "give one of ID, --all, or --reason and/or --type" in result.err and got in result.err
        assert result.out == ""
    # Refused by the gateway: an empty reason (422) is a usage error too.
    empty = await cli("dead-letters", "replay", "--reason", "")
    assert empty.code == 2 and "reason" in empty.err
    assert await redis.zcard(keys.DEADLETTERS) == 1
