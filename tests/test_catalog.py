"""Catalog sync end to end: both sandboxes, the real gateway and workers, real Redis, over HTTP."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from typing import Any

import pytest

from crmcore import keys
from sandbox.cloudretailer.keys import STATE as CR_STATE
from sandbox.magento.routing import STATE
from tests.conftest import post_event, wait_for
from tests.support.signing import envelope
from tests.support.stack import Stack, full_stack
from workers import sync
from workers.binder import Binder
from workers.registry import Registry

SUPPRESS = {"X-Sandbox-Suppress-Webhook": "1"}


def catalog_rules() -> Registry:
    registry = Registry()
    sync.catalog.register(registry)
    return registry


WRITES = ("POST ", "PUT ", "DELETE ")


def png(rgb: tuple[int, int, int]) -> bytes:
    """A real 1x1 PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00" + bytes(rgb)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def settled(stack: Stack, within: float = 30) -> list[dict[str, Any]]:
    """Wait until every event in the log is settled, then return them."""

    async def check() -> list[dict[str, Any]] | None:
        _, body = await stack.admin("GET", "/admin/events?limit=500")
        items = body["items"]
        busy = [e for e in items if e["status"] in ("queued", "processing", "failed")]
        return None if busy or not items else items

    async def quiet() -> list[dict[str, Any]] | None:
        # A handler's write may make a sandbox send another webhook: each look waits for those first.
        await stack.deliveries_landed()
        return await check()

    return await wait_for(quiet, within=within)


async def full_resync(stack: Stack) -> dict[str, Any]:
    status, body = await stack.admin("POST", "/admin/resync/products", json={})
    assert status == 202, body

    async def done() -> dict[str, Any] | None:
        _, job = await stack.admin("GET", body["href"])
        return job if job["status"] in ("done", "failed") else None

    job = await wait_for(done, within=60)
    await settled(stack)
    return job


async def magento_product(stack: Stack, sku: str) -> dict[str, Any]:
    return await stack.magento("GET", f"products/{sku}")


def attrs(product: dict[str, Any]) -> dict[str, Any]:
    return {a["attribute_code"]: a["value"] for a in product["custom_attributes"]}


async def writes(stack: Stack) -> dict[str, int]:
    async with stack.magento_api.get(f"{stack.magento_url}/_sandbox/stats") as resp:
        calls = (await resp.json())["calls"]
    return {k: v for k, v in calls.items() if k.startswith(WRITES)}


async def reset_stats(stack: Stack) -> None:
    async with stack.magento_api.delete(f"{stack.magento_url}/_sandbox/stats"):
        pass


def is_shoes(product: dict[str, Any]) -> bool:
    """Products whose primary attribute set Magento lacks (they fail by design)."""
    return any(s["primary"] and s["name"] == "Shoes" for s in product["attribute_sets"])


async def cr_products(stack: Stack) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/products", params={"limit": "500"}))["items"]


@pytest.fixture
async def stack(redis_url: str):
    async with full_stack(redis_url, products=8) as s:
        await s.start_worker(catalog_rules())
        yield s


