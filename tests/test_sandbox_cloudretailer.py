"""The sandbox Cloud Retailer over real HTTP: the contract in docs/cloudretailer-api.md, its error bodies,
paging under concurrent writes, the webhooks it sends (signature-checked by a receiver that stands in for
the gateway), fault injection and stats, and a 100k-product seed."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crmcore.events import CATALOGUE, Envelope, Source
from gateway.signatures import SignatureError, Verifier
from sandbox.catalog import png_bytes
from sandbox.cloudretailer import CloudRetailerSandboxConfig, create_app
from tests.conftest import wait_for
from tests.support.signing import CR_SECRET

API_KEY = "cr-sandbox-test-key"
DOC = Path(__file__).resolve().parent.parent / "docs" / "cloudretailer-api.md"
SUPPRESS = {"X-Sandbox-Suppress-Webhook": "1"}


# --- a stand-in for the gateway's webhook endpoint ---------------------------------------------------
@dataclass
class Receiver:
    """Verifies every delivery as the gateway would and validates `data` with the event's model."""

    verifier: Verifier = field(default_factory=lambda: Verifier.from_secrets([CR_SECRET]))
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # Called inside the delivery, before it is acknowledged: shows what a worker fetching the entity sees.
    on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.verifier.verify(request.headers, body)
            envelope = Envelope.model_validate_json(body)
            model = CATALOGUE[Source.CLOUDRETAILER].get(envelope.type)
            if model is None:
                raise ValueError(f"unknown event type {envelope.type}")
            model.model_validate(envelope.data)
        except (SignatureError, ValueError) as exc:
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            return web.json_response({"error": str(exc)}, status=401)
        event = {"id": request.headers["webhook-id"], "type": envelope.type, "data": envelope.data}
        if self.on_event is not None:
            await self.on_event(event)
        self.events.append(event)
        return web.json_response({"id": event["id"], "status": "queued"}, status=202)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    async def wait(self, event_type: str, within: float = 5.0, **data: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.of(event_type) if data.items() <= e["data"].items()), None)

        return await wait_for(found, within)


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        return self.body["error"]


class Api:
    def __init__(self, session: aiohttp.ClientSession, server: TestServer, app: web.Application) -> None:
        self.session, self.server, self.app = session, server, app

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Answer:
        url = self.server.make_url(path if path.startswith("/_sandbox") else "/api/v1" + path)
        send = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
        send.update(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            send["Content-Type"] = "application/json"
        async with self.session.request(method, url, data=data, params=params, headers=send) as resp:
            raw = await resp.read()
            body: Any = orjson.loads(raw) if resp.content_type == "application/json" and raw else raw
            return Answer(resp.status, body, resp.headers)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def put(self, path: str, json: Any, **kw: Any) -> Answer:
        return await self.call("PUT", path, json=json, **kw)

    async def post(self, path: str, json: Any, **kw: Any) -> Answer:
        return await self.call("POST", path, json=json, **kw)

    async def all_pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query = dict(params)
        while True:
            page = await self.get(path, params=query)
            assert page.status == 200, page.body
            items += page.body["items"]
            if page.body["next_cursor"] is None:
                return items
            query["cursor"] = page.body["next_cursor"]


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


async def start(receiver_server: TestServer | None, **overrides: Any) -> tuple[TestServer, web.Application]:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "products": 30,
        "customers": 10,
        "webhook_attempts": 2,
        "styles": False,
    }
    if receiver_server is not None:
        values["gateway_webhook_url"] = str(receiver_server.make_url("/webhooks/cloudretailer"))
        values["webhook_secret"] = CR_SECRET
    values.update(overrides)
    app = create_app(CloudRetailerSandboxConfig(**values))
    server = TestServer(app)
    await server.start_server()
    return server, app


@pytest.fixture
async def cr(receiver: tuple[Receiver, TestServer]) -> AsyncIterator[Api]:
    server, app = await start(receiver[1])
    async with aiohttp.ClientSession() as session:
        yield Api(session, server, app)
    await server.close()


@pytest.fixture
def hooks(receiver: tuple[Receiver, TestServer]) -> Receiver:
    return receiver[0]


async def settle(cr: Api) -> None:
    """Let deliveries in flight finish, so "no event was sent" is a fact and not a race."""
    from sandbox.cloudretailer.keys import SENDER

    await cr.app[SENDER].drain(5)


