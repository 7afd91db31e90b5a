"""Ids from outside cannot reach another entity's keys, and one event the queue cannot take never fails the
others: over real HTTP, a real Redis and a real worker (crmcore/keys.py's docstring has the argument)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from crmcore import jobrecords, keys
from crmcore.entityqueue import ACCEPT_DUPLICATE, ACCEPT_QUEUED, ACCEPT_REFUSED, EntityQueue, QueuedEvent
from crmcore.eventlog import decode_record
from crmcore.events import (
    CATALOGUE,
    ID_PATTERN,
    AcceptedEvent,
    InventoryEvent,
    MagentoOrderEvent,
    ProductEvent,
    Source,
)
from crmcore.jobrecords import AdminJobKind, feed_origin
from crmcore.remotes import DRAIN_RANKS, drain_rank, rank_of
from crmcore.settings import Settings
from tests.conftest import post_event, wait_for
from tests.support.signing import envelope, new_id
from workers.feed import Feeder
from workers.registry import HandlerContext, Registry

CR = Source.CLOUDRETAILER
QUEUE = "crmagento:queue"
SPEC = yaml.safe_load((Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


async def _post(gateway: TestClient, event_type: str, data: dict[str, Any], source: str = "cloudretailer") -> Any:
    msg_id = new_id()
    resp = await post_event(gateway, source, envelope(event_type, data), msg_id=msg_id)
    return msg_id, resp


async def _record(redis: Redis, ref: str) -> dict[str, Any] | None:
    raw = await redis.hgetall(keys.event(ref))
    return decode_record(raw) if raw else None


# --- the entity encoding --------------------------------------------------------------------------------------
def test_sources_and_kinds_are_words_without_the_separator() -> None:
    # Half of the argument that no id names another key: ':' comes only from the separator.
    for source, types in CATALOGUE.items():
        assert re.fullmatch("[a-z]+", source.value)
        for model in types.values():
            assert re.fullmatch("[a-z]+", model.KIND)


def test_every_kind_has_one_number_of_ids() -> None:
    # The other half: a name of a given source and kind always has the same number of parts.
    arity: dict[tuple[Source, str], set[int]] = {}
    for source, types in CATALOGUE.items():
        for model in types.values():
            arity.setdefault((source, model.KIND), set()).add(len(model.KEY))
    assert all(len(counts) == 1 for counts in arity.values()), arity


def test_usual_ids_keep_their_names() -> None:
    # Names written before the encoding (and the jobs queued under them) still mean the same entity.
    assert ProductEvent(product_id="P-2", sku="S").entity(CR) == "cloudretailer:product:P-2"
    assert (
        InventoryEvent(store_id="W-1", sku="CR-000005_a.b~c").entity(CR)
        == "cloudretailer:inventory:W-1:CR-000005_a.b~c"
    )
    assert MagentoOrderEvent(order_id=42, increment_id="000000042").entity(Source.MAGENTO) == "magento:order:42"


def test_hostile_ids_get_names_of_their_own() -> None:
    assert ProductEvent(product_id="P-2:pending", sku="S").entity(CR) == "cloudretailer:product:P-2%3Apending"
    one = InventoryEvent(store_id="W-1", sku="A:B").entity(CR)
    other = InventoryEvent(store_id="W-1:A", sku="B").entity(CR)
    assert (one, other) == ("cloudretailer:inventory:W-1:A%3AB", "cloudretailer:inventory:W-1%3AA:B")
    assert keys.entity_parts(one) == keys.EntityName("cloudretailer", "inventory", ("W-1", "A:B"))
    assert keys.entity_parts(other).ids == ("W-1:A", "B")
    # '%' is encoded too, so an id that looks encoded is not confused with the one it spells.
    assert ProductEvent(product_id="P-2%3Apending", sku="S").entity(CR) == "cloudretailer:product:P-2%253Apending"


_IDS = st.text(min_size=1, max_size=20)


@given(a=st.lists(_IDS, min_size=1, max_size=2), b=st.lists(_IDS, min_size=1, max_size=2))
def test_no_entity_key_is_another_entitys_key(a: list[str], b: list[str]) -> None:
    name_a, name_b = (keys.entity_name("cloudretailer", "inventory", ids) for ids in (a, b))
    assert keys.entity_parts(name_a) == ("cloudretailer", "inventory", tuple(a))
    assert name_a.count(":") == 1 + len(a)
    if a != b:
        assert name_a != name_b
    assert keys.entity(name_a) not in {keys.pending(name_b), keys.inflight(name_b)}


def test_drain_rank_reads_the_kind_of_an_encoded_name() -> None:
    name = InventoryEvent(store_id="W-1:product", sku="A:B").entity(CR)
    assert rank_of(drain_rank(name, 1_000)) == DRAIN_RANKS["inventory"]


# --- over the gateway -----------------------------------------------------------------------------------------
class Recorder:
    """A handler that records the entity and ids of every event it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        self.seen.extend((e.entity, e.id) for e in events)