async def test_full_sync_maps_every_rule_and_a_second_sync_writes_nothing(stack: Stack) -> None:
    job = await full_resync(stack)
    products = await cr_products(stack)
    assert job["result"]["fed"] == len(products) == 8
    shoes = [p for p in products if any(s["primary"] and s["name"] == "Shoes" for s in p["attribute_sets"])]
    assert shoes, "the seeded catalog has products whose primary set Magento lacks"
    assert job["progress"] == {"done": len(products) - len(shoes), "failed": len(shoes), "total": len(products)}

    sets = {
        s["attribute_set_name"]: s["attribute_set_id"]
        for s in (
            await stack.magento("GET", "products/attribute-sets/sets/list", params={"searchCriteria[pageSize]": "50"})
        )["items"]
    }
    tree = await stack.magento("GET", "categories")
    for p in products:
        if p in shoes:
            continue
        m = await magento_product(stack, p["sku"])
        primary = next(s["name"] for s in p["attribute_sets"] if s["primary"])
        assert m["name"] == p["name"] and m["price"] == p["price"] and m["weight"] == p["weight"]
        assert m["attribute_set_id"] == sets[primary]
        assert m["status"] == (1 if p["web_active"] else 2)
        assert m["extension_attributes"]["website_ids"] == [1]
        a = attrs(m)
        assert a["description"] == p["description_html"]
        assert a["url_key"].endswith(p["sku"].lower())
        # select attributes as option ids, free text as is
        if "brand" in p["attributes"]:
            assert a["brand"] == p["attributes"]["brand"]
        if "color" in p["attributes"]:
            options = await stack.magento("GET", "products/attributes/color/options")
            label = next(o["label"] for o in options if o["value"] == a["color"])
            assert label == p["attributes"]["color"]
        # images: one entry per Cloud Retailer image, the primary holding the three roles
        media = m["media_gallery_entries"]
        assert len(media) == len(p["images"])
        primary_sha = next(i["sha256"] for i in p["images"] if i["primary"])
        holder = next(e for e in media if "image" in e["types"])
        assert primary_sha[:16] in holder["file"] and sorted(holder["types"]) == ["image", "small_image", "thumbnail"]
        # categories: the department and the categories, created under the store's root
        linked = {int(link["category_id"]) for link in m["extension_attributes"]["category_links"]}
        assert len(linked) == len({p["department_id"], *p["category_ids"]})
    assert [c["name"] for c in tree["children_data"][0]["children_data"]]  # departments under the root

    # Shoes: failed with a clear reason, never created
    events = await settled(stack)
    dead = [e for e in events if e["status"] == "dead"]
    assert len(dead) == len(shoes) and all("attribute set 'Shoes'" in e["last_error"] for e in dead)
    assert "Shoes" not in sets
    _, dls = await stack.admin("GET", "/admin/dead-letters")
    assert dls["total"] == len(shoes)

    await reset_stats(stack)
    await full_resync(stack)
    assert await writes(stack) == {}, "an unchanged catalog must cost no Magento write"


async def test_changes_in_cloud_retailer_arrive_and_magento_only_attributes_survive(stack: Stack) -> None:
    await full_resync(stack)
    product = next(
        p
        for p in await cr_products(stack)
        if p["web_active"]
        and "color" in p["attributes"]
        and not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
    )
    sku = product["sku"]
    # An admin edits a shared attribute and a Magento-only one in Magento.
    white = next(
        o["value"]
        for o in await stack.magento("GET", "products/attributes/color/options")
        if o["label"] != product["attributes"]["color"] and o["value"]
    )
    await stack.magento(
        "PUT",
        f"products/{sku}",
        json={
            "product": {
                "sku": sku,
                "custom_attributes": [
                    {"attribute_code": "color", "value": white},
                    {"attribute_code": "badge_text", "value": "Staff pick"},
                ],
            }
        },
    )

    await stack.cr(
        "PUT",
        f"/products/{product['id']}",
        json={"price": 99.99, "attributes": {**product["attributes"], "size": "XL"}},
    )
    await settled(stack)
    m = await magento_product(stack, sku)
    a = attrs(m)
    assert m["price"] == 99.99
    color_options = {o["value"]: o["label"] for o in await stack.magento("GET", "products/attributes/color/options")}
    assert color_options[a["color"]] == product["attributes"]["color"], "a shared attribute is overwritten"
    assert a["badge_text"] == "Staff pick", "a Magento-only attribute survives every sync"

    # Not web-active -> disabled; deleted -> disabled, never deleted.
    await stack.cr("PUT", f"/products/{product['id']}", json={"web_active": False})
    await settled(stack)
    assert (await magento_product(stack, sku))["status"] == 2
    await stack.cr("PUT", f"/products/{product['id']}", json={"web_active": True})
    await settled(stack)
    assert (await magento_product(stack, sku))["status"] == 1
    await stack.cr("DELETE", f"/products/{product['id']}")
    await settled(stack)
    assert (await magento_product(stack, sku))["status"] == 2