# --- auth, stores, reference data --------------------------------------------------------------------
async def test_auth_is_required_on_the_api_only(cr: Api) -> None:
    missing = await cr.get("/stores", auth=False)
    assert missing.status == 401 and missing.error["code"] == "unauthorized"
    wrong = await cr.get("/stores", auth=False, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and "Bearer" in wrong.error["message"]
    basic = await cr.get("/products/P-1", auth=False, headers={"Authorization": API_KEY})
    assert basic.status == 401
    assert (await cr.get("/stores")).status == 200
    assert (await cr.get("/_sandbox/health", auth=False)).status == 200


async def test_unknown_routes_and_methods_answer_in_the_error_shape(cr: Api) -> None:
    nothing = await cr.get("/nothing-here")
    assert nothing.status == 404 and nothing.error["code"] == "not_found"
    patch = await cr.call("PATCH", "/products/P-1", json={})
    assert patch.status == 405 and patch.error["code"] == "method_not_allowed"
    assert "PUT" in patch.headers["Allow"]


async def test_stores_and_sales_totals_start_empty(cr: Api) -> None:
    stores = await cr.get("/stores")
    assert stores.status == 200 and stores.body["next_cursor"] is None
    by_id = {s["id"]: s for s in stores.body["items"]}
    assert by_id["W-1"]["type"] == "ecommerce" and by_id["W-1"]["code"] == "WEB"
    assert set(by_id["S-1"]) == {"id", "code", "name", "type", "timezone", "address", "updated_at"}
    assert by_id["S-1"]["address"]["country"] == "US"
    assert (await cr.get("/stores/S-1")).body["name"] == "Main Street"
    totals = await cr.get("/stores/W-1/sales-totals")
    assert totals.body["sales_count"] == 0 and totals.body["gross"] == 0 and totals.body["by_tender"] == {}
    missing = await cr.get("/stores/X-9/sales-totals")
    assert missing.status == 404 and "X-9" in missing.error["message"]
    paged = await cr.get("/stores", params={"limit": "1"})
    assert len(paged.body["items"]) == 1 and paged.body["next_cursor"]
    bad = await cr.get("/stores", params={"updated_since": "2024-01-01T00:00:00Z"})
    assert bad.status == 400 and bad.error["field"] == "updated_since"


async def test_attribute_sets_and_tenders(cr: Api) -> None:
    sets = (await cr.get("/attribute-sets")).body["items"]
    names = [s["name"] for s in sets]
    assert names == ["Default", "Clothing", "Gear", "Shoes"]
    clothing = next(s for s in sets if s["name"] == "Clothing")
    color = next(a for a in clothing["attributes"] if a["code"] == "color")
    assert color["type"] == "select" and "Black" in color["options"]
    tenders = (await cr.get("/tenders")).body["items"]
    assert "Web Orders" in [t["name"] for t in tenders]
    assert [t["display_order"] for t in tenders] == sorted(t["display_order"] for t in tenders)


# --- paging ------------------------------------------------------------------------------------------
async def test_cursor_paging_never_skips_or_repeats_a_version_under_concurrent_updates(cr: Api) -> None:
    seen: list[dict[str, Any]] = []
    query = {"limit": "7"}
    updated_unseen: set[str] = set()
    updated_seen: set[str] = set()
    pages = 0
    while True:
        page = await cr.get("/products", params=query)
        assert page.status == 200
        seen += page.body["items"]
        pages += 1
        if pages in (1, 2):
            # Between pages: change two products not read yet and one already read.
            ids_seen = {p["id"] for p in seen}
            unseen = [f"P-{i}" for i in range(30, 0, -1) if f"P-{i}" not in ids_seen][:2]
            for pid in [*unseen, seen[0]["id"]]:
                answer = await cr.put(f"/products/{pid}", {"price": 1000 + pages})
                assert answer.status == 200
            updated_unseen.update(unseen)
            updated_seen.add(seen[0]["id"])
        if page.body["next_cursor"] is None:
            break
        query["cursor"] = page.body["next_cursor"]
    keys = [(p["updated_at"], p["id"]) for p in seen]
    assert keys == sorted(keys), "items come in (updated_at, id) order"
    assert len(set(keys)) == len(keys), "no version is returned twice"
    ids = [p["id"] for p in seen]
    assert set(ids) == {f"P-{i}" for i in range(1, 31)}, "nothing skipped"
    for pid in updated_unseen:
        assert ids.count(pid) == 1, "a product changed before it was reached comes once, new version"
        assert next(p for p in seen if p["id"] == pid)["price"] >= 1001
    for pid in updated_seen:
        assert ids.count(pid) == 2, "a product changed after it was read comes again with its new version"


async def test_updated_since_and_bad_paging_parameters(cr: Api) -> None:
    first = (await cr.get("/products", params={"limit": "1"})).body
    marker = (await cr.put("/products/P-5", {"name": "Marker"})).body["updated_at"]
    await cr.put("/products/P-9", {"name": "After marker"})
    since = await cr.get("/products", params={"updated_since": marker})
    assert [p["id"] for p in since.body["items"]] == ["P-5", "P-9"]
    offset = await cr.get("/products", params={"updated_since": "2024-01-01T02:00:00+02:00"})
    assert len(offset.body["items"]) == 30  # the same instant as 00:00Z: everything
    for params, field_name in [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2024-01-01T00:00:00"}, "updated_since"),  # no zone
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"update_since": marker}, "update_since"),
    ]:
        answer = await cr.get("/products", params=params)
        assert answer.status == 400, params
        assert answer.error == {"code": "invalid_request", "message": answer.error["message"], "field": field_name}
    inventory_page = await cr.get("/inventory", params={"store_id": "W-1", "limit": "2"})
    wrong_listing = await cr.get("/products", params={"cursor": inventory_page.body["next_cursor"]})
    assert wrong_listing.status == 400 and wrong_listing.error["field"] == "cursor"
    other_store = await cr.get("/inventory", params={"store_id": "S-1", "cursor": inventory_page.body["next_cursor"]})
    assert other_store.status == 400 and other_store.error["field"] == "cursor"
    assert first["next_cursor"] is not None