async def test_an_id_naming_a_pending_list_is_its_own_entity(
    gateway: TestClient, redis: Redis, start_worker: Callable[..., Any]
) -> None:
    # P-2 has a job waiting; then the probe's 'P-2:pending', then more for P-2: nothing may be refused.
    first, resp = await _post(gateway, "product.updated", {"product_id": "P-2", "sku": "S-2"})
    assert resp.status == 202
    hostile, resp = await _post(gateway, "product.updated", {"product_id": "P-2:pending", "sku": "S-2"})
    assert resp.status == 202, await resp.text()
    more = [await _post(gateway, "product.updated", {"product_id": "P-2", "sku": "S-2"}) for _ in range(3)]
    assert [r.status for _, r in more] == [202] * 3

    p2, odd = "cloudretailer:product:P-2", "cloudretailer:product:P-2%3Apending"
    assert await redis.type(keys.pending(p2)) == b"list" and await redis.llen(keys.pending(p2)) == 4
    assert await redis.type(keys.entity(odd)) == b"hash" and await redis.llen(keys.pending(odd)) == 1
    assert await redis.zcard(QUEUE) == 2  # one job each
    assert (await _record(redis, f"cloudretailer:{hostile}") or {})["entity"] == odd

    recorder = Recorder()
    registry = Registry()
    registry.register(CR, "product.updated", recorder)
    await start_worker(registry)
    ids = [first, *(m for m, _ in more)]
    await wait_for(lambda: len(recorder.seen) == 5, within=15)
    assert sorted(recorder.seen) == sorted([(p2, i) for i in ids] + [(odd, hostile)])
    await wait_for(lambda: _all_status(redis, [first, hostile, *ids], "done"))


async def _all_status(redis: Redis, ids: list[str], status: str) -> bool:
    return all([((await _record(redis, f"cloudretailer:{i}")) or {}).get("status") == status for i in ids])


async def test_a_store_and_sku_pair_that_shares_a_spelling_is_two_entities(gateway: TestClient, redis: Redis) -> None:
    one, r1 = await _post(gateway, "inventory.updated", {"store_id": "W-1", "sku": "A:B"})
    other, r2 = await _post(gateway, "inventory.updated", {"store_id": "W-1:A", "sku": "B"})
    assert (r1.status, r2.status) == (202, 202)
    names = {(await _record(redis, f"cloudretailer:{i}") or {})["entity"] for i in (one, other)}
    assert names == {"cloudretailer:inventory:W-1:A%3AB", "cloudretailer:inventory:W-1%3AA:B"}
    assert await redis.zcard(QUEUE) == 2
    for name in names:
        assert await redis.llen(keys.pending(name)) == 1


def _metric(text: str, outcome: str) -> float:
    pattern = rf'crmagento_webhooks_total\{{outcome="{outcome}",source="cloudretailer",type="product.updated"\}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_one_event_whose_key_holds_another_type_is_refused_and_the_burst_goes_on(
    gateway: TestClient, redis: Redis
) -> None:
    # What a collided name left behind before the encoding: P-2's pending list is a string.
    await redis.set(keys.pending("cloudretailer:product:P-2"), "left over")
    products = [f"P-{n}" for n in range(30)]
    answers = await asyncio.gather(
        *(_post(gateway, "product.updated", {"product_id": p, "sku": f"S-{p}"}) for p in products)
    )
    by_product = dict(zip(products, answers, strict=True))
    bad_id, bad = by_product.pop("P-2")
    assert bad.status == 409
    assert bad.content_type == "application/problem+json"
    body = await bad.json(content_type=None)
    assert body["type"] == "urn:crmagento:problem:entity-conflict" and body["id"] == bad_id
    assert "P-2" not in orjson.dumps(body).decode().replace(bad_id, "")  # no key or entity named
    assert await redis.get(keys.pending("cloudretailer:product:P-2")) == b"left over"
    assert await _record(redis, f"cloudretailer:{bad_id}") is None  # nothing written for it

    assert [r.status for _, r in by_product.values()] == [202] * 29
    for product, (msg_id, _) in by_product.items():
        record = await _record(redis, f"cloudretailer:{msg_id}")
        assert record is not None and record["status"] == "queued"
        assert await redis.lrange(keys.pending(f"cloudretailer:product:{product}"), 0, -1) == [
            f"cloudretailer:{msg_id}".encode()
        ]
    assert await redis.zcard(QUEUE) == 29

    text = await (await gateway.get("/metrics")).text()
    assert _metric(text, "conflict") == 1 and _metric(text, "queued") == 29
    # A retry meets the same key: the same answer, still nothing written.
    again = await post_event(
        gateway, "cloudretailer", envelope("product.updated", {"product_id": "P-2", "sku": "S"}), msg_id=bad_id
    )
    assert again.status == 409


