"""What happened to X: GET /admin/trace and `crmagento trace`, with the real sandboxes and workers where the
timeline is written by the sync itself (a price change, an order import, a customer sync, a dead letter), and
the gateway alone for the edges (unknown, unauthorized, bad q, markup in a SKU, the bounded list)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from crmcore import keys, timeline
from crmcore.settings import Settings
from tests.conftest import post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from tests.support.stack import Stack, full_stack
from tests.test_catalog import catalog_rules, cr_products, is_shoes
from tests.test_cli import CLI, clean_env
from tests.test_customers import registry as customer_rules
from tests.test_orders import SKU_A, complete, orders_only, place, stack_for_orders

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SETTLED = ("done", "skipped", "dead")


async def traced(stack: Stack, q: str, kind: str, settled_events: int = 1) -> dict[str, Any]:
    """The match of `kind` for q, once its newest `settled_events` events have settled."""

    async def ready() -> dict[str, Any] | None:
        status, body = await stack.admin("GET", "/admin/trace", params={"q": q})
        if status != 200:
            return None
        match = next((m for m in body["matches"] if m["kind"] == kind), None)
        done = [e for e in (match or {}).get("timeline", []) if e["what"] in SETTLED]
        return match if len(done) >= settled_events else None

    return await wait_for(ready, within=20)


def whats(match: dict[str, Any], event: str) -> list[str]:
    return [e["what"] for e in match["timeline"] if e["event"] == event]


# --- written by the sync itself ------------------------------------------------------------------------------


async def test_a_price_change_shows_received_processing_done_under_its_sku(redis_url: str) -> None:
    async with full_stack(redis_url, products=6) as stack:
        await stack.start_worker(catalog_rules())
        product = next(p for p in await cr_products(stack) if p["web_active"] and not is_shoes(p))
        sku = product["sku"]
        await stack.cr("PUT", f"/products/{product['id']}", json={"price": 123.45})

        match = await traced(stack, sku.lower(), "product")  # an alias is found whatever its case
        assert match["entity"] == f"cloudretailer:product:{product['id']}"
        assert match["source"] == "cloudretailer" and sku in match["aliases"]
        newest = match["timeline"][0]
        assert whats(match, newest["event"]) == ["done", "processing", "received"]
        assert newest["job"] and newest["attempt"] == 1 and newest["type"] == "product.updated"
        assert newest["detail"].startswith("Magento "), newest  # what the job wrote
        stamps = [e["at"] for e in match["timeline"]]
        assert stamps == sorted(stamps, reverse=True)

        # The same entity by the event's webhook id, by its ref, and by the entity name as the log shows it.
        event_id = newest["event"].partition(":")[2]
        for q in (event_id, newest["event"], match["entity"]):
            status, body = await stack.admin("GET", "/admin/trace", params={"q": q})
            assert status == 200 and [m["entity"] for m in body["matches"]] == [match["entity"]], (q, body)


async def test_an_order_number_after_an_import_and_a_dead_letter_with_its_error(redis_url: str) -> None:
    async with stack_for_orders(redis_url) as stack:
        await stack.start_worker(orders_only())
        good = await complete(stack, await place(stack, [{"sku": SKU_A, "price": 5}]))
        bad = await complete(stack, await place(stack, [{"sku": "NOT-IN-CR", "price": 5}]))

        match = await traced(stack, good["increment_id"], "order")
        assert match["entity"] == f"magento:order:{good['entity_id']}"
        assert good["increment_id"] in match["aliases"]
        assert whats(match, match["timeline"][0]["event"]) == ["done", "processing", "received"]
        assert "Cloud Retailer POST" in (match["timeline"][0]["detail"] or ""), match["timeline"][0]

        dead = await traced(stack, bad["increment_id"], "order")
        newest = dead["timeline"][0]
        assert newest["what"] == "dead" and "no product with SKU 'NOT-IN-CR'" in newest["error"], newest


async def test_an_email_after_a_customer_sync(redis_url: str) -> None:
    async with full_stack(redis_url, customers=0) as stack:
        await stack.start_worker(customer_rules(stack.settings))
        created = await stack.cr(
            "POST", "/customers", json={"email": "trace.me@example.com", "first_name": "Tra", "last_name": "Ce"}
        )
        match = await traced(stack, "Trace.Me@Example.com", "customer")
        assert match["entity"] == f"cloudretailer:customer:{created['id']}"
        assert "trace.me@example.com" in match["aliases"]
        assert whats(match, match["timeline"][0]["event"])[0] == "done"


# --- the gateway alone ----------------------------------------------------------------------------------------


async def test_unknown_unauthorized_and_bad_queries(gateway: TestClient) -> None:
    resp = await gateway.get("/admin/trace", params={"q": "nothing-by-this-name"}, headers=AUTH)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert (await gateway.get("/admin/trace", params={"q": "x"})).status == 401
    for q in ("", "   ", "x" * 300):
        resp = await gateway.get("/admin/trace", params={"q": q}, headers=AUTH)
        body = await resp.json(content_type=None)
        assert resp.status == 400 and body["errors"][0]["field"] == "q", body
    assert (await gateway.get("/admin/trace", headers=AUTH)).status == 400


async def test_a_queued_event_shows_as_received_by_its_id(gateway: TestClient, redis: Redis) -> None:
    msg_id = new_id()
    body = envelope("product.updated", {"product_id": "P-q", "sku": "SKU-q"})
    assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
    resp = await gateway.get("/admin/trace", params={"q": msg_id}, headers=AUTH)
    (match,) = (await resp.json())["matches"]
    assert match["entity"] == "cloudretailer:product:P-q"
    assert [e["what"] for e in match["timeline"]] == ["received"]

    # Handled before timelines existed (no queue, no timeline): asked by its id, its arrival still shows.
    await redis.delete(keys.pending(match["entity"]), keys.entity(match["entity"]))
    resp = await gateway.get("/admin/trace", params={"q": msg_id}, headers=AUTH)
    assert [e["what"] for e in (await resp.json())["matches"][0]["timeline"]] == ["received"]


def _noted(ref: str, entity: str, event_type: str = "product.updated") -> SimpleNamespace:
    return SimpleNamespace(ref=ref, event=SimpleNamespace(entity=entity, type=event_type))


async def test_the_timeline_is_bounded_and_expires(redis: Redis, settings: Settings) -> None:
    entity = "cloudretailer:product:P-many"
    for i in range(timeline.MAX_ENTRIES + 15):
        async with redis.pipeline(transaction=False) as pipe:
            timeline.note(pipe, [_noted(f"cloudretailer:e-{i}", entity)], "done", settings, attempt=1, job="j")
            await pipe.execute()
    assert await redis.llen(keys.timeline(entity)) == timeline.MAX_ENTRIES
    assert 0 < await redis.ttl(keys.timeline(entity)) <= settings.event_record_ttl_seconds
    for i in range(timeline.MAX_ALIASES + 5):
        await timeline.remember(redis, "SKU-MANY", f"cloudretailer:product:P-{i}")
    assert await redis.zcard(timeline.alias_key("sku-many")) == timeline.MAX_ALIASES  # type: ignore[arg-type]
    assert await redis.ttl(timeline.alias_key("sku-many")) > 0  # type: ignore[arg-type]


# --- the CLI ----------------------------------------------------------------------------------------------------


async def crmagento(gateway: TestClient, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = clean_env(
        CRMAGENTO_ADMIN_URL=f"http://{gateway.host}:{gateway.port}", CRMAGENTO_ADMIN_TOKEN=ADMIN_TOKEN, COLUMNS="250"
    )
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode()


async def test_the_cli_prints_the_timeline_and_never_renders_markup(
    gateway: TestClient, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    sku, entity = "[bold]x[/bold]", "cloudretailer:product:P-m"
    msg_id = new_id()
    body = envelope("product.updated", {"product_id": "P-m", "sku": sku})
    assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
    await timeline.remember(redis, sku, entity)
    async with redis.pipeline(transaction=False) as pipe:
        note = _noted(f"cloudretailer:{msg_id}", entity)
        timeline.note(
            pipe, [note], "dead", settings, attempt=3, error="[red]boom[/red] for " + sku, job=keys.job_id(entity, 1)
        )
        await pipe.execute()

    code, out, err = await crmagento(gateway, tmp_path, "trace", sku)
    assert code == 0, err
    assert f"{entity} ({sku})" in out  # the title, escaped
    assert "[red]boom[/red] for [bold]x[/bold]" in out and "dead" in out and "received" in out
    assert out.index("dead") < out.index("received")  # newest first

    code, out, _ = await crmagento(gateway, tmp_path, "trace", sku, "--json")
    assert code == 0 and json.loads(out)["matches"][0]["aliases"] == [sku]

    code, out, err = await crmagento(gateway, tmp_path, "trace", "no-such-thing")
    assert code == 1 and out == "" and "crmagento:" in err