async def test_images_removed_changed_and_hand_added(stack: Stack) -> None:
    await full_resync(stack)
    product = next(
        p
        for p in await cr_products(stack)
        if len(p["images"]) >= 1 and not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
    )
    sku = product["sku"]
    hand = {
        "media_type": "image",
        "label": "lifestyle",
        "position": 9,
        "disabled": False,
        "types": [],
        "content": {
            "base64_encoded_data": base64.b64encode(png((1, 2, 3))).decode(),
            "type": "image/png",
            "name": "lifestyle.png",
        },
    }
    await stack.magento("POST", f"products/{sku}/media", json={"entry": hand})

    # Replace every Cloud Retailer image by one new primary image.
    new = base64.b64encode(png((200, 10, 10))).decode()
    await reset_stats(stack)
    await stack.cr("PUT", f"/products/{product['id']}", json={"images": [{"content_base64": new, "primary": True}]})
    await settled(stack)
    media = (await magento_product(stack, sku))["media_gallery_entries"]
    files = sorted(e["file"] for e in media)
    assert len(media) == 2, files
    assert any("lifestyle" in f for f in files), "an image added by hand in Magento is left alone"
    cr_now = (await stack.cr("GET", f"/products/{product['id']}"))["images"]
    ours = next(e for e in media if cr_now[0]["sha256"][:16] in e["file"])
    assert sorted(ours["types"]) == ["image", "small_image", "thumbnail"]
    done = await writes(stack)
    uploads = sum(v for k, v in done.items() if k.startswith("POST ") and k.endswith("/media"))
    assert uploads == 1, done

    # A resync with nothing changed uploads nothing.
    await reset_stats(stack)
    await stack.admin("POST", "/admin/resync/products", json={"skus": [sku]})
    await settled(stack)
    assert await writes(stack) == {}


async def test_a_product_moved_to_another_category_loses_the_old_link(stack: Stack) -> None:
    await full_resync(stack)
    products = [
        p
        for p in await cr_products(stack)
        if not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
    ]
    product = products[0]
    categories = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    other = (
        next(
            c
            for c in categories
            if c["parent_id"] == product["department_id"] and c["id"] not in product["category_ids"]
        )
        if any(
            c["parent_id"] == product["department_id"] and c["id"] not in product["category_ids"] for c in categories
        )
        else next(c for c in categories if c["parent_id"] and c["id"] not in product["category_ids"])
    )
    # A link an admin made to a Magento-only category must survive.
    own = await stack.magento(
        # another root's tree, which the gateway does not sync: a Magento-only category
        "POST",
        "categories",
        json={"category": {"parent_id": 1, "name": "Staff Picks", "is_active": True}},
    )
    await settled(stack)
    await stack.magento(
        "POST",
        f"categories/{own['id']}/products",
        json={"productLink": {"sku": product["sku"], "position": 0, "category_id": str(own["id"])}},
    )

    await stack.cr(
        "PUT", f"/products/{product['id']}", json={"department_id": other["parent_id"], "category_ids": [other["id"]]}
    )
    await settled(stack)
    m = await magento_product(stack, product["sku"])
    linked = {int(link["category_id"]) for link in m["extension_attributes"]["category_links"]}
    names = {(await stack.magento("GET", f"categories/{c}"))["name"] for c in linked}
    dept = next(c for c in categories if c["id"] == other["parent_id"])
    assert names == {other["name"], dept["name"], "Staff Picks"}


