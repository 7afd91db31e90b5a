"""CloudRetailerClient against the sandbox Cloud Retailer over real HTTP on loopback, with faults injected
live through `/_sandbox/faults` and every attempt counted by `/_sandbox/stats`: the bearer key, retries and
giving up, error bodies as typed errors, cursor paging, the 409s that return the existing record, and the
concurrency limit. Nothing is mocked; retry delays are made small through the RetryPolicy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from sandbox.cloudretailer import CloudRetailerSandboxConfig, create_app
from tests.conftest import make_settings
from tests.support.sandbox_control import SandboxControl
from tests.test_client_parts import ODD_IDS
from tests.test_clients_magento import Seen, record_requests
from workers.clients.cloudretailer import CloudRetailerClient
from workers.clients.cloudretailer_models import Sale, SaleLine, Tender
from workers.clients.errors import (
    ApiError,
    NotFound,
    PermanentApiError,
    RemoteUnavailable,
    TransientApiError,
    Unauthorized,
)
from workers.clients.http import RetryPolicy

REDIS_URL = "redis://127.0.0.1:6379/15"  # Settings needs one; these tests never connect to it
API_KEY = "cr-client-test-key-0123456789"
FAST = RetryPolicy(retries=2, base_seconds=0.01, max_seconds=0.02)
PATIENT = RetryPolicy(retries=4, base_seconds=0.4, max_seconds=0.4)  # time to clear a fault between attempts
STORES = "GET /api/v1/stores"
PRODUCTS = "GET /api/v1/products"
SALES = "POST /api/v1/sales"


class Sandbox(SandboxControl):
    def __init__(self, server: TestServer, config: CloudRetailerSandboxConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(server, session)
        self.config = config


Start = Callable[..., Awaitable[Sandbox]]
Connect = Callable[..., CloudRetailerClient]


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


@pytest.fixture
def start(stack: AsyncExitStack) -> Start:
    async def run(app_hook: Callable[[web.Application], None] | None = None, **config: Any) -> Sandbox:
        values: dict[str, Any] = {"api_key": SecretStr(API_KEY), "products": 20, "customers": 5, "styles": False}
        values.update(config)
        cfg = CloudRetailerSandboxConfig(**values)
        app = create_app(cfg)
        if app_hook is not None:
            app_hook(app)
        server = TestServer(app)
        await server.start_server()
        stack.push_async_callback(server.close)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        return Sandbox(server, cfg, session)

    return run


@pytest.fixture
def connect(stack: AsyncExitStack) -> Connect:
    def make(
        sandbox: Sandbox, *, retry: RetryPolicy | None = FAST, api_key: str = API_KEY, **overrides: Any
    ) -> CloudRetailerClient:
        values: dict[str, Any] = {
            "cr_url": sandbox.url + "/api/v1",
            "cr_api_key": SecretStr(api_key),
            "cr_store_id": "W-1",
        }
        values.update(overrides)
        client = CloudRetailerClient(make_settings(REDIS_URL, **values), retry=retry)
        stack.push_async_callback(client.close)
        return client

    return make


def sale(external_ref: str, sku: str = "CR-000003", amount: float = 10) -> Sale:
    return Sale(
        store_id="W-1",
        external_ref=external_ref,
        lines=[SaleLine(sku=sku, quantity=1, unit_price=amount)],
        total=amount,
        tenders=[Tender(type="Web Orders", amount=amount)],
        completed_at="2024-05-01T00:00:00Z",
    )


# --- authentication ----------------------------------------------------------------------------------------


async def test_the_bearer_key_is_sent_and_a_wrong_one_is_unauthorized(start: Start, connect: Connect) -> None:
    sandbox = await start()
    assert [s.id for s in await connect(sandbox).stores()] == ["S-1", "W-1"]
    await sandbox.reset_stats()
    with pytest.raises(Unauthorized) as info:
        await connect(sandbox, api_key="not-the-key").stores()
    assert info.value.status == 401 and isinstance(info.value, PermanentApiError)
    assert info.value.message == "Missing or invalid API key: send Authorization: Bearer <key>."
    assert await sandbox.calls(STORES) == 1  # not retried


async def test_the_clients_repr_and_errors_never_show_the_key(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    with_userinfo = connect(sandbox, cr_url=sandbox.url.replace("http://", "http://ops:hunter2@") + "/api/v1")
    with pytest.raises(NotFound) as info:
        await client.get_product("NOPE")
    shown = " ".join([repr(client), str(client), repr(with_userinfo), str(info.value), repr(info.value)])
    assert "CloudRetailerClient(http://127.0.0.1" in shown and "store='W-1'" in shown
    assert API_KEY not in shown and "hunter2" not in shown


# --- retries -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "settings"),
    [
        ({"error_rate": 1, "error_status": 503}, {}),
        ({"error_rate": 1, "error_status": 502}, {}),
        ({"drop_rate": 1}, {}),
        ({"timeout_rate": 1}, {"http_timeout_seconds": 0.3}),
    ],
    ids=["503", "502", "dropped", "timeout"],
)
async def test_transient_failures_are_retried_until_they_pass(
    start: Start, connect: Connect, rule: dict[str, Any], settings: dict[str, Any]
) -> None:
    sandbox = await start()
    client = connect(sandbox, retry=PATIENT, **settings)
    await sandbox.faults({"match": "GET /api/v1/stores", **rule})
    call = asyncio.create_task(client.stores())
    assert await sandbox.clear_faults_after(STORES, 2) == 2
    assert len(await call) == 2
    assert await sandbox.calls(STORES) == 3


@pytest.mark.parametrize(
    ("rule", "settings", "status", "message"),
    [
        ({"error_rate": 1, "error_status": 503}, {}, 503, "Sandbox fault: internal error."),
        ({"rate_limit_rate": 1, "retry_after_seconds": 0}, {}, 429, "Too many requests. Retry later."),
        ({"drop_rate": 1}, {}, None, "ServerDisconnectedError: Server disconnected"),
        ({"timeout_rate": 1}, {"http_timeout_seconds": 0.2}, None, "TimeoutError: timed out"),
    ],
    ids=["503", "429", "dropped", "timeout"],
)
async def test_giving_up_after_the_configured_attempts_is_a_transient_error(
    start: Start, connect: Connect, rule: dict[str, Any], settings: dict[str, Any], status: int | None, message: str
) -> None:
    sandbox = await start()
    client = connect(sandbox, retry=RetryPolicy(retries=3, base_seconds=0.01, max_seconds=0.02), **settings)
    await sandbox.faults(rule)
    with pytest.raises(TransientApiError) as info:
        await client.get_product("P-1")
    assert (info.value.status, info.value.message) == (status, message)
    assert await sandbox.calls("GET /api/v1/products/{product_id}") == 4  # 1 + 3 retries


async def test_429_waits_as_long_as_retry_after_says(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox, retry=RetryPolicy(retries=3, base_seconds=0.01, max_seconds=0.01))
    await sandbox.faults({"match": "GET /api/v1/stores", "rate_limit_rate": 1, "retry_after_seconds": 1})
    began = time.monotonic()
    call = asyncio.create_task(client.stores())
    await sandbox.clear_faults_after(STORES, 1)
    assert len(await call) == 2
    elapsed = time.monotonic() - began
    assert await sandbox.calls(STORES) == 2
    assert 0.95 <= elapsed < 10, elapsed  # one wait of Retry-After: 1 (the backoff alone would be 10 ms)


async def test_a_sale_is_resent_after_a_dropped_connection_and_recorded_once(start: Start, connect: Connect) -> None:
    """external_ref is accepted once, so the client may re-send the POST whatever happened to the first."""
    sandbox = await start()
    client = connect(sandbox, retry=PATIENT)
    before = (await client.sales_totals("W-1"))["sales_count"]
    await sandbox.faults({"match": SALES, "drop_rate": 1})
    call = asyncio.create_task(client.create_sale(sale("100000001")))
    await sandbox.clear_faults_after(SALES, 1)
    recorded, created = await call
    assert created and recorded.id and recorded.external_ref == "100000001"
    assert await sandbox.calls(SALES) == 2
    assert (await client.sales_totals("W-1"))["sales_count"] == before + 1


async def test_other_creates_are_not_resent_when_the_server_may_have_acted(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    await sandbox.faults({"match": "POST /api/v1/categories", "drop_rate": 1})
    with pytest.raises(TransientApiError):
        await client.create_category({"name": "Lost", "parent_id": None})
    assert await sandbox.calls("POST /api/v1/categories") == 1
    await sandbox.faults({"match": "POST /api/v1/categories", "error_rate": 1, "error_status": 503})
    with pytest.raises(TransientApiError):
        await client.create_category({"name": "Lost", "parent_id": None})
    assert await sandbox.calls("POST /api/v1/categories") == 4  # 503: surely not acted on, so retried


# --- errors --------------------------------------------------------------------------------------------------


async def test_errors_are_typed_with_the_servers_message(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    with pytest.raises(NotFound) as missing:
        await client.get_customer("CU-999")
    assert missing.value.message == "customer 'CU-999' does not exist"
    with pytest.raises(PermanentApiError) as bad:
        await client.create_sale(sale("100000002", sku="NO-SUCH-SKU"))
    assert bad.value.status == 422 and not isinstance(bad.value, NotFound)
    assert bad.value.message == "lines[0].sku: no product with sku 'NO-SUCH-SKU' (lines[0].sku)"
    code = (await client.categories())[0].code
    with pytest.raises(PermanentApiError) as conflict:
        await client.create_category({"name": "Twin", "code": code})
    assert conflict.value.status == 409 and conflict.value.message.endswith("(code)")
    # A page that is not JSON is what a maintenance proxy answers: the remote counts as unavailable.
    await sandbox.faults({"match": "GET /api/v1/customers/*", "page_rate": 1})
    with pytest.raises(RemoteUnavailable, match="the answer is not JSON"):
        await client.get_customer("CU-1")
    assert await sandbox.calls() == 5  # none retried


# --- 409: the existing record --------------------------------------------------------------------------------


async def test_a_known_email_returns_the_existing_customer(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    new, created = await client.create_customer({"email": "zoe+web@example.com", "first_name": "Zoë", "last_name": "B"})
    assert created and new.email == "zoe+web@example.com"
    assert (await client.find_customer("zoe+web@example.com")) == new  # '+' survives the query string
    await sandbox.reset_stats()
    again, created = await client.create_customer({"email": "ZOE+web@example.com", "first_name": "Z", "last_name": "C"})
    assert (again, created) == (new, False)
    assert await sandbox.calls() == 1  # the 409 carries the record: no second call to fetch it


async def test_a_known_external_ref_returns_the_existing_sale(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    first, created = await client.create_sale(sale("100000003"))
    assert created
    await sandbox.reset_stats()
    again, created = await client.create_sale(sale("100000003"))
    assert (again, created) == (first, False)
    assert await sandbox.calls() == 1
    assert (await client.sale_by_external_ref("100000003")) == first
    assert (await client.sales_totals("W-1"))["sales_count"] == 1  # recorded once


# --- paging --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("products", "limit", "pages"), [(250, 100, 3), (200, 100, 2), (7, 100, 1)])
async def test_cursor_paging_returns_everything_once(
    start: Start, connect: Connect, products: int, limit: int, pages: int
) -> None:
    sandbox = await start(products=products)
    client = connect(sandbox)
    ids = [p["id"] async for p in client.iter_pages("products", limit=limit)]
    assert len(ids) == len(set(ids)) == products
    assert await sandbox.calls(PRODUCTS) == pages
    assert len({p.sku async for p in client.products()}) == products  # the typed iterator, larger pages


async def test_updated_since_lists_only_what_changed(start: Start, connect: Connect) -> None:
    sandbox = await start(products=30)
    client = connect(sandbox)
    products = [p async for p in client.products()]
    latest = max(products, key=lambda p: p.updated_at or "")
    levels = [level async for level in client.inventory()]
    await client.update_product(products[4].id, {"name": "Renamed 4"})
    await client.set_on_hand(products[9].sku, 3)
    # "at or after" (docs/cloudretailer-api.md): the record stamped `since` itself comes back too
    changed = [p async for p in client.products(updated_since=latest.updated_at)]
    assert [(p.id, p.name) for p in changed] == [(latest.id, latest.name), (products[4].id, "Renamed 4")]
    since = max(level.updated_at or "" for level in levels)
    moved = [level async for level in client.inventory(updated_since=since) if level.updated_at != since]
    assert [(level.sku, level.on_hand) for level in moved] == [(products[9].sku, 3)]
    assert (await client.inventory_level(products[9].sku)).on_hand == 3


async def test_image_bytes_match_their_hash(start: Start, connect: Connect) -> None:
    sandbox = await start(products=3)
    client = connect(sandbox)
    product = await client.product_by_sku("CR-000001")
    assert product is not None and product.images
    image = product.images[0]
    assert hashlib.sha256(await client.image_bytes(product.id, image.id)).hexdigest() == image.sha256
    assert await client.product_by_sku("NOPE") is None


async def test_styles_their_variants_and_images(start: Start, connect: Connect) -> None:
    sandbox = await start(products=60, styles=True)
    client = connect(sandbox)
    styles = [s async for s in client.styles()]
    assert [s.id for s in styles] == [f"ST-{n}" for n in range(1, 11)]
    style = await client.get_style("ST-1")
    assert style == styles[0] and style.code == "STY-000001" and style.axes == ["color", "size"]
    assert style.primary_attribute_set == "Clothing"
    variants = await client.variants("ST-1")
    assert [v.id for v in variants] == style.variant_ids == ["P-1", "P-11", "P-21", "P-31", "P-41"]
    assert {v.style_id for v in variants} == {"ST-1"}
    assert len({(v.attributes["color"], v.attributes["size"]) for v in variants}) == 5
    assert (await client.get_product("P-5")).style_id is None
    image = style.images[0]
    assert hashlib.sha256(await client.style_image_bytes("ST-1", image.id)).hexdigest() == image.sha256
    with pytest.raises(NotFound):
        await client.get_style("ST-999")
    # Changes show up through updated_since; a deleted variant is still listed by variants().
    latest = max(s.updated_at or "" for s in styles)
    await client.update_product("P-1", {"attributes": {"size": "XL"}})  # an axis value: touches ST-1
    assert [s.id async for s in client.styles(updated_since=latest)] == ["ST-10", "ST-1"]
    await client.update_product("P-11", {"style_id": None})
    assert (await client.get_style("ST-1")).variant_ids == ["P-1", "P-21", "P-31", "P-41"]
    await sandbox_delete(sandbox, "/api/v1/products/P-41")
    assert [(v.id, v.deleted) for v in await client.variants("ST-1")][-1] == ("P-41", True)
    assert (await client.get_style("ST-1")).variant_ids == ["P-1", "P-21", "P-31"]


async def sandbox_delete(sandbox: Sandbox, path: str) -> None:
    """The client has no delete (the workers never delete in Cloud Retailer): the test does it directly."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with sandbox.session.delete(sandbox.url + path, headers=headers) as resp:
        assert resp.status == 200