# --- products ----------------------------------------------------------------------------------------
async def test_product_shape_lookup_and_partial_update(cr: Api, hooks: Receiver) -> None:
    product = (await cr.get("/products/P-1")).body
    assert set(product) == {
        "id", "sku", "name", "description_html", "price", "price_levels", "weight", "web_active", "department_id",
        "category_ids", "attribute_sets", "attributes", "images", "style_id", "updated_at", "deleted",
    }  # fmt: skip
    assert product["style_id"] is None  # a plain catalog (styles=False)
    assert product["price_levels"] == {"A": None, "B": None, "C": None}
    assert sum(1 for s in product["attribute_sets"] if s["primary"]) == 1
    by_sku = await cr.get("/products", params={"sku": product["sku"]})
    assert by_sku.body == {"items": [product], "next_cursor": None}
    assert (await cr.get("/products", params={"sku": "NOPE"})).body == {"items": [], "next_cursor": None}

    # A worker fetching on delivery must already see the change: the event is sent after the write.
    fetched: list[Any] = []

    async def fetch(event: dict[str, Any]) -> None:
        fetched.append((await cr.get(f"/products/{event['data']['product_id']}")).body["price"])

    hooks.on_event = fetch
    changed = await cr.put("/products/P-1", {"price": 12.5, "attributes": {"color": "Red", "fit": "slim"}})
    assert changed.status == 200
    assert changed.body["price"] == 12.5 and changed.body["name"] == product["name"]  # unsent fields kept
    assert changed.body["attributes"]["color"] == "Red" and changed.body["attributes"]["fit"] == "slim"
    assert changed.body["updated_at"] > product["updated_at"]
    event = await hooks.wait("product.updated", product_id="P-1")
    assert event["data"] == {"product_id": "P-1", "sku": product["sku"]}
    assert fetched == [12.5]
    hooks.on_event = None

    removed = await cr.put("/products/P-1", {"attributes": {"fit": None}})
    assert "fit" not in removed.body["attributes"]
    await settle(cr)
    count = len(hooks.of("product.updated"))
    same = await cr.put("/products/P-1", {"price": 12.5})
    assert same.status == 200 and same.body["updated_at"] == removed.body["updated_at"]
    await settle(cr)
    assert len(hooks.of("product.updated")) == count, "a write that changes nothing sends nothing"
    assert hooks.of("product.images.updated") == []


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"price": "12.50"}, "price"),
        ({"price": -1}, "price"),
        ({"price_levels": {"A": -0.01}}, "price_levels.A"),
        ({"price_levels": {"B": "5"}}, "price_levels.B"),
        ({"price_levels": {"D": 5}}, "price_levels.D"),
        ({"web_active": 1}, "web_active"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"id": "P-2"}, "id"),
        ({"sku": "OTHER"}, "sku"),
        ({"colour": "Red"}, "colour"),
        ({"department_id": "C-1"}, "department_id"),
        ({"category_ids": ["C-1", "C-99"]}, "category_ids[1]"),
        ({"category_ids": ["C-4"]}, "category_ids[0]"),  # C-4 is under another department
        ({"attribute_sets": [{"name": "Nope", "primary": True}]}, "attribute_sets[0].name"),
        (
            {"attribute_sets": [{"name": "Default", "primary": True}, {"name": "Gear", "primary": True}]},
            "attribute_sets",
        ),
        ({"attribute_sets": [{"name": "Default"}]}, "attribute_sets"),
        ({"attribute_sets": []}, "attribute_sets"),
        ({"attributes": {"color": "Mauve"}}, "attributes.color"),
        ({"attributes": {"Bad Code": "x"}}, "attributes.Bad Code"),
        ({"attributes": {"brand": ["x"]}}, "attributes.brand"),
        ({"images": [{"position": 1}]}, "images[0]"),
    ],
)
async def test_product_update_validation_names_the_field(cr: Api, body: dict[str, Any], field_name: str) -> None:
    before = (await cr.get("/products/P-1")).body
    answer = await cr.put("/products/P-1", body)
    assert answer.status == 422, answer.body
    assert answer.error["code"] == "validation_failed" and answer.error["field"] == field_name
    assert field_name.split("[")[0].split(".")[0] in answer.error["message"]
    assert (await cr.get("/products/P-1")).body == before, "a refused write changes nothing"


async def test_price_levels_merge_by_level_and_null_clears(cr: Api) -> None:
    seeded = (await cr.get("/products/P-12")).body
    assert all(seeded["price_levels"][level] is not None for level in "ABC"), "every twelfth has all three"
    assert (await cr.get("/products/P-3")).body["price_levels"]["A"] is not None
    set_a = await cr.put("/products/P-1", {"price_levels": {"A": 9.5, "B": 8}})
    assert set_a.body["price_levels"] == {"A": 9.5, "B": 8, "C": None}
    cleared = await cr.put("/products/P-1", {"price_levels": {"A": None, "C": 7}})
    assert cleared.body["price_levels"] == {"A": None, "B": 8, "C": 7}, "a level not sent is kept"
    assert (await cr.put("/products/P-1", {"price_levels": None})).body["price_levels"] == {
        "A": None, "B": None, "C": None
    }  # fmt: skip
    new = {"sku": "LVL-1", "name": "Levels", "price": 10, "price_levels": {"A": 9}}
    created = await cr.post("/products", new)
    assert created.status == 201 and created.body["price_levels"] == {"A": 9, "B": None, "C": None}