async def test_a_shared_key_of_another_type_fails_the_batch_before_anything_is_written(
    gateway: TestClient, redis: Redis
) -> None:
    # The one case the whole batch cannot be taken: then nothing of it is stored, so the 503 is true.
    await redis.set(keys.RECENT_EVENTS, "not a zset")
    msg_id, resp = await _post(gateway, "product.updated", {"product_id": "P-1", "sku": "S"})
    assert resp.status == 503
    assert await _record(redis, f"cloudretailer:{msg_id}") is None
    assert not await redis.exists(keys.entity("cloudretailer:product:P-1"), keys.pending("cloudretailer:product:P-1"))
    assert await redis.zcard(QUEUE) == 0


# --- the accept script, one batch -----------------------------------------------------------------------------
def _row(product: str, msg_id: str | None = None) -> QueuedEvent:
    data = ProductEvent(product_id=product, sku="S")
    return QueuedEvent(
        "cloudretailer", msg_id or new_id(), "product.updated", data.entity(CR), "t", data.model_dump_json()
    )


async def test_a_batch_answers_each_event_on_its_own(redis: Redis, settings: Settings) -> None:
    queue = EntityQueue(redis, settings.queue_name)
    rows = [_row(f"P-{n}") for n in range(6)]
    await redis.set(keys.pending(rows[1].entity), "a string")  # wrong pending list
    await redis.rpush(keys.entity(rows[3].entity), "a list")  # wrong entity hash
    await redis.rpush(keys.event(rows[4].ref), "a list")  # wrong event record
    dup = _row("P-5", rows[5].id)
    statuses = await queue.accept([*rows, dup, _row("P-1")], now_ms=1, record_ttl=60, recent_max=100)
    assert statuses == [
        ACCEPT_QUEUED,
        ACCEPT_REFUSED,
        ACCEPT_QUEUED,
        ACCEPT_REFUSED,
        ACCEPT_REFUSED,
        ACCEPT_QUEUED,
        ACCEPT_DUPLICATE,
        ACCEPT_REFUSED,
    ]
    for n in (0, 2, 5):
        assert await redis.type(keys.event(rows[n].ref)) == b"hash"
        assert await redis.lrange(keys.pending(rows[n].entity), 0, -1) == [rows[n].ref.encode()]
    for n in (1, 3):
        assert not await redis.exists(keys.event(rows[n].ref))
    assert await redis.lrange(keys.event(rows[4].ref), 0, -1) == [b"a list"]  # left as it was
    assert not await redis.exists(keys.pending(rows[3].entity))
    assert await redis.zcard(QUEUE) == 3
    recent = {r.decode() for r in await redis.zrange(keys.RECENT_EVENTS, 0, -1)}
    assert recent == {rows[n].ref for n in (0, 2, 5)}


async def test_a_feed_counts_a_refused_change_and_goes_on(redis: Redis, settings: Settings) -> None:
    job_id = jobrecords.new_job_id(AdminJobKind.RESYNC_PRODUCTS)
    await jobrecords.create(redis, job_id, AdminJobKind.RESYNC_PRODUCTS, {})
    await redis.set(keys.pending("cloudretailer:product:P-1"), "a string")
    async with Feeder(redis, settings, feed_origin(job_id)) as feeder:
        for n in range(4):
            await feeder.add(CR, "product.updated", ProductEvent(product_id=f"P-{n}", sku="S"))
    assert (feeder.fed, feeder.queued, feeder.refused) == (4, 3, 1)
    # Counted as failed on the job at once (it never runs), so the job still completes its progress.
    record = await jobrecords.get(redis, job_id)
    assert record is not None and record["progress"]["failed"] == 1
    assert await redis.hget(keys.JOB_STATS, ACCEPT_REFUSED) == b"1"


