"""Styles in the sandbox Cloud Retailer over real HTTP: the seeded styled catalog, every validation rule of
styles and variants (each a 422 naming its field), the webhooks each write sends (signature-checked by the
stand-in gateway), variant_ids, and the listings by updated_since and by style_id."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox import catalog
from sandbox.catalog import png_bytes
from tests.test_sandbox_cloudretailer import Api, Receiver, settle, start

PRODUCTS = 60  # ST-1..ST-10; ST-1 is P-1, P-11, P-21, P-31, P-41; ST-6 (P-51) is a trailing, incomplete one
SHIRT = {"code": "STY-NEW", "name": "New Shirt", "axes": ["color", "size"]}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, TestServer]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/cloudretailer", rec.handle)
    server = TestServer(app)
    await server.start_server()
    yield rec, server
    await server.close()
    assert rec.rejected == [], "every delivery must verify and validate"


@pytest.fixture
async def cr(receiver: tuple[Receiver, TestServer]) -> AsyncIterator[Api]:
    server, app = await start(receiver[1], products=PRODUCTS, styles=True)
    async with aiohttp.ClientSession() as session:
        yield Api(session, server, app)
    await server.close()


@pytest.fixture
def hooks(receiver: tuple[Receiver, TestServer]) -> Receiver:
    return receiver[0]


async def new_style(cr: Api, **fields: Any) -> dict[str, Any]:
    made = await cr.post("/styles", {**SHIRT, **fields})
    assert made.status == 201, made.body
    return made.body


async def new_variant(cr: Api, sku: str, style_id: str, color: str, size: str) -> dict[str, Any]:
    body = {"sku": sku, "name": sku, "price": 10, "style_id": style_id, "attributes": {"color": color, "size": size}}
    made = await cr.post("/products", body)
    assert made.status == 201, made.body
    return made.body


# --- the seeded catalog ------------------------------------------------------------------------------
async def test_wearables_are_seeded_as_variants_and_other_departments_stay_plain(cr: Api) -> None:
    styles = await cr.all_pages("/styles", {"limit": "3"})
    assert [s["id"] for s in styles] == [f"ST-{n}" for n in range(1, 11)] == [s.id for s in catalog.styles(PRODUCTS)]
    products = {p["id"]: p for p in await cr.all_pages("/products", {"limit": "1000"})}
    plain_server, _ = await start(None, products=PRODUCTS, styles=False)
    try:
        async with aiohttp.ClientSession() as session:
            plain_api = Api(session, plain_server, plain_server.app)
            plain = {p["id"]: p for p in await plain_api.all_pages("/products", {"limit": "1000"})}
    finally:
        await plain_server.close()

    members: list[str] = []
    for style in styles:
        assert style["code"] == f"STY-{int(style['id'][3:]):06d}" and style["axes"] == ["color", "size"]
        assert style["category_ids"] == [products[style["variant_ids"][0]]["category_ids"][0]]
        assert style["attributes"].keys() == {"brand", "material"} and len(style["images"]) == 1
        variants = [products[v] for v in style["variant_ids"]]
        assert 1 <= len(variants) <= 5 and all(v["style_id"] == style["id"] for v in variants)
        combos = [(v["attributes"]["color"], v["attributes"]["size"]) for v in variants]
        assert len(set(combos)) == len(combos), "each combination once per style"
        assert [v["name"] for v in variants] == [f"{style['name']} {c} {s}" for c, s in combos]
        assert {v["department_id"] for v in variants} == {style["department_id"]}
        members += style["variant_ids"]
    assert len(members) == len(set(members)) == 30  # half the catalog is apparel or footwear
    assert [len(s["variant_ids"]) for s in styles if s["id"] in ("ST-1", "ST-6")] == [5, 1]
    assert styles[0]["variant_ids"] == ["P-1", "P-11", "P-21", "P-31", "P-41"]

    for product_id, product in products.items():
        before = plain[product_id]
        if product_id in members:
            # Only the name, colour, size and style_id differ from the plain catalog.
            same = {k: v for k, v in product.items() if k not in ("name", "attributes", "style_id")}
            assert same == {k: v for k, v in before.items() if k not in ("name", "attributes", "style_id")}
            assert {**product["attributes"], "color": None, "size": None} == {
                **before["attributes"],
                "color": None,
                "size": None,
            }
        else:
            assert product == before, "plain departments are untouched"
            assert product["department_id"] in ("D-3", "D-4") and product["style_id"] is None
    health = (await cr.get("/_sandbox/health")).body
    assert health["styles"] == 10 and health["products"] == PRODUCTS


async def test_style_image_bytes_match_their_sha256(cr: Api) -> None:
    style = (await cr.get("/styles/ST-2")).body
    image = style["images"][0]
    got = await cr.get(f"/styles/ST-2/images/{image['id']}")
    assert got.status == 200 and got.headers["Content-Type"] == "image/png"
    assert hashlib.sha256(got.body).hexdigest() == image["sha256"]
    assert got.headers["ETag"] == f'"{image["sha256"]}"'
    assert (await cr.get("/styles/ST-2/images/NOPE")).status == 404
    assert (await cr.get("/styles/ST-999/images/SIMG-1-0")).status == 404
    assert (await cr.get("/styles/ST-999")).error["code"] == "not_found"


# --- validation ---------------------------------------------------------------------------------------
STYLE_CREATE_CASES = [
    ({"code": None}, "code"),
    ({"name": None}, "name"),
    ({"axes": None}, "axes"),
    ({"axes": []}, "axes"),
    ({"axes": ["color", "size", "material", "color"]}, "axes"),
    ({"axes": ["brand"]}, "axes[0]"),  # a text attribute
    ({"axes": ["size", "nope"]}, "axes[1]"),
    ({"axes": ["color", "color"]}, "axes[1]"),
    ({"code": "CR-000005"}, "code"),  # a product's SKU
    ({"code": "bad code"}, "code"),
    ({"department_id": "C-1"}, "department_id"),
    ({"department_id": "D-1", "category_ids": ["C-4"]}, "category_ids[0]"),
    ({"attribute_sets": [{"name": "Nope", "primary": True}]}, "attribute_sets[0].name"),
    ({"attribute_sets": [{"name": "Default", "primary": False}]}, "attribute_sets"),
    ({"attributes": {"color": "Purple"}}, "attributes.color"),
    ({"attributes": {"Bad": "x"}}, "attributes.Bad"),
    ({"images": [{"id": "SIMG-1-0"}]}, "images[0].id"),
    ({"images": [{"content_base64": "bm90IGFuIGltYWdl"}]}, "images[0].content_base64"),
    ({"variant_ids": ["P-1"]}, "variant_ids"),
]


@pytest.mark.parametrize(("change", "field_name"), STYLE_CREATE_CASES)
async def test_style_create_validation_names_the_field(cr: Api, change: dict[str, Any], field_name: str) -> None:
    body = {k: v for k, v in {**SHIRT, **change}.items() if v is not None}
    answer = await cr.post("/styles", body)
    assert answer.status == 422, answer.body
    assert answer.error["field"] == field_name
    assert (await cr.get("/_sandbox/health")).body["styles"] == 10, "nothing was created"


async def test_a_style_code_is_unique_and_never_changes(cr: Api) -> None:
    taken = await cr.post("/styles", {**SHIRT, "code": "STY-000001"})
    assert taken.status == 409 and taken.error["field"] == "code" and taken.body["existing"]["id"] == "ST-1"
    assert (await cr.put("/styles/ST-1", {"code": "STY-000001", "name": "Same code"})).status == 200
    changed = await cr.put("/styles/ST-1", {"code": "STY-OTHER"})
    assert changed.status == 422 and changed.error["field"] == "code"
    clash = await cr.post("/products", {"sku": "STY-000002", "name": "Clash", "price": 1})
    assert clash.status == 422 and clash.error["field"] == "sku"


VARIANT_CASES = [
    ({"style_id": "ST-999"}, "style_id"),
    ({"attributes": {"color": "Red"}}, "attributes.size"),
    ({"attributes": {"size": "L"}}, "attributes.color"),
    ({"attributes": {"color": "White", "size": "M"}}, "attributes"),  # P-11's combination
]


@pytest.mark.parametrize(("change", "field_name"), VARIANT_CASES)
async def test_variant_create_validation_names_the_field(cr: Api, change: dict[str, Any], field_name: str) -> None:
    body = {"sku": "V-1", "name": "Variant", "price": 5, "style_id": "ST-1", **change}
    answer = await cr.post("/products", body)
    assert answer.status == 422, answer.body
    assert answer.error["field"] == field_name
    if field_name == "attributes":
        assert "CR-000011" in answer.error["message"], "the message names the other variant's SKU"
    assert (await cr.get("/products", params={"sku": "V-1"})).body["items"] == []


async def test_a_deleted_style_takes_no_new_variants_and_no_changes(cr: Api) -> None:
    assert (await cr.call("DELETE", "/styles/ST-2")).body["deleted"] is True
    body = {"sku": "V-2", "name": "V", "price": 5, "style_id": "ST-2", "attributes": {"color": "Red", "size": "L"}}
    refused = await cr.post("/products", body)
    assert refused.status == 422 and refused.error["field"] == "style_id"
    moved = await cr.put("/products/P-1", {"style_id": "ST-2"})
    assert moved.status == 422 and moved.error["field"] == "style_id"
    edit = await cr.put("/styles/ST-2", {"name": "Too late"})
    assert edit.status == 409 and edit.error["code"] == "deleted"
    # Its variants keep their style_id and can still be changed (a consumer must refuse them, not we).
    variant = await cr.put("/products/P-2", {"price": 3.5, "style_id": "ST-2"})  # sent back unchanged
    assert variant.status == 200 and variant.body["style_id"] == "ST-2"


async def test_variant_updates_keep_axes_and_unique_combinations(cr: Api) -> None:
    removed = await cr.put("/products/P-11", {"attributes": {"size": None}})
    assert removed.status == 422 and removed.error["field"] == "attributes.size"
    same = await cr.put("/products/P-11", {"attributes": {"size": "S"}})  # P-1's (White, S)
    assert same.status == 422 and same.error["field"] == "attributes" and "CR-000001" in same.error["message"]
    joined = await cr.put("/products/P-5", {"style_id": "ST-1"})  # a lamp without colour or size
    assert joined.status == 422 and joined.error["field"].startswith("attributes.")
    assert (await cr.get("/products/P-5")).body["style_id"] is None, "a 422 changes nothing"
    # A deleted variant's combination is free again.
    await cr.call("DELETE", "/products/P-41")
    taken = await cr.put("/products/P-11", {"attributes": {"color": "Red", "size": "M"}})
    assert taken.status == 200 and taken.body["attributes"]["color"] == "Red"


async def test_changing_axes_is_checked_against_the_variants(cr: Api) -> None:
    # ST-1's variants share White (three of them): colour alone does not tell them apart.
    only_color = await cr.put("/styles/ST-1", {"axes": ["color"]})
    assert only_color.status == 422 and only_color.error["field"] == "axes"
    await cr.put("/products/P-11", {"attributes": {"fit": "slim"}})
    missing = await cr.put("/styles/ST-1", {"axes": ["color", "size", "material"]})
    assert missing.status == 200  # every seeded variant has a material, and adding one keeps them unique
    no_value = await cr.put("/products/P-11", {"attributes": {"material": None}})
    assert no_value.status == 422 and no_value.error["field"] == "attributes.material"
    bad = await cr.put("/styles/ST-1", {"axes": ["color", "brand"]})
    assert bad.status == 422 and bad.error["field"] == "axes[1]"
    style = await new_style(cr)
    await new_variant(cr, "V-A", style["id"], "Red", "S")
    await new_variant(cr, "V-B", style["id"], "Red", "M")
    assert (await cr.put(f"/styles/{style['id']}", {"axes": ["color"]})).error["field"] == "axes"
    assert (await cr.put(f"/styles/{style['id']}", {"axes": ["size"]})).status == 200


# --- variant_ids, listings -----------------------------------------------------------------------------
async def test_variant_ids_follow_creates_moves_detaches_and_deletes(cr: Api) -> None:
    style = await new_style(cr, attributes={"brand": "Contoso"}, department_id="D-1", category_ids=["C-1"])
    assert style["variant_ids"] == [] and style["deleted"] is False
    a = await new_variant(cr, "V-A", style["id"], "Red", "S")
    b = await new_variant(cr, "V-B", style["id"], "Red", "M")
    moved = await cr.put("/products/P-1", {"style_id": style["id"]})  # (White, S): free in the new style
    assert moved.status == 200
    got = (await cr.get(f"/styles/{style['id']}")).body
    assert got["variant_ids"] == ["P-1", a["id"], b["id"]], "sorted by id number"
    assert "P-1" not in (await cr.get("/styles/ST-1")).body["variant_ids"]
    detached = await cr.put(f"/products/{a['id']}", {"style_id": None})
    assert detached.status == 200 and detached.body["style_id"] is None
    await cr.call("DELETE", f"/products/{b['id']}")
    assert (await cr.get(f"/styles/{style['id']}")).body["variant_ids"] == ["P-1"]
    # The products naming the style, deleted ones included, paged like the product listing.
    listed = await cr.all_pages("/products", {"style_id": style["id"], "limit": "1"})
    assert sorted(p["id"] for p in listed) == sorted(["P-1", b["id"]])
    assert next(p for p in listed if p["id"] == b["id"])["deleted"] is True
    assert await cr.all_pages("/products", {"style_id": "ST-999"}) == []
    seeded = await cr.all_pages("/products", {"style_id": "ST-6"})
    assert [p["id"] for p in seeded] == ["P-51"]
    page = await cr.get("/products", params={"style_id": "ST-3", "limit": "2"})
    other = await cr.get("/products", params={"style_id": "ST-4", "cursor": page.body["next_cursor"]})
    assert other.status == 400 and other.error["field"] == "cursor", "a cursor belongs to its style"


async def test_styles_page_by_updated_since_and_variant_changes_touch_the_style(cr: Api) -> None:
    before = (await cr.get("/styles/ST-3")).body
    await cr.put("/products/P-13", {"price": 1.5})  # not an axis: the style is not touched
    assert (await cr.get("/styles/ST-3")).body["updated_at"] == before["updated_at"]
    changed = await cr.put("/products/P-13", {"attributes": {"color": "Black"}})
    assert changed.status == 200
    after = (await cr.get("/styles/ST-3")).body
    assert after["updated_at"] > before["updated_at"]
    since = await cr.all_pages("/styles", {"updated_since": after["updated_at"]})
    assert [s["id"] for s in since] == ["ST-3"]
    await cr.call("DELETE", "/styles/ST-4")
    since = await cr.all_pages("/styles", {"updated_since": after["updated_at"]})
    assert [(s["id"], s["deleted"]) for s in since] == [("ST-3", False), ("ST-4", True)]
    bad = await cr.get("/styles", params={"update_since": "x"})
    assert bad.status == 400 and bad.error["field"] == "update_since"


async def test_style_put_merges_like_a_product_put(cr: Api) -> None:
    png = base64.b64encode(png_bytes((1, 2, 3))).decode()
    style = await new_style(cr, attributes={"brand": "Contoso", "material": "Cotton"}, images=[{"content_base64": png}])
    assert style["images"][0]["primary"] is True
    assert style["attribute_sets"] == [{"name": "Default", "primary": True}]
    changed = await cr.put(f"/styles/{style['id']}", {"attributes": {"material": None, "fit": "slim"}})
    assert changed.body["attributes"] == {"brand": "Contoso", "fit": "slim"}
    assert changed.body["name"] == style["name"] and changed.body["axes"] == style["axes"]
    cleared = await cr.put(f"/styles/{style['id']}", {"images": [], "description_html": None})
    assert cleared.body["images"] == [] and cleared.body["description_html"] == ""
    assert (await cr.put(f"/styles/{style['id']}", {"id": "X"})).error["field"] == "id"


# --- webhooks ------------------------------------------------------------------------------------------
async def test_each_write_sends_its_style_events(cr: Api, hooks: Receiver) -> None:
    style = await new_style(cr)
    sid, code = style["id"], style["code"]
    expect = {"style_id": sid, "code": code}
    assert (await hooks.wait("style.created", style_id=sid))["data"] == expect

    async def style_updates(style_id: str) -> int:
        await settle(cr)
        return len([e for e in hooks.of("style.updated") if e["data"]["style_id"] == style_id])

    await cr.put(f"/styles/{sid}", {"name": "Renamed"})
    assert await style_updates(sid) == 1
    await cr.put(f"/styles/{sid}", {"name": "Renamed"})  # no change, no event
    assert await style_updates(sid) == 1
    variant = await new_variant(cr, "V-A", sid, "Red", "S")  # a variant created
    assert await style_updates(sid) == 2
    assert (await hooks.wait("product.created", product_id=variant["id"]))["data"]["sku"] == "V-A"
    await cr.put(f"/products/{variant['id']}", {"attributes": {"size": "M"}})  # an axis value
    assert await style_updates(sid) == 3
    await cr.put(f"/products/{variant['id']}", {"attributes": {"brand": "Contoso"}})  # not an axis
    assert await style_updates(sid) == 3
    before_st1 = await style_updates("ST-1")
    await cr.put("/products/P-1", {"style_id": sid})  # moved: both styles
    assert await style_updates(sid) == 4 and await style_updates("ST-1") == before_st1 + 1
    assert [e for e in hooks.of("product.updated") if e["data"]["product_id"] == "P-1"], "its own event too"
    await cr.call("DELETE", f"/products/{variant['id']}")  # a variant deleted
    assert await style_updates(sid) == 5
    await cr.call("DELETE", f"/styles/{sid}")
    await cr.call("DELETE", f"/styles/{sid}")
    await settle(cr)
    assert [e["data"] for e in hooks.of("style.deleted")] == [expect], "only the first DELETE"
    await cr.call("DELETE", "/products/P-1")  # a variant of a deleted style: no further style event
    assert await style_updates(sid) == 5