# --- concurrency ---------------------------------------------------------------------------------------------


async def test_no_more_requests_in_flight_than_the_concurrency_limit(start: Start, connect: Connect) -> None:
    in_flight = {"now": 0, "max": 0}

    @web.middleware
    async def count_in_flight(request: web.Request, handler: Any) -> web.StreamResponse:
        # Outermost, so the injected latency is inside the window measured.
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            return await handler(request)
        finally:
            in_flight["now"] -= 1

    sandbox = await start(app_hook=lambda app: app.middlewares.insert(0, count_in_flight))
    client = connect(sandbox, cr_concurrency=2)
    await sandbox.faults({"match": "GET /api/v1/stores", "latency_ms": 150})
    began = time.monotonic()
    results = await asyncio.gather(*(client.stores() for _ in range(8)))
    elapsed = time.monotonic() - began
    assert all(len(r) == 2 for r in results)
    assert in_flight["max"] == 2
    assert elapsed >= 4 * 0.15 * 0.9, elapsed  # 8 calls, 2 at a time, 150 ms each


# --- ids in paths --------------------------------------------------------------------------------------------

API = "/api/v1"
IMAGE, LEVEL = API + "/products/{product_id}/images/{image_id}", API + "/inventory/{store_id}/{sku}"
STYLE_IMAGE = API + "/styles/{style_id}/images/{image_id}"
# Every method that puts an id into a path, with `odd` in one id's place: the route and parameter that id must
# arrive in.
ID_CALLS: dict[str, tuple[Callable[[CloudRetailerClient, Any], Awaitable[Any]], str, str, str]] = {
    "sales_totals": (lambda c, odd: c.sales_totals(odd), "GET", API + "/stores/{store_id}/sales-totals", "store_id"),
    "get_product": (lambda c, odd: c.get_product(odd), "GET", API + "/products/{product_id}", "product_id"),
    "update_product": (lambda c, odd: c.update_product(odd, {}), "PUT", API + "/products/{product_id}",
                       "product_id"),
    "image_bytes product": (lambda c, odd: c.image_bytes(odd, "I"), "GET", IMAGE, "product_id"),
    "image_bytes image": (lambda c, odd: c.image_bytes("P-1", odd), "GET", IMAGE, "image_id"),
    "inventory_level sku": (lambda c, odd: c.inventory_level(odd), "GET", LEVEL, "sku"),
    "inventory_level store": (lambda c, odd: c.inventory_level("S", odd), "GET", LEVEL, "store_id"),
    "set_on_hand sku": (lambda c, odd: c.set_on_hand(odd, 1), "PUT", LEVEL, "sku"),
    "set_on_hand store": (lambda c, odd: c.set_on_hand("S", 1, odd), "PUT", LEVEL, "store_id"),
    "get_category": (lambda c, odd: c.get_category(odd), "GET", API + "/categories/{category_id}", "category_id"),
    "get_customer": (lambda c, odd: c.get_customer(odd), "GET", API + "/customers/{customer_id}", "customer_id"),
    "get_style": (lambda c, odd: c.get_style(odd), "GET", API + "/styles/{style_id}", "style_id"),
    "style_image_bytes style": (lambda c, odd: c.style_image_bytes(odd, "I"), "GET", STYLE_IMAGE, "style_id"),
    "style_image_bytes image": (lambda c, odd: c.style_image_bytes("ST-1", odd), "GET", STYLE_IMAGE, "image_id"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(ID_CALLS))
async def test_every_id_reaches_its_own_route_as_one_segment(start: Start, connect: Connect, name: str) -> None:
    seen: list[Seen] = []
    sandbox = await start(app_hook=record_requests(seen))
    client = connect(sandbox)
    call, method, route, param = ID_CALLS[name]
    for odd, encoded in ODD_IDS.items():
        seen.clear()
        with contextlib.suppress(ApiError):  # no such record: only the request matters here
            await call(client, odd)
        [request] = seen
        assert (request.method, request.route, request.query) == (method, route, ""), (name, odd)
        assert request.match[param] == odd, (name, odd)
        # the path as sent: the id as one encoded segment in its place, every other part as the route has it
        assert request.path == route.format_map({**request.match, param: encoded}), (name, odd)