async def test_a_refused_event_raises_no_error_in_the_queue(redis: Redis, settings: Settings) -> None:
    # The old failure: the script's WRONGTYPE escaped as an error for the whole batch.
    await redis.set(keys.entity("cloudretailer:product:P-1"), "a string")
    queue = EntityQueue(redis, settings.queue_name)
    statuses = await queue.accept([_row("P-1"), _row("P-7")], now_ms=1, record_ttl=60, recent_max=100)
    assert statuses == [ACCEPT_REFUSED, ACCEPT_QUEUED]


# --- ids at the edge ------------------------------------------------------------------------------------------
CONTROLS = ["\x00", "\x01", "\n", "\x1f", "\x7f", "\x85", "\x9f"]
FIELDS = [
    ("cloudretailer", "product.updated", {"product_id": "P-1", "sku": "S-1"}, "product_id"),
    ("cloudretailer", "product.updated", {"product_id": "P-1", "sku": "S-1"}, "sku"),
    ("cloudretailer", "inventory.updated", {"store_id": "W-1", "sku": "S-1"}, "store_id"),
    ("cloudretailer", "category.updated", {"category_id": "C-1"}, "category_id"),
    ("cloudretailer", "customer.updated", {"customer_id": "CU-1"}, "customer_id"),
    ("magento", "order.completed", {"order_id": 7, "increment_id": "0007"}, "increment_id"),
]


@pytest.mark.parametrize("control", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
@pytest.mark.parametrize(("source", "event_type", "data", "field"), FIELDS, ids=[f[3] for f in FIELDS])
async def test_an_id_with_a_control_character_is_refused_naming_the_field(
    gateway: TestClient,
    redis: Redis,
    source: str,
    event_type: str,
    data: dict[str, Any],
    field: str,
    control: str,
) -> None:
    # At the end too: a trailing newline is refused, not stripped into a valid id.
    for value in (f"A{control}B", f"AB{control}"):
        msg_id, resp = await _post(gateway, event_type, {**data, field: value}, source)
        assert resp.status == 422, await resp.text()
        body = await resp.json(content_type=None)
        assert body["type"] == "urn:crmagento:problem:invalid-data" and body["id"] == msg_id
        assert body["errors"] == [{"field": f"data.{field}", "reason": "must be printable: no control characters"}]
    assert await redis.zcard(QUEUE) == 0


# --- the spec states the same rule ----------------------------------------------------------------------------
def _max_length(model: type[BaseModel], field: str) -> int:
    return next(m.max_length for m in model.model_fields[field].metadata if getattr(m, "max_length", None))


SPEC_IDS = [
    (SCHEMAS["CrId"], ProductEvent, "product_id"),
    (SCHEMAS["Sku"], ProductEvent, "sku"),
    (SCHEMAS["MagentoOrderData"]["properties"]["increment_id"], MagentoOrderEvent, "increment_id"),
]


@pytest.mark.parametrize(("schema", "model", "field"), SPEC_IDS, ids=[s[2] for s in SPEC_IDS])
def test_the_spec_states_the_models_rule(schema: dict[str, Any], model: type[BaseModel], field: str) -> None:
    assert schema["pattern"] == ID_PATTERN
    assert (schema["minLength"], schema["maxLength"]) == (1, _max_length(model, field))


SAMPLES = ["P-1", " P-1 ", "P-2:pending", "A:B", "100%", "é", "日本", "a b", "x\u2028y", "\u00a0", " ", ""]
SAMPLES += [f"A{c}" for c in CONTROLS] + [f"{c}A" for c in CONTROLS] + ["\t P-1", "P-1\r\n"]


@pytest.mark.parametrize("value", SAMPLES, ids=[ascii(v) for v in SAMPLES])
def test_the_spec_pattern_and_the_model_agree(value: str) -> None:
    # ECMA-262 anchors the pattern at the very end (Python's `$` would also take a trailing newline): fullmatch.
    spec_ok = re.fullmatch(ID_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    base = {"order_id": 1, "increment_id": "1"}
    try:
        MagentoOrderEvent.model_validate({**base, "increment_id": value})
        model_ok = True
    except ValidationError:
        model_ok = False
    assert spec_ok == model_ok