async def test_categories_both_ways_without_echo(stack: Stack) -> None:
    await full_resync(stack)
    before = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    # Every category the gateway created in Magento called back; none came back to Cloud Retailer.
    assert len(before) == len({c["id"] for c in before})

    # Created in Magento by an admin -> created in Cloud Retailer, under the mapped parent.
    dept = next(c for c in before if c["parent_id"] is None)
    from workers.binder import Binder

    dept_mg = int(await Binder(stack.redis).magento_id("category", dept["id"]))
    made = await stack.magento(
        "POST", "categories", json={"category": {"parent_id": dept_mg, "name": "Clearance", "is_active": True}}
    )
    await settled(stack)
    after = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    created = [c for c in after if c["name"] == "Clearance"]
    assert len(created) == 1 and created[0]["parent_id"] == dept["id"]
    assert len(after) == len(before) + 1
    assert await Binder(stack.redis).cr_id("category", made["id"]) == created[0]["id"]

    # Updates only from Cloud Retailer: a Magento rename is overwritten at the next Cloud Retailer update.
    await stack.magento("PUT", f"categories/{made['id']}", json={"category": {"name": "Clearance!!"}})
    await settled(stack)
    assert (
        next(
            c
            for c in (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
            if c["id"] == created[0]["id"]
        )["name"]
        == "Clearance"
    )
    await stack.cr("PUT", f"/categories/{created[0]['id']}", json={"name": "Clearance Sale"})
    await settled(stack)
    assert (await stack.magento("GET", f"categories/{made['id']}"))["name"] == "Clearance Sale"


async def resync_categories(stack: Stack) -> None:
    status, body = await stack.admin("POST", "/admin/resync/categories", json={})
    assert status == 202, body

    async def done() -> dict[str, Any] | None:
        _, job = await stack.admin("GET", body["href"])
        return job if job["status"] in ("done", "failed") else None

    assert (await wait_for(done, within=60))["status"] == "done"
    await settled(stack)


async def test_a_category_moved_in_cloud_retailer_is_moved_in_magento(stack: Stack) -> None:
    await full_resync(stack)
    await resync_categories(stack)  # the categories no product needed yet exist too
    binder = Binder(stack.redis)
    categories = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    departments = [c for c in categories if c["parent_id"] is None]

    async def mg(cr_id: str) -> int:
        bound = await binder.magento_id("category", cr_id)
        assert bound is not None, cr_id
        return int(bound)

    async def links(magento_id: int) -> list[dict[str, Any]]:
        return await stack.magento("GET", f"categories/{magento_id}/products")

    # a category the resync linked products to, moved to another department
    category = None
    for candidate in (c for c in categories if c["parent_id"]):
        if await binder.magento_id("category", candidate["id"]) and await links(await mg(candidate["id"])):
            category = candidate
            break
    assert category is not None
    category_mg = await mg(category["id"])
    root = (await stack.magento("GET", f"categories/{await mg(category['parent_id'])}"))["parent_id"]
    before = await links(category_mg)
    target = next(d for d in departments if d["id"] != category["parent_id"])
    await stack.cr("PUT", f"/categories/{category['id']}", json={"parent_id": target["id"]})
    await settled(stack)
    target_mg = await mg(target["id"])  # created on demand if no product made it before
    moved = await stack.magento("GET", f"categories/{category_mg}")
    assert (moved["parent_id"], moved["level"]) == (target_mg, 3)
    assert moved["path"].endswith(f"/{root}/{target_mg}/{category_mg}")
    assert await links(category_mg) == before

    # Nothing changed since: a resync of every category writes nothing
    await reset_stats(stack)
    await resync_categories(stack)
    assert await writes(stack) == {}

    # a department made a sub-category of another, its subtree with it, and back
    children = [c for c in categories if c["parent_id"] == target["id"]] + [category]
    other = next(d for d in departments if d["id"] != target["id"])
    await stack.cr("PUT", f"/categories/{target['id']}", json={"parent_id": other["id"]})
    await settled(stack)
    other_mg = await mg(other["id"])
    sub = await stack.magento("GET", f"categories/{target_mg}")
    assert (sub["parent_id"], sub["level"]) == (other_mg, 3)
    for child in children:
        if await binder.magento_id("category", child["id"]):
            assert (await stack.magento("GET", f"categories/{await mg(child['id'])}"))["level"] == 4
    await stack.cr("PUT", f"/categories/{target['id']}", json={"parent_id": None})
    await settled(stack)
    back = await stack.magento("GET", f"categories/{target_mg}")
    assert (back["parent_id"], back["level"], back["path"]) == (root, 2, f"1/{root}/{target_mg}")
    assert (await stack.magento("GET", f"categories/{category_mg}"))["path"] == f"1/{root}/{target_mg}/{category_mg}"
    assert await links(category_mg) == before
    await reset_stats(stack)
    await resync_categories(stack)
    assert await writes(stack) == {}


async def test_a_swap_whose_first_move_was_not_delivered_places_the_new_parent_first(stack: Stack) -> None:
    await full_resync(stack)
    await resync_categories(stack)
    binder = Binder(stack.redis)
    categories = (await stack.cr("GET", "/categories", params={"limit": "500"}))["items"]
    child = next(c for c in categories if c["parent_id"])
    dept = child["parent_id"]
    # Cloud Retailer: the category becomes a department (webhook lost), then its old department goes under it.
    # Magento still has the category under the department, and refuses a move under a descendant.
    await stack.cr("PUT", f"/categories/{child['id']}", json={"parent_id": None}, headers=SUPPRESS)
    await stack.cr("PUT", f"/categories/{dept}", json={"parent_id": child["id"]})
    await settled(stack)
    child_mg, dept_mg = [int(await binder.magento_id("category", c) or 0) for c in (child["id"], dept)]
    child_m = await stack.magento("GET", f"categories/{child_mg}")
    dept_m = await stack.magento("GET", f"categories/{dept_mg}")
    assert (child_m["level"], dept_m["parent_id"], dept_m["level"]) == (2, child_mg, 3)
    await reset_stats(stack)
    await resync_categories(stack)
    assert await writes(stack) == {}


async def test_url_key_collision_is_recovered(stack: Stack) -> None:
    products = [
        p
        for p in await cr_products(stack)
        if not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
    ]
    product = products[0]
    from workers.sync.catalog.product_mapper import url_key

    # Someone made a product by hand whose url_key is the one the gateway would derive.
    await stack.magento(
        "POST",
        "products",
        json={
            "product": {
                "sku": "HAND-1",
                "name": "Hand made",
                "price": 1,
                "attribute_set_id": 4,
                "type_id": "simple",
                "custom_attributes": [{"attribute_code": "url_key", "value": url_key(product["name"], product["sku"])}],
            }
        },
    )
    await stack.admin("POST", "/admin/resync/products", json={"skus": [product["sku"]]})
    events = await settled(stack)
    assert all(e["status"] == "done" for e in events if e["type"] == "product.updated"), events
    key = attrs(await magento_product(stack, product["sku"]))["url_key"]
    assert key.startswith(url_key(product["name"], product["sku"]) + "-")


async def test_concurrent_and_out_of_order_updates_converge_on_the_latest_state(stack: Stack) -> None:
    products = [
        p
        for p in await cr_products(stack)
        if not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
    ]
    product = products[0]
    await asyncio.gather(*(stack.cr("PUT", f"/products/{product['id']}", json={"price": 10 + i}) for i in range(10)))
    latest = (await stack.cr("GET", f"/products/{product['id']}"))["price"]
    await settled(stack)
    assert (await magento_product(stack, product["sku"]))["price"] == latest


async def test_a_magento_outage_mid_resync_loses_no_product(redis_url: str) -> None:
    async with full_stack(
        redis_url, products=12, job_retry_base_seconds=0.2, job_retry_max_seconds=1, job_max_attempts=30
    ) as stack:
        await stack.start_worker(catalog_rules())
        async with stack.magento_api.put(
            f"{stack.magento_url}/_sandbox/faults", json=[{"match": "* /rest/*", "error_rate": 1.0}]
        ):
            pass
        status, _body = await stack.admin("POST", "/admin/resync/products", json={})
        assert status == 202
        await asyncio.sleep(2)
        async with stack.magento_api.delete(f"{stack.magento_url}/_sandbox/faults"):
            pass
        await settled(stack, within=60)
        products = await cr_products(stack)
        expected = {
            p["sku"] for p in products if not any(s["name"] == "Shoes" and s["primary"] for s in p["attribute_sets"])
        }
        found = await stack.magento("GET", "products", params={"searchCriteria[pageSize]": "100"})
        assert {p["sku"] for p in found["items"]} == expected


async def test_a_missing_select_option_is_created_and_sent_as_its_id(stack: Stack) -> None:
    product = next(p for p in await cr_products(stack) if not is_shoes(p) and "color" in p["attributes"])
    label = product["attributes"]["color"]
    # An admin deleted that option in Magento (the sandbox has no REST route for it: change its state).
    color = stack.magento_app[STATE].attributes["color"]
    color.options = [o for o in color.options if o.label != label]
    await stack.admin("POST", "/admin/resync/products", json={"skus": [product["sku"]]})
    await settled(stack)
    options = {o["label"]: o["value"] for o in await stack.magento("GET", "products/attributes/color/options")}
    assert label in options
    assert attrs(await magento_product(stack, product["sku"]))["color"] == options[label]


async def test_losing_every_mapping_and_hash_in_redis_rebuilds_without_duplicates(stack: Stack) -> None:
    await full_resync(stack)
    categories_before = (await stack.magento("GET", "categories/list", params={"searchCriteria[pageSize]": "500"}))[
        "total_count"
    ]
    media_before = {
        p["sku"]: sorted(e["file"] for e in (await magento_product(stack, p["sku"]))["media_gallery_entries"])
        for p in await cr_products(stack)
        if not is_shoes(p)
    }
    lost = [k async for k in stack.redis.scan_iter(keys.fingerprints("*"))] + [
        k async for k in stack.redis.scan_iter(keys.binding("*", "*"))
    ]
    assert {k.decode() for k in lost} == {
        keys.fingerprints("product"),
        keys.fingerprints("category"),
        *(keys.binding(kind, side) for kind in ("product", "category") for side in ("cr", "mg")),
    }
    await stack.redis.delete(*lost)

    await reset_stats(stack)
    await full_resync(stack)
    after = (await stack.magento("GET", "categories/list", params={"searchCriteria[pageSize]": "500"}))["total_count"]
    assert after == categories_before, "categories are linked again by their path of names, not created twice"
    for sku, files in media_before.items():
        now = sorted(e["file"] for e in (await magento_product(stack, sku))["media_gallery_entries"])
        assert now == files, "images are recognised by their content name, not uploaded again"
    done = await writes(stack)
    assert not any(k.endswith("/media") for k in done), done


async def test_a_product_new_to_magento_gets_its_stock_without_waiting_for_reconciliation(redis_url: str) -> None:
    registry = catalog_rules()
    sync.inventory.register(registry)
    async with full_stack(redis_url, products=3) as stack:
        await stack.start_worker(registry)
        product = next(p for p in await cr_products(stack) if not is_shoes(p))
        # A quantity Magento cannot have by accident (a new product's default source item holds 0).
        level = await stack.cr(
            "PUT", f"/inventory/{stack.settings.cr_store_id}/{product['sku']}", json={"on_hand": 37}, headers=SUPPRESS
        )
        await stack.admin("POST", "/admin/resync/products", json={"skus": [product["sku"]]})

        async def pushed() -> list[dict[str, Any]]:
            items = await stack.magento(
                "GET",
                "inventory/source-items",
                params={
                    "searchCriteria[filterGroups][0][filters][0][field]": "sku",
                    "searchCriteria[filterGroups][0][filters][0][value]": product["sku"],
                },
            )
            return [i for i in items["items"] if i["quantity"] == level["on_hand"]]

        assert await wait_for(pushed, within=20)


# --- events are change signals: nothing is written on an event's word -----------------------------------------


async def deliver(stack: Stack, event_type: str, data: dict[str, Any]) -> None:
    resp = await post_event(stack.gateway, "cloudretailer", envelope(event_type, data))
    assert resp.status == 202, await resp.text()


async def test_an_event_naming_a_product_or_category_cloud_retailer_does_not_know_writes_nothing(
    stack: Stack,
) -> None:
    await stack.admin("POST", "/admin/resync/products", json={"skus": ["CR-000005"]})
    await settled(stack)
    assert (await magento_product(stack, "CR-000005"))["status"] == 1
    fingerprint = await stack.redis.hget(keys.fingerprints("product"), "CR-000005")
    await reset_stats(stack)

    # The security probe's event: an id Cloud Retailer answers 404 for, with the SKU of a live product.
    await deliver(stack, "product.updated", {"product_id": "DOES-NOT-EXIST", "sku": "CR-000005"})
    await deliver(stack, "category.updated", {"category_id": "C-404"})
    events = {e["entity"]: e for e in await settled(stack)}
    product = events["cloudretailer:product:DOES-NOT-EXIST"]
    assert product["status"] == "skipped", product
    assert "DOES-NOT-EXIST does not exist in Cloud Retailer and was never synced" in product["last_error"]
    category = events["cloudretailer:category:C-404"]
    assert category["status"] == "skipped" and "C-404 does not exist in Cloud Retailer" in category["last_error"]

    assert (await magento_product(stack, "CR-000005"))["status"] == 1
    assert await writes(stack) == {}
    assert await stack.redis.hget(keys.fingerprints("product"), "CR-000005") == fingerprint
    assert await Binder(stack.redis).magento_id("product", "DOES-NOT-EXIST") is None
    assert await Binder(stack.redis).magento_id("category", "C-404") is None


async def test_a_product_gone_from_cloud_retailer_is_disabled_through_its_binding(stack: Stack) -> None:
    await stack.admin("POST", "/admin/resync/products", json={"skus": ["CR-000005", "CR-000006"]})
    await settled(stack)
    assert await Binder(stack.redis).magento_id("product", "P-6") == "CR-000006"
    # Gone for good (the sandbox itself only flags a deletion): Cloud Retailer answers 404 for P-6 now.
    del stack.cr_app[CR_STATE].products.rows["P-6"]

    # The event names another product's SKU: only the binding made from Cloud Retailer's record counts.
    await deliver(stack, "product.deleted", {"product_id": "P-6", "sku": "CR-000005"})
    events = await settled(stack)
    (deleted,) = [e for e in events if e["type"] == "product.deleted"]
    assert deleted["status"] == "done", deleted
    assert (await magento_product(stack, "CR-000006"))["status"] == 2
    assert (await magento_product(stack, "CR-000005"))["status"] == 1