async def test_product_bad_bodies_and_unknown_ids(cr: Api) -> None:
    not_json = await cr.call("PUT", "/products/P-1", data=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and not_json.error["code"] == "invalid_json"
    array = await cr.put("/products/P-1", [1, 2])
    assert array.status == 400 and array.error["code"] == "invalid_json"
    assert (await cr.get("/products/P-999")).status == 404
    assert (await cr.put("/products/P-999", {"price": 1})).status == 404
    assert (await cr.call("DELETE", "/products/P-999")).status == 404
    extra = await cr.get("/products/P-1", params={"expand": "all"})
    assert extra.status == 400 and extra.error["field"] == "expand"


async def test_product_create_and_delete(cr: Api, hooks: Receiver) -> None:
    new = {"sku": "NEW-1", "name": "New Lamp", "price": 19.99, "department_id": "D-3", "category_ids": ["C-8"]}
    created = await cr.post("/products", new)
    assert created.status == 201, created.body
    pid = created.body["id"]
    assert created.body["attribute_sets"] == [{"name": "Default", "primary": True}]
    assert created.body["web_active"] is False and created.body["deleted"] is False
    await hooks.wait("product.created", product_id=pid, sku="NEW-1")
    for store in ("W-1", "S-1"):
        level = await cr.get(f"/inventory/{store}/NEW-1")
        assert level.body["on_hand"] == 0
    again = await cr.post("/products", {**new, "name": "Other"})
    assert again.status == 409 and again.error["field"] == "sku" and again.body["existing"]["id"] == pid
    bad_sku = await cr.post("/products", {**new, "sku": "has space"})
    assert bad_sku.status == 422 and bad_sku.error["field"] == "sku"
    missing = await cr.post("/products", {"sku": "NEW-2", "name": "x"})
    assert missing.status == 422 and missing.error["field"] == "price" and "required" in missing.error["message"]

    deleted = await cr.call("DELETE", f"/products/{pid}")
    assert deleted.status == 200 and deleted.body["deleted"] is True
    await hooks.wait("product.deleted", product_id=pid)
    still = await cr.get(f"/products/{pid}")
    assert still.status == 200 and still.body["deleted"] is True
    listed = await cr.get("/products", params={"updated_since": deleted.body["updated_at"]})
    assert [p["id"] for p in listed.body["items"]] == [pid]
    blocked = await cr.put(f"/products/{pid}", {"price": 1})
    assert blocked.status == 409 and blocked.error["code"] == "deleted"
    assert (await cr.call("DELETE", f"/products/{pid}")).status == 200
    await settle(cr)
    assert len(hooks.of("product.deleted")) == 1, "deleting twice is one change"


def assert_valid_png(data: bytes) -> tuple[int, int]:
    """Walk the chunks, check every CRC and inflate the pixels: a real PNG, not just the magic bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + payload) & 0xFFFFFFFF == crc
        chunks.append(tag)
        idat += payload if tag == b"IDAT" else b""
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


async def test_image_bytes_are_a_png_matching_its_sha256(cr: Api) -> None:
    product = (await cr.get("/products/P-1")).body
    assert product["images"] and sum(i["primary"] for i in product["images"]) == 1
    for image in product["images"]:
        answer = await cr.get(f"/products/P-1/images/{image['id']}")
        assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
        assert hashlib.sha256(answer.body).hexdigest() == image["sha256"]
        assert answer.headers["ETag"] == f'"{image["sha256"]}"'
        assert assert_valid_png(answer.body) == (8, 8)
    assert (await cr.get("/products/P-1/images/IMG-404")).status == 404
    assert (await cr.get("/products/P-404/images/IMG-1-0")).status == 404


async def test_images_added_replaced_and_removed(cr: Api, hooks: Receiver) -> None:
    product = (await cr.get("/products/P-3")).body  # odd index: two seeded images
    first, second = product["images"]
    added_png = png_bytes((10, 20, 30))
    replaced_png = png_bytes((200, 100, 50), size=4)
    answer = await cr.put(
        "/products/P-3",
        {
            "images": [
                {"id": second["id"], "content_base64": base64.b64encode(replaced_png).decode(), "primary": True},
                {"content_base64": base64.b64encode(added_png).decode()},
            ]
        },
    )
    assert answer.status == 200, answer.body
    images = answer.body["images"]
    assert [i["id"] for i in images][:1] == [second["id"]] and first["id"] not in [i["id"] for i in images]
    assert images[0]["sha256"] == hashlib.sha256(replaced_png).hexdigest() != second["sha256"]
    assert images[0]["primary"] is True and images[1]["primary"] is False
    new_id = images[1]["id"]
    assert images[1]["sha256"] == hashlib.sha256(added_png).hexdigest()
    got = await cr.get(f"/products/P-3/images/{new_id}")
    assert got.body == added_png and hashlib.sha256(got.body).hexdigest() == images[1]["sha256"]
    assert (await cr.get(f"/products/P-3/images/{first['id']}")).status == 404
    await hooks.wait("product.images.updated", product_id="P-3")
    await settle(cr)
    assert [e for e in hooks.of("product.updated") if e["data"]["product_id"] == "P-3"] == []

    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 16
    with_jpeg = await cr.put(
        "/products/P-3", {"images": [{"id": new_id}, {"content_base64": base64.b64encode(jpeg).decode()}]}
    )
    jpeg_id = with_jpeg.body["images"][1]["id"]
    assert (await cr.get(f"/products/P-3/images/{jpeg_id}")).headers["Content-Type"] == "image/jpeg"
    assert with_jpeg.body["images"][0]["primary"] is True  # none marked: the first becomes primary
    new_bytes = base64.b64encode(png_bytes((1, 1, 1))).decode()
    swapped = await cr.put("/products/P-3", {"images": [{"id": jpeg_id}, {"id": new_id, "content_base64": new_bytes}]})
    assert [(i["id"], i["primary"]) for i in swapped.body["images"]] == [(jpeg_id, False), (new_id, True)]

    bad = [
        ({"images": [{"content_base64": "%%%"}]}, "images[0].content_base64"),
        ({"images": [{"content_base64": base64.b64encode(b"GIF89a").decode()}]}, "images[0].content_base64"),
        ({"images": [{"id": "IMG-9-9"}]}, "images[0].id"),
        ({"images": [{"id": new_id}, {"id": new_id}]}, "images[1].id"),
        ({"images": [{"id": new_id, "primary": True}, {"id": jpeg_id, "primary": True}]}, "images"),
        ({"images": [{"id": new_id, "sha256": "x"}]}, "images[0].sha256"),
    ]
    for body, field_name in bad:
        answer = await cr.put("/products/P-3", body)
        assert answer.status == 422 and answer.error["field"] == field_name, (body, answer.body)
    cleared = await cr.put("/products/P-3", {"images": []})
    assert cleared.body["images"] == []


# --- inventory ---------------------------------------------------------------------------------------
async def test_inventory_listing_lookup_and_update(cr: Api, hooks: Receiver) -> None:
    rows = await cr.all_pages("/inventory", {"store_id": "W-1", "limit": "8"})
    assert len(rows) == 30 and {r["store_id"] for r in rows} == {"W-1"}
    assert set(rows[0]) == {"sku", "store_id", "on_hand", "updated_at"}
    one = await cr.get("/inventory/W-1/CR-000003")
    assert one.body == next(r for r in rows if r["sku"] == "CR-000003")
    target = one.body["on_hand"] + 7
    put = await cr.put("/inventory/W-1/CR-000003", {"on_hand": target})
    assert put.status == 200 and put.body["on_hand"] == target and put.body["updated_at"] > one.body["updated_at"]
    event = await hooks.wait("inventory.updated", sku="CR-000003")
    assert event["data"] == {"sku": "CR-000003", "store_id": "W-1", "on_hand": target}
    since = await cr.get("/inventory", params={"store_id": "W-1", "updated_since": put.body["updated_at"]})
    assert [r["sku"] for r in since.body["items"]] == ["CR-000003"]
    other_store = await cr.get("/inventory/S-1/CR-000003")
    assert other_store.body["updated_at"] < put.body["updated_at"], "stock is per location"

    no_store = await cr.get("/inventory")
    assert no_store.status == 400 and no_store.error["field"] == "store_id"
    unknown_store = await cr.get("/inventory", params={"store_id": "X-1"})
    assert unknown_store.status == 404 and unknown_store.error["field"] == "store_id"
    assert (await cr.get("/inventory/W-1/NOPE")).status == 404
    assert (await cr.put("/inventory/W-1/NOPE", {"on_hand": 1})).status == 404
    for body in ({"on_hand": -1}, {"on_hand": "5"}, {}, {"on_hand": 1, "sku": "x"}):
        answer = await cr.put("/inventory/W-1/CR-000003", body)
        assert answer.status == 422 and answer.error["field"] in ("on_hand", "sku"), body


# --- categories --------------------------------------------------------------------------------------
async def test_categories_tree_create_update_and_conflicts(cr: Api, hooks: Receiver) -> None:
    cats = await cr.all_pages("/categories", {"limit": "5"})
    departments = [c for c in cats if c["parent_id"] is None]
    assert {c["level"] for c in departments} == {1} and len(departments) == 4
    assert all(c["level"] == 2 for c in cats if c["parent_id"] is not None)

    created = await cr.post("/categories", {"code": "APP-SOCKS", "name": "Socks", "parent_id": "D-1"})
    assert created.status == 201 and created.body["level"] == 2 and created.body["active"] is True
    cid = created.body["id"]
    await hooks.wait("category.created", category_id=cid)
    sub = await cr.post("/categories", {"code": "APP-SOCKS-WOOL", "name": "Wool socks", "parent_id": cid})
    assert sub.status == 201 and sub.body["level"] == 3
    dept = await cr.post("/categories", {"code": "GARDEN", "name": "Garden"})
    assert dept.status == 201 and dept.body["id"].startswith("D-") and dept.body["level"] == 1

    dup = await cr.post("/categories", {"code": "app-socks", "name": "Again", "parent_id": "D-1"})
    assert dup.status == 409 and dup.error["field"] == "code" and dup.body["existing"]["id"] == cid
    too_deep = await cr.post("/categories", {"code": "L4", "name": "Level four", "parent_id": sub.body["id"]})
    assert too_deep.status == 422 and too_deep.error["field"] == "parent_id"
    orphan = await cr.post("/categories", {"code": "ORPHAN", "name": "x", "parent_id": "C-999"})
    assert orphan.status == 422 and orphan.error["field"] == "parent_id"
    nameless = await cr.post("/categories", {"code": "NONAME"})
    assert nameless.status == 422 and nameless.error["field"] == "name"

    renamed = await cr.put(f"/categories/{cid}", {"name": "Socks & Tights", "active": False})
    assert renamed.status == 200 and renamed.body["name"] == "Socks & Tights" and renamed.body["active"] is False
    await hooks.wait("category.updated", category_id=cid)
    taken = await cr.put(f"/categories/{cid}", {"code": "GARDEN"})
    assert taken.status == 409 and taken.body["existing"]["id"] == dept.body["id"]
    cycle = await cr.put(f"/categories/{cid}", {"parent_id": sub.body["id"]})
    assert cycle.status == 422 and cycle.error["field"] == "parent_id"
    deep_move = await cr.put(f"/categories/{cid}", {"parent_id": "C-1"})  # its child would be level 4
    assert deep_move.status == 422 and deep_move.error["field"] == "parent_id"
    moved = await cr.put(f"/categories/{cid}", {"parent_id": None})
    assert moved.body["level"] == 1
    assert (await cr.get(f"/categories/{sub.body['id']}")).body["level"] == 2
    await hooks.wait("category.updated", category_id=sub.body["id"])
    assert (await cr.get("/categories/C-999")).status == 404
    assert (await cr.put("/categories/C-999", {"name": "x"})).status == 404
    bad_code = await cr.put(f"/categories/{cid}", {"code": "has space"})
    assert bad_code.status == 422 and bad_code.error["field"] == "code"


# --- customers ---------------------------------------------------------------------------------------
async def test_customers_lookup_create_update(cr: Api, hooks: Receiver) -> None:
    everyone = await cr.all_pages("/customers", {"limit": "3"})
    assert len(everyone) == 10
    one = everyone[0]
    assert set(one) == {"id", "email", "first_name", "last_name", "phone", "addresses", "updated_at"}
    assert set(one["addresses"][0]) == {
        "line1", "line2", "city", "region_code", "postcode", "country", "default_billing", "default_shipping",
    }  # fmt: skip
    found = await cr.get("/customers", params={"email": one["email"].upper()})
    assert found.body == {"items": [one], "next_cursor": None}
    assert (await cr.get("/customers", params={"email": "no@example.com"})).body["items"] == []

    new = {
        "email": "New.Person@Example.com",
        "first_name": "New",
        "last_name": "Person",
        "addresses": [{"line1": "1 A St", "city": "Austin", "country": "US", "default_billing": True}],
    }
    created = await cr.post("/customers", new)
    assert created.status == 201 and created.body["phone"] is None
    assert created.body["addresses"][0]["default_shipping"] is False
    cid = created.body["id"]
    await hooks.wait("customer.created", customer_id=cid)
    dup = await cr.post("/customers", {**new, "email": "new.person@example.COM"})
    assert dup.status == 409 and dup.error["field"] == "email" and dup.body["existing"]["id"] == cid

    for body, field_name in [
        ({**new, "email": "not-an-email"}, "email"),
        ({**new, "email": "a@b"}, "email"),
        ({**new, "email": 5}, "email"),
        ({"email": "x@example.com", "last_name": "P"}, "first_name"),
        (
            {**new, "email": "y@example.com", "addresses": [{"line1": "x", "city": "y", "country": "usa"}]},
            "addresses[0].country",
        ),
        ({**new, "email": "z@example.com", "addresses": [{"city": "y", "country": "US"}]}, "addresses[0].line1"),
    ]:
        answer = await cr.post("/customers", body)
        assert answer.status == 422 and answer.error["field"] == field_name, (body, answer.body)

    updated = await cr.put(f"/customers/{cid}", {"phone": "+1-555-0100", "last_name": "Personne"})
    assert updated.status == 200 and updated.body["phone"] == "+1-555-0100"
    assert updated.body["addresses"] == created.body["addresses"]
    await hooks.wait("customer.updated", customer_id=cid)
    replaced = await cr.put(f"/customers/{cid}", {"addresses": []})
    assert replaced.body["addresses"] == []
    taken = await cr.put(f"/customers/{cid}", {"email": one["email"]})
    assert taken.status == 409 and taken.body["existing"]["id"] == one["id"]
    bad = await cr.put(f"/customers/{cid}", {"email": "bad@"})
    assert bad.status == 422 and bad.error["field"] == "email"
    assert (await cr.get("/customers/CU-999")).status == 404
    assert (await cr.put("/customers/CU-999", {"phone": None})).status == 404
    moved = await cr.put(f"/customers/{cid}", {"email": "moved@example.com"})
    assert moved.status == 200
    assert (await cr.get("/customers", params={"email": "new.person@example.com"})).body["items"] == []
    assert (await cr.get("/customers", params={"email": "MOVED@example.com"})).body["items"][0]["id"] == cid


# --- sales -------------------------------------------------------------------------------------------
def sale_body(ref: str = "000000101", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": "W-1",
        "external_ref": ref,
        "customer_id": "CU-1",
        "lines": [
            {"sku": "CR-000001", "quantity": 2, "unit_price": 10.0, "discount": 1.0, "tax": 1.5},
            {"sku": "CR-000004", "quantity": 1, "unit_price": 30.0, "discount": 0, "tax": 2.4},
            {"sku": "CR-000001", "quantity": 1, "unit_price": 10.0, "discount": 0, "tax": 0.8},
        ],
        "shipping": 5.0,
        "tax_total": 4.7,
        "total": 68.7,  # 19 + 30 + 10 + 5 + 4.7
        "tenders": [{"type": "Web Orders", "amount": 68.7}],
        "completed_at": "2024-05-01T12:00:00+02:00",
    }
    body.update(overrides)
    return body


async def on_hand(cr: Api, store: str, sku: str) -> float:
    return (await cr.get(f"/inventory/{store}/{sku}")).body["on_hand"]


async def test_sale_lowers_on_hand_and_updates_totals_once(cr: Api, hooks: Receiver) -> None:
    before = {(s, sku): await on_hand(cr, s, sku) for s in ("W-1", "S-1") for sku in ("CR-000001", "CR-000004")}
    created = await cr.post("/sales", sale_body())
    assert created.status == 201, created.body
    sale = created.body
    assert sale["id"] and sale["completed_at"] == "2024-05-01T10:00:00.000000Z"
    assert await on_hand(cr, "W-1", "CR-000001") == before[("W-1", "CR-000001")] - 3
    assert await on_hand(cr, "W-1", "CR-000004") == before[("W-1", "CR-000004")] - 1
    assert await on_hand(cr, "S-1", "CR-000001") == before[("S-1", "CR-000001")], "only the sale's store"
    e1 = await hooks.wait("inventory.updated", sku="CR-000001", store_id="W-1")
    assert e1["data"]["on_hand"] == before[("W-1", "CR-000001")] - 3
    await hooks.wait("inventory.updated", sku="CR-000004", store_id="W-1")
    await settle(cr)
    assert len(hooks.of("inventory.updated")) == 2, "one event per SKU, not per line"

    totals = (await cr.get("/stores/W-1/sales-totals")).body
    assert totals["sales_count"] == 1 and totals["gross"] == 68.7 and totals["tax"] == 4.7
    assert totals["net"] == 59.0 and totals["discount"] == 1.0 and totals["shipping"] == 5.0
    assert totals["by_tender"] == {"Web Orders": 68.7}
    product1 = (await cr.get("/products/P-1")).body
    product4 = (await cr.get("/products/P-4")).body
    depts = totals["by_department"]
    if product1["department_id"] == product4["department_id"]:
        assert depts[product1["department_id"]]["quantity"] == 4
    else:
        assert depts[product1["department_id"]] == {"quantity": 3, "net": 29.0, "tax": 2.3}
        assert depts[product4["department_id"]] == {"quantity": 1, "net": 30.0, "tax": 2.4}
    assert (await cr.get("/stores/S-1/sales-totals")).body["sales_count"] == 0

    again = await cr.post("/sales", sale_body())
    assert again.status == 409 and again.error["field"] == "external_ref"
    assert again.body["existing"] == sale
    assert await on_hand(cr, "W-1", "CR-000001") == before[("W-1", "CR-000001")] - 3
    assert (await cr.get("/stores/W-1/sales-totals")).body == totals
    await settle(cr)
    assert len(hooks.of("inventory.updated")) == 2, "a duplicate sale has no effect"

    assert (await cr.get("/sales", params={"external_ref": "000000101"})).body == {"items": [sale], "next_cursor": None}
    assert (await cr.get("/sales", params={"external_ref": "nope"})).body["items"] == []
    assert (await cr.get(f"/sales/{sale['id']}")).body == sale
    assert (await cr.get("/sales")).body["items"] == [sale]
    assert (await cr.get("/sales/SA-999")).status == 404


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        (
            {
                "lines": [
                    {"sku": "CR-000001", "quantity": 1, "unit_price": 10},
                    {"sku": "NOPE", "quantity": 1, "unit_price": 1},
                ]
            },
            "lines[1].sku",
        ),
        ({"tenders": [{"type": "Web Orders", "amount": 70}]}, "tenders"),
        ({"total": 80, "tenders": [{"type": "Web Orders", "amount": 80}]}, "total"),
        ({"tenders": [{"type": "web orders", "amount": 68.7}]}, "tenders[0].type"),
        ({"store_id": "X-1"}, "store_id"),
        ({"customer_id": "CU-999"}, "customer_id"),
        ({"completed_at": "2024-05-01T12:00:00"}, "completed_at"),
        ({"completed_at": "soon"}, "completed_at"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "CR-000001", "quantity": 0, "unit_price": 10}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "CR-000001", "quantity": 1, "unit_price": 10, "discount": 11}]}, "lines[0].discount"),
        ({"tax_total": 1.0, "total": 65.0, "tenders": [{"type": "Web Orders", "amount": 65.0}]}, "tax_total"),
        ({"total": "68.70"}, "total"),
        ({"external_ref": ""}, "external_ref"),
        ({"id": "SA-1"}, "id"),
    ],
)
async def test_sale_validation_names_the_field_and_has_no_effect(
    cr: Api, hooks: Receiver, overrides: dict[str, Any], field_name: str
) -> None:
    stock = await on_hand(cr, "W-1", "CR-000001")
    answer = await cr.post("/sales", sale_body(**overrides))
    assert answer.status == 422, answer.body
    assert answer.error["code"] == "validation_failed" and answer.error["field"] == field_name
    assert await on_hand(cr, "W-1", "CR-000001") == stock
    assert (await cr.get("/stores/W-1/sales-totals")).body["sales_count"] == 0
    assert (await cr.get("/sales", params={"external_ref": "000000101"})).body["items"] == []
    await settle(cr)
    assert hooks.events == []


async def test_sale_within_a_cent_and_a_deleted_product_still_sells(cr: Api) -> None:
    await cr.call("DELETE", "/products/P-7")
    body = sale_body(
        "000000202",
        customer_id=None,
        lines=[{"sku": "CR-000007", "quantity": 3, "unit_price": 3.33}],
        shipping=0,
        tax_total=0,
        total=10.0,
        tenders=[{"type": "Cash", "amount": 5.0}, {"type": "Web Orders", "amount": 5.0}],
    )
    answer = await cr.post("/sales", body)
    assert answer.status == 201, answer.body
    assert answer.body["customer_id"] is None
    totals = (await cr.get("/stores/W-1/sales-totals")).body
    assert totals["by_tender"] == {"Cash": 5.0, "Web Orders": 5.0}


# --- webhooks: suppression ---------------------------------------------------------------------------
async def test_suppress_header_makes_the_change_without_a_webhook(cr: Api, hooks: Receiver) -> None:
    quiet = await cr.put("/products/P-3", {"price": 99.0}, headers=SUPPRESS)
    assert quiet.status == 200 and quiet.body["price"] == 99.0
    await cr.put("/inventory/W-1/CR-000003", {"on_hand": 123}, headers=SUPPRESS)
    await cr.post("/customers", {"email": "quiet@example.com", "first_name": "Q", "last_name": "Q"}, headers=SUPPRESS)
    await cr.post("/categories", {"code": "QUIET", "name": "Quiet"}, headers=SUPPRESS)
    await cr.post("/sales", sale_body("000000303"), headers=SUPPRESS)
    await cr.call("DELETE", "/products/P-6", headers=SUPPRESS)
    # An ordinary write afterwards is delivered, and it is the only delivery.
    await cr.put("/products/P-8", {"price": 1.0})
    await hooks.wait("product.updated", product_id="P-8")
    await settle(cr)
    assert [(e["type"], e["data"].get("product_id")) for e in hooks.events] == [("product.updated", "P-8")]
    assert (await cr.get("/inventory/W-1/CR-000003")).body["on_hand"] == 123
    health = (await cr.get("/_sandbox/health")).body
    assert health["webhooks"] == {"enabled": True, "delivered": 1}
    sent = (await cr.get("/_sandbox/webhooks")).body
    assert [(d["type"], d["status"]) for d in sent] == [("product.updated", 202)]


async def test_every_event_type_is_sent_signed_and_valid(cr: Api, hooks: Receiver) -> None:
    await cr.post("/products", {"sku": "EVT-1", "name": "Evented", "price": 1})
    await cr.put("/products/P-10", {"name": "Renamed"})
    await cr.put("/products/P-10", {"images": []})
    await cr.call("DELETE", "/products/P-10")
    await cr.put("/inventory/S-1/CR-000010", {"on_hand": 1000})
    await cr.post("/categories", {"code": "EVT", "name": "Evented"})
    await cr.put("/categories/C-1", {"name": "Tees"})
    await cr.post("/customers", {"email": "evt@example.com", "first_name": "E", "last_name": "V"})
    await cr.put("/customers/CU-2", {"first_name": "Changed"})
    await cr.post("/styles", {"code": "STY-EVT", "name": "Evented style", "axes": ["color"]})
    await cr.put("/styles/ST-1", {"name": "Renamed style"})
    await cr.call("DELETE", "/styles/ST-1")
    expected = set(CATALOGUE[Source.CLOUDRETAILER])
    await wait_for(lambda: {e["type"] for e in hooks.events} >= expected)
    await settle(cr)
    assert len({e["id"] for e in hooks.events}) == len(hooks.events), "each delivery has its own webhook-id"


async def test_no_webhooks_without_a_gateway_url() -> None:
    server, _ = await start(None)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, server, server.app)
            assert (await api.put("/products/P-1", {"price": 2.0})).status == 200
            assert (await api.get("/_sandbox/health")).body["webhooks"] == {"enabled": False, "delivered": 0}
    finally:
        await server.close()


# --- faults and stats --------------------------------------------------------------------------------
async def test_fault_503_then_cleared_and_429_with_retry_after(cr: Api) -> None:
    rules = [{"match": "GET /api/v1/products*", "error_rate": 1, "error_status": 503}]
    assert (await cr.put("/_sandbox/faults", rules)).status == 200
    down = await cr.get("/products/P-1")
    assert down.status == 503 and down.error["code"] == "unavailable"
    assert (await cr.get("/stores")).status == 200, "the rule matches products only"
    assert (await cr.get("/_sandbox/faults")).body[0]["error_status"] == 503
    assert (await cr.call("DELETE", "/_sandbox/faults")).body == []
    assert (await cr.get("/products/P-1")).status == 200

    await cr.put("/_sandbox/faults", [{"match": "*", "rate_limit_rate": 1, "retry_after_seconds": 7}])
    limited = await cr.post("/sales", sale_body())
    assert limited.status == 429 and limited.headers["Retry-After"] == "7"
    assert limited.error["code"] == "rate_limited"
    assert (await cr.get("/_sandbox/health")).status == 200, "the sandbox surface is never faulted"
    await cr.call("DELETE", "/_sandbox/faults")
    assert (await cr.get("/stores/W-1/sales-totals")).body["sales_count"] == 0, "a 429 had no effect"
    invalid = await cr.put("/_sandbox/faults", [{"match": "*", "error_rate": 2}])
    assert invalid.status == 422

    await cr.put("/_sandbox/faults", [{"match": "GET /api/v1/customers/*", "drop_rate": 1}])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await cr.get("/customers/CU-1")
    await cr.call("DELETE", "/_sandbox/faults")
    assert (await cr.get("/customers/CU-1")).status == 200


async def test_faults_set_at_start_and_latency() -> None:
    server, _ = await start(None, faults=[{"match": "GET /api/v1/stores", "latency_ms": 150}])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, server, server.app)
            began = time.perf_counter()
            assert (await api.get("/stores")).status == 200
            assert time.perf_counter() - began >= 0.14
    finally:
        await server.close()


async def test_stats_count_calls_per_route_template(cr: Api) -> None:
    await cr.call("DELETE", "/_sandbox/stats")
    await cr.get("/products/P-1")
    await cr.get("/products/P-2")
    await cr.get("/products/P-404")
    await cr.put("/inventory/W-1/CR-000001", {"on_hand": 1})
    await cr.put("/_sandbox/faults", [{"match": "GET /api/v1/stores", "error_rate": 1}])
    await cr.get("/stores")
    await cr.call("DELETE", "/_sandbox/faults")
    stats = (await cr.get("/_sandbox/stats")).body
    assert stats["calls"] == {
        "GET /api/v1/products/{product_id}": 3,
        "PUT /api/v1/inventory/{store_id}/{sku}": 1,
        "GET /api/v1/stores": 1,
    }
    assert stats["total"] == 5


# --- the adapter the workers use speaks this contract ------------------------------------------------
async def test_the_workers_adapter_speaks_this_contract(cr: Api) -> None:
    from pydantic import SecretStr

    from crmcore.settings import Settings
    from workers.clients.cloudretailer import CloudRetailerClient
    from workers.clients.cloudretailer_models import Sale, SaleLine, Tender
    from workers.clients.errors import NotFound, PermanentApiError

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, cr_url=str(cr.server.make_url("/api/v1")), cr_api_key=SecretStr(API_KEY), cr_store_id="W-1"
    )
    async with CloudRetailerClient(settings) as client:
        assert [s.id for s in await client.stores()] == ["S-1", "W-1"]
        product = await client.product_by_sku("CR-000003")
        assert product is not None and product.primary_attribute_set == "Shoes"
        assert hashlib.sha256(await client.image_bytes(product.id, product.images[0].id)).hexdigest() == (
            product.images[0].sha256
        )
        assert len([p async for p in client.products()]) == 30
        assert len([level async for level in client.inventory()]) == 30
        assert (await client.set_on_hand("CR-000003", 42)).on_hand == 42
        assert len(await client.categories()) == 14 and len(await client.attribute_sets()) == 4
        existing = await client.get_customer("CU-1")
        linked, created = await client.create_customer(
            {"email": existing.email.upper(), "first_name": "A", "last_name": "B"}
        )
        assert (linked.id, created) == ("CU-1", False)
        sale = Sale(
            store_id="W-1",
            external_ref="000000900",
            lines=[SaleLine(sku="CR-000003", quantity=1, unit_price=10)],
            total=10,
            tenders=[Tender(type="Web Orders", amount=10)],
            completed_at="2024-05-01T00:00:00Z",
        )
        first, first_created = await client.create_sale(sale)
        again, again_created = await client.create_sale(sale)
        assert first_created and not again_created and again.id == first.id
        assert (await client.sales_totals("W-1"))["sales_count"] == 1
        with pytest.raises(NotFound):
            await client.get_product("P-999")
        with pytest.raises(PermanentApiError, match=r"\(price\)"):
            await client.update_product("P-1", {"price": "12"})


# --- determinism and the contract document -----------------------------------------------------------
async def test_same_seed_same_catalog() -> None:
    def snapshot(seed: int) -> bytes:
        from sandbox.cloudretailer.keys import STATE

        app = create_app(CloudRetailerSandboxConfig(api_key=API_KEY, products=20, customers=5, seed=seed))
        st = app[STATE]
        return orjson.dumps(
            [p.to_json() for p in st.products.rows.values()] + [c.to_json() for c in st.customers.rows.values()]
        )

    assert snapshot(3) == snapshot(3)
    assert snapshot(3) != snapshot(4)


ROUTE_ROW = re.compile(r"^\|\s*`(GET|POST|PUT|DELETE|PATCH) (/[^`]*)`\s*\|", re.MULTILINE)


def documented_routes() -> set[tuple[str, str]]:
    routes = set()
    for method, path in ROUTE_ROW.findall(DOC.read_text(encoding="utf-8")):
        routes.add((method, path if path.startswith("/_sandbox/") else "/api/v1" + path))
    return routes


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = create_app(CloudRetailerSandboxConfig(api_key=API_KEY, products=1, customers=1))
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = documented_routes()
    assert len(documented) > 20, "the route table was not found in the document"
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_every_event_type_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for event_type in CATALOGUE[Source.CLOUDRETAILER]:
        assert f"| `{event_type}` |" in text


# --- scale -------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_100k_products_load_in_seconds_and_page_through() -> None:
    began = time.perf_counter()
    server, _ = await start(None, products=100_000, customers=1000)
    seeded = time.perf_counter() - began
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, server, server.app)
            assert (await api.get("/_sandbox/health")).body["products"] == 100_000
            last = await api.get("/products", params={"sku": "CR-100000"})
            assert last.body["items"][0]["id"] == "P-100000"
            began = time.perf_counter()
            products = await api.all_pages("/products", {"limit": "1000"})
            listed = time.perf_counter() - began
            assert len(products) == 100_000 and len({p["id"] for p in products}) == 100_000
            stock = await api.get("/inventory", params={"store_id": "W-1", "limit": "1000"})
            assert len(stock.body["items"]) == 1000 and stock.body["next_cursor"]
            changed = await api.put("/products/P-50000", {"price": 1.0})
            since = await api.get("/products", params={"updated_since": changed.body["updated_at"]})
            assert [p["id"] for p in since.body["items"]] == ["P-50000"]
    finally:
        await server.close()
    print(f"\n100k products: seeded in {seeded:.1f} s, listed in {listed:.1f} s")
    assert seeded < 60, f"seeding 100k products took {seeded:.1f} s"
