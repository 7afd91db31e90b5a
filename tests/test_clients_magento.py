"""MagentoClient against the sandbox Magento over real HTTP on loopback, with faults injected live through
`/_sandbox/faults` and every attempt counted by `/_sandbox/stats`: both ways of authenticating, retries and
giving up, Magento's error bodies as typed errors, paging past Magento's last-page trap, store scope, and the
concurrency limit. Nothing is mocked; retry delays are made small through the RetryPolicy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.magento import MagentoSandboxConfig, create_app
from tests.conftest import make_settings
from tests.support.sandbox_control import SandboxControl
from tests.test_client_parts import ODD_IDS
from workers.clients.errors import ApiError, NotFound, PermanentApiError, TransientApiError, Unauthorized
from workers.clients.http import RetryPolicy
from workers.clients.magento import MagentoClient
from workers.clients.magento_models import ConfigurableOption, PriceUpdateResult, SourceItem
from workers.clients.search_criteria import SearchCriteria

# No Redis is touched by these tests; Settings only needs a well-formed URL.
REDIS_URL = "redis://127.0.0.1:6379/15"
FAST = RetryPolicy(retries=2, base_seconds=0.01, max_seconds=0.02)
# Long enough that the test sees an attempt fail and clears the fault before the next one is sent.
PATIENT = RetryPolicy(retries=4, base_seconds=0.4, max_seconds=0.4)
STORE_VIEWS = "GET /rest/{store_code}/V1/store/storeViews"
PRODUCTS = "GET /rest/{store_code}/V1/products"


class Sandbox(SandboxControl):
    """One running sandbox Magento, with the config it was started with."""

    def __init__(self, server: TestServer, config: MagentoSandboxConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(server, session)
        self.config = config


Start = Callable[..., Awaitable[Sandbox]]
Connect = Callable[..., MagentoClient]


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


@pytest.fixture
def start(stack: AsyncExitStack) -> Start:
    async def run(app_hook: Callable[[web.Application], None] | None = None, **config: Any) -> Sandbox:
        cfg = MagentoSandboxConfig(**config)
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
        sandbox: Sandbox, auth: str = "oauth", *, retry: RetryPolicy | None = FAST, **overrides: Any
    ) -> MagentoClient:
        cfg = sandbox.config
        values: dict[str, Any] = {"magento_url": sandbox.url}
        if auth == "oauth":
            values.update(
                magento_consumer_key=cfg.consumer_key,
                magento_consumer_secret=cfg.consumer_secret,
                magento_access_token=cfg.access_token,
                magento_access_token_secret=cfg.access_token_secret,
            )
        else:
            values["magento_token"] = cfg.access_token
        values.update(overrides)
        client = MagentoClient(make_settings(REDIS_URL, **values), retry=retry)
        stack.push_async_callback(client.close)
        return client

    return make


def simple(sku: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    product = {"sku": sku, "name": name or f"Product {sku}", "price": 10, "attribute_set_id": 4, "type_id": "simple"}
    product.update(extra)
    return product


CUSTOMER = {"email": "ava@example.com", "firstname": "Ava", "lastname": "Smith", "website_id": 1}


# --- authentication ----------------------------------------------------------------------------------------


async def test_bearer_and_oauth_hmac_sha256_are_both_accepted(start: Start, connect: Connect) -> None:
    sandbox = await start(products=3)
    for auth in ("bearer", "oauth"):
        client = connect(sandbox, auth)
        assert [v["code"] for v in await client.store_views()] == ["admin", "default", "fr", "outlet"]
        # a query with searchCriteria brackets and a '%' is part of the OAuth signature base string
        page = await client.list_products(SearchCriteria(page_size=2).where("sku", "CR-00000%", "like"))
        assert page.total_count == 3 and len(page.items) == 2
        saved = await client.save_product(simple(f"AUTH-{auth}"))  # a signed PUT with a JSON body
        assert saved.sku == f"AUTH-{auth}"
        created = await client.create_customer({**CUSTOMER, "email": f"a+{auth}@example.com"})
        found = await client.find_customer(f"a+{auth}@example.com")
        assert found is not None and found.id == created.id


async def test_with_bearer_disabled_oauth_works_and_bearer_is_unauthorized(start: Start, connect: Connect) -> None:
    sandbox = await start(bearer_enabled=False)
    oauth, bearer = connect(sandbox, "oauth"), connect(sandbox, "bearer")
    assert len(await oauth.store_views()) == 4
    await sandbox.reset_stats()
    with pytest.raises(Unauthorized) as info:
        await bearer.get_product("ANY")
    err = info.value
    assert err.status == 401 and isinstance(err, PermanentApiError)
    assert err.message == "The consumer isn't authorized to access Magento_Catalog::products."  # %resources filled
    assert await sandbox.calls() == 1  # a 401 is not retried


async def test_the_clients_repr_and_errors_never_show_a_secret(start: Start, connect: Connect) -> None:
    sandbox = await start(bearer_enabled=False)
    cfg = sandbox.config
    secrets = [s.get_secret_value() for s in (cfg.consumer_secret, cfg.access_token, cfg.access_token_secret)]
    oauth = connect(sandbox, "oauth")
    bearer = connect(sandbox, "bearer", magento_url=sandbox.url.replace("http://", "http://admin:hunter2@"))
    with pytest.raises(Unauthorized) as info:
        await connect(sandbox, "bearer").store_views()
    shown = " ".join([repr(oauth), str(oauth), repr(bearer), repr(oauth._signer), str(info.value), repr(info.value)])
    assert "MagentoClient(http://127.0.0.1" in shown
    for secret in [*secrets, "hunter2"]:
        assert secret not in shown


# --- retries -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "settings"),
    [
        ({"error_rate": 1, "error_status": 503}, {}),
        ({"drop_rate": 1}, {}),
        ({"timeout_rate": 1}, {"http_timeout_seconds": 0.3}),
    ],
    ids=["503", "dropped", "timeout"],
)
async def test_transient_failures_are_retried_until_they_pass(
    start: Start, connect: Connect, rule: dict[str, Any], settings: dict[str, Any]
) -> None:
    sandbox = await start()
    client = connect(sandbox, retry=PATIENT, **settings)
    await sandbox.faults({"match": "GET /rest/*/V1/store/storeViews", **rule})
    call = asyncio.create_task(client.store_views())
    assert await sandbox.clear_faults_after(STORE_VIEWS, 2) == 2
    assert len(await call) == 4
    assert await sandbox.calls(STORE_VIEWS) == 3  # two failed attempts, one that passed


@pytest.mark.parametrize(
    ("rule", "settings", "status", "message"),
    [
        ({"error_rate": 1, "error_status": 503}, {}, 503, "Sandbox fault: internal error."),
        ({"error_rate": 1, "error_status": 500}, {}, 500, "Sandbox fault: internal error."),
        ({"rate_limit_rate": 1, "retry_after_seconds": 0}, {}, 429, "Too many requests. Retry later."),
        ({"drop_rate": 1}, {}, None, "ServerDisconnectedError: Server disconnected"),
        ({"timeout_rate": 1}, {"http_timeout_seconds": 0.2}, None, "TimeoutError: timed out"),
    ],
    ids=["503", "500", "429", "dropped", "timeout"],
)
async def test_giving_up_after_the_configured_attempts_is_a_transient_error(
    start: Start, connect: Connect, rule: dict[str, Any], settings: dict[str, Any], status: int | None, message: str
) -> None:
    sandbox = await start()
    client = connect(sandbox, retry=RetryPolicy(retries=2, base_seconds=0.01, max_seconds=0.02), **settings)
    await sandbox.faults(rule)
    with pytest.raises(TransientApiError) as info:
        await client.store_views()
    assert info.value.status == status and info.value.path == "/rest/default/V1/store/storeViews"
    assert info.value.message == message
    assert await sandbox.calls(STORE_VIEWS) == 3  # 1 + 2 retries, and not one more


async def test_429_waits_as_long_as_retry_after_says(start: Start, connect: Connect) -> None:
    sandbox = await start()
    # Without Retry-After the backoff here would be ~10 ms; the server asks for a full second.
    client = connect(sandbox, retry=RetryPolicy(retries=3, base_seconds=0.01, max_seconds=0.01))
    await sandbox.faults({"match": "GET *storeViews", "rate_limit_rate": 1, "retry_after_seconds": 1})
    began = time.monotonic()
    call = asyncio.create_task(client.store_views())
    await sandbox.clear_faults_after(STORE_VIEWS, 2)
    assert len(await call) == 4
    elapsed = time.monotonic() - began
    assert await sandbox.calls(STORE_VIEWS) == 3
    assert 1.9 <= elapsed < 10, elapsed  # two waits of Retry-After: 1


async def test_a_create_is_resent_only_when_the_server_surely_did_not_act(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    route = "POST /rest/{store_code}/V1/categories"
    new = {"name": "Lost", "parent_id": 2}
    # dropped connection or 500: the category may exist now, so a POST is not sent again
    for rule in ({"drop_rate": 1}, {"error_rate": 1, "error_status": 500}):
        await sandbox.reset_stats()
        await sandbox.faults({"match": "POST *", **rule})
        with pytest.raises(TransientApiError):
            await client.create_category(new)
        assert await sandbox.calls(route) == 1, rule
    # 503 (and 429) mean "not handled": retried
    await sandbox.reset_stats()
    await sandbox.faults({"match": "POST *", "error_rate": 1, "error_status": 503})
    with pytest.raises(TransientApiError):
        await client.create_category(new)
    assert await sandbox.calls(route) == 3
    # an email is unique per website, so even a customer's POST is safe to re-send (a second one is a 400)
    await sandbox.reset_stats()
    await sandbox.faults({"match": "POST *", "drop_rate": 1})
    with pytest.raises(TransientApiError):
        await client.create_customer(CUSTOMER)
    assert await sandbox.calls("POST /rest/{store_code}/V1/customers") == 3


async def test_a_server_that_is_not_there_is_retried_then_transient(start: Start, connect: Connect) -> None:
    sandbox = await start()
    await sandbox.server.close()  # its port is free now: connections are refused
    client = connect(sandbox)
    with pytest.raises(TransientApiError, match="cannot connect"):
        await client.store_views()
    assert client.http.calls == 3


# --- Magento's errors ----------------------------------------------------------------------------------------


async def test_magentos_400s_are_permanent_with_placeholders_filled(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    await client.save_product(simple("URL-1", "Classic Tee"))
    await client.create_customer(CUSTOMER)
    await sandbox.reset_stats()
    cases = [
        (client.save_product(simple("URL-2", "Classic Tee")), "URL key for specified store already exists."),
        (
            client.create_customer(CUSTOMER),
            "A customer with the same email address already exists in an associated website.",
        ),
        (client.save_product(simple("S" * 65)), "SKU length should be 64 characters maximum."),
        (client.create_customer({**CUSTOMER, "email": "not-an-email"}), '"Email" is not a valid email address.'),
        (client.update_category(2, {"name": ""}), 'The "Name" attribute is required. Enter and try again.'),
    ]
    for call, message in cases:
        with pytest.raises(PermanentApiError) as info:
            await call
        err = info.value
        assert err.status == 400 and not isinstance(err, NotFound | Unauthorized), err
        assert err.message == message and str(err).endswith(message)
    assert await sandbox.calls() == len(cases)  # none retried


async def test_missing_records_and_routes_are_not_found(start: Start, connect: Connect) -> None:
    sandbox = await start(msi=False)
    client = connect(sandbox)
    with pytest.raises(NotFound) as product:
        await client.get_product("NOPE")
    assert product.value.message == "The product that was requested doesn't exist. Verify the product and try again."
    with pytest.raises(NotFound) as customer:
        await client.get_customer(999)
    assert customer.value.message == "No such entity with customerId = 999"  # %fieldName, %fieldValue
    with pytest.raises(NotFound, match="Request does not match any route"):
        await client.sources()  # no MSI: the route does not exist
    with pytest.raises(NotFound):
        await client.get_product("CR-000001", store="nowhere")  # an unknown store code is no route
    assert await sandbox.calls() == 4


# --- paging --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("products", "page_size", "pages"), [(45, 20, 3), (40, 20, 2), (45, 15, 3), (5, 20, 1)])
async def test_paging_stops_on_total_count_past_magentos_last_page_trap(
    start: Start, connect: Connect, products: int, page_size: int, pages: int
) -> None:
    sandbox = await start(products=products)
    client = connect(sandbox)
    criteria = SearchCriteria(page_size=page_size).order_by("sku")
    # the trap is real: one page past the end is the last page again, never an empty one
    last = await client.search("products", criteria, page=pages)
    assert (await client.search("products", criteria, page=pages + 1)).items == last.items != []
    await sandbox.reset_stats()
    skus = [p["sku"] async for p in client.iter_search("products", criteria)]
    assert len(skus) == len(set(skus)) == products
    assert await sandbox.calls(PRODUCTS) == pages


async def test_source_items_are_listed_by_page_and_saved_in_one_call(start: Start, connect: Connect) -> None:
    sandbox = await start(products=45)
    client = connect(sandbox)
    criteria = SearchCriteria(page_size=20).where("source_code", "default").order_by("sku")
    pages = [await client.list_source_items(criteria, page=n) for n in (1, 2, 3)]
    items = [SourceItem.model_validate(i) for page in pages for i in page.items]
    assert len({i.sku for i in items}) == len(items) == 45 and pages[0].total_count == 45
    chosen = [i.sku for i in items[:3]]
    found = await client.list_source_items(SearchCriteria().where("sku", chosen, "in"))
    assert sorted(i["sku"] for i in found.items) == sorted(chosen)

    await sandbox.reset_stats()
    # The caller sizes the batch (CRMAGENTO_INVENTORY_BATCH_SIZE): one call however many items it holds.
    await client.save_source_items([SourceItem(sku=i.sku, source_code="default", quantity=7, status=1) for i in items])
    assert await sandbox.calls("POST /rest/{store_code}/V1/inventory/source-items") == 1
    everything = await client.list_source_items(SearchCriteria(page_size=100))
    assert {i["quantity"] for i in everything.items} == {7}


async def test_an_empty_search_is_one_call(start: Start, connect: Connect) -> None:
    sandbox = await start(products=5)
    client = connect(sandbox)
    none = SearchCriteria(page_size=20).where("sku", "NOTHING-%", "like")
    assert [p async for p in client.iter_search("products", none)] == []
    assert await sandbox.calls(PRODUCTS) == 1


# --- store scope ---------------------------------------------------------------------------------------------


async def test_store_scoped_urls_reach_the_right_scope(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)  # store code "default"
    french = connect(sandbox, magento_store_code="fr")
    assert client.url("products").path == "/rest/default/V1/products"
    assert french.url("products", store="all").path == "/rest/all/V1/products"

    await client.save_product(simple("SCOPE-1", "Tee"))  # a catalog write defaults to `all`: global values
    await client.save_product({"sku": "SCOPE-1", "name": "T-shirt"}, store="fr")  # the French view's override
    await client.save_product({"sku": "SCOPE-1", "name": "Default Tee"}, store="default")
    assert (await client.get_product("SCOPE-1", store="all")).name == "Tee"
    assert (await client.get_product("SCOPE-1")).name == "Default Tee"
    assert (await french.get_product("SCOPE-1")).name == "T-shirt"
    assert (await client.get_product("SCOPE-1", store="fr")).name == "T-shirt"
    # created through `all`: on every website; through a store code: that store's website only
    assert (await client.get_product("SCOPE-1")).extension_attributes["website_ids"] == [1, 2]
    outlet = await client.save_product(simple("SCOPE-2", "Outlet Tee"), store="outlet")
    assert outlet.extension_attributes["website_ids"] == [2]


async def test_skus_with_url_characters_travel_as_one_segment(start: Start, connect: Connect) -> None:
    sandbox = await start()
    for auth in ("oauth", "bearer"):
        client = connect(sandbox, auth)
        sku = f"TEE #1 ?50% {auth}"
        await client.save_product(simple(sku, f"Odd {auth}"))
        assert (await client.get_product(sku)).sku == sku
        assert await client.list_media(sku) == []


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
    client = connect(sandbox, magento_concurrency=3)
    await sandbox.faults({"match": "GET *storeViews", "latency_ms": 150})
    began = time.monotonic()
    results = await asyncio.gather(*(client.store_views() for _ in range(12)))
    elapsed = time.monotonic() - began
    assert all(len(r) == 4 for r in results)
    assert in_flight["max"] == 3
    assert elapsed >= 4 * 0.15 * 0.9, elapsed  # 12 calls, 3 at a time, 150 ms each


# --- ids in paths --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the sandbox received it: the path as sent, its query, the route it reached."""

    method: str
    path: str
    query: str
    route: str | None
    match: dict[str, str]


def record_requests(seen: list[Seen]) -> Callable[[web.Application], None]:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        url = request.rel_url
        seen.append(Seen(request.method, url.raw_path, url.raw_query_string, route, dict(request.match_info)))
        return await handler(request)

    return lambda app: app.middlewares.insert(0, record)


V1 = "/rest/{store_code}/V1"
PRODUCT, MEDIA_ENTRY = V1 + "/products/{sku}", V1 + "/products/{sku}/media/{entryId}"
ATTRIBUTE, CATEGORY_LINK = V1 + "/products/attributes/{attributeCode}", V1 + "/categories/{categoryId}/products/{sku}"
STOCK_ITEM = V1 + "/products/{productSku}/stockItems/{itemId}"
# Every method that puts an id into a path, with `odd` in one id's place: the route and parameter that id must
# arrive in. Ids typed int get `odd` too: a str that slipped through must not escape its segment either.
ID_CALLS: dict[str, tuple[Callable[[MagentoClient, Any], Awaitable[Any]], str, str, str]] = {
    "get_product": (lambda c, odd: c.get_product(odd), "GET", PRODUCT, "sku"),
    "get_product store": (lambda c, odd: c.get_product("X", store=odd), "GET", PRODUCT, "store_code"),
    "save_product": (lambda c, odd: c.save_product(simple(odd)), "PUT", PRODUCT, "sku"),
    "list_media": (lambda c, odd: c.list_media(odd), "GET", PRODUCT + "/media", "sku"),
    "add_media": (lambda c, odd: c.add_media(odd, {}), "POST", PRODUCT + "/media", "sku"),
    "set_media_roles sku": (lambda c, odd: c.set_media_roles(odd, 1, []), "PUT", MEDIA_ENTRY, "sku"),
    "set_media_roles entry": (lambda c, odd: c.set_media_roles("X", odd, []), "PUT", MEDIA_ENTRY, "entryId"),
    "delete_media sku": (lambda c, odd: c.delete_media(odd, 1), "DELETE", MEDIA_ENTRY, "sku"),
    "delete_media entry": (lambda c, odd: c.delete_media("X", odd), "DELETE", MEDIA_ENTRY, "entryId"),
    "attribute": (lambda c, odd: c.attribute(odd), "GET", ATTRIBUTE, "attributeCode"),
    "add_attribute_option": (lambda c, odd: c.add_attribute_option(odd, "L"), "POST", ATTRIBUTE + "/options",
                             "attributeCode"),
    "get_category": (lambda c, odd: c.get_category(odd), "GET", V1 + "/categories/{categoryId}", "categoryId"),
    "update_category": (lambda c, odd: c.update_category(odd, {}), "PUT", V1 + "/categories/{id}", "id"),
    "move_category": (lambda c, odd: c.move_category(odd, 2), "PUT", V1 + "/categories/{categoryId}/move",
                      "categoryId"),
    "unassign_product category": (lambda c, odd: c.unassign_product(odd, "X"), "DELETE", CATEGORY_LINK,
                                  "categoryId"),
    "unassign_product sku": (lambda c, odd: c.unassign_product(3, odd), "DELETE", CATEGORY_LINK, "sku"),
    "legacy_stock_item": (lambda c, odd: c.legacy_stock_item(odd), "GET", V1 + "/stockItems/{productSku}",
                          "productSku"),
    "save_legacy_stock_item sku": (lambda c, odd: c.save_legacy_stock_item(odd, 1, 1, True), "PUT", STOCK_ITEM,
                                   "productSku"),
    "save_legacy_stock_item item": (lambda c, odd: c.save_legacy_stock_item("X", odd, 1, True), "PUT", STOCK_ITEM,
                                    "itemId"),
    "get_customer": (lambda c, odd: c.get_customer(odd), "GET", V1 + "/customers/{customerId}", "customerId"),
    "update_customer": (lambda c, odd: c.update_customer(odd, CUSTOMER), "PUT", V1 + "/customers/{customerId}",
                        "customerId"),
    "get_customer_group": (lambda c, odd: c.get_customer_group(odd), "GET", V1 + "/customerGroups/{id}", "id"),
    "get_order": (lambda c, odd: c.get_order(odd), "GET", V1 + "/orders/{id}", "id"),
    "get_shipment": (lambda c, odd: c.get_shipment(odd), "GET", V1 + "/shipment/{id}", "id"),
    "store_configs store": (lambda c, odd: c.store_configs(store=odd), "GET", V1 + "/store/storeConfigs",
                            "store_code"),
}  # fmt: skip


@pytest.mark.parametrize("auth", ["oauth", "bearer"])
@pytest.mark.parametrize("name", list(ID_CALLS))
async def test_every_id_reaches_its_own_route_as_one_segment(
    start: Start, connect: Connect, name: str, auth: str
) -> None:
    seen: list[Seen] = []
    sandbox = await start(app_hook=record_requests(seen))
    client = connect(sandbox, auth)
    call, method, route, param = ID_CALLS[name]
    for odd, encoded in ODD_IDS.items():
        seen.clear()
        with contextlib.suppress(ApiError):  # the store has no such record: only the request matters here
            await call(client, odd)
        [request] = seen
        assert (request.method, request.route, request.query) == (method, route, ""), (name, odd)
        assert request.match[param] == odd, (name, odd)
        # the path as sent: the id as one encoded segment in its place, every other part as the route has it
        expected = route.format_map({**request.match, param: encoded})
        assert request.path == expected, (name, odd)


def test_a_refused_price_reads_with_its_placeholders_filled_in_order() -> None:
    refused = PriceUpdateResult(
        message="No such entity with Customer Group = %customerGroup. Row ID: SKU = %SKU, Website ID: %websiteId, "
        "Customer Group: %customerGroup, Quantity: %qty.",
        parameters=["CR-1", "0", "Nobody", "1"],
    )
    assert refused.text() == (
        "No such entity with Customer Group = Nobody. Row ID: SKU = CR-1, Website ID: 0, Customer Group: Nobody, "
        "Quantity: 1."
    )
    price = PriceUpdateResult(
        message="Invalid attribute Price = %price. Row ID: SKU = %SKU, Website ID: %websiteId, Customer Group: "
        "%customerGroup, Quantity: %qty.",
        parameters=["-1", "CR-1", "0", "Wholesale", "1"],
    )
    assert price.text().startswith("Invalid attribute Price = -1. Row ID: SKU = CR-1, Website ID: 0, Customer Group: W")


# --- configurable products ------------------------------------------------------------------------------------


async def test_configurable_products_through_the_client(start: Start, connect: Connect) -> None:
    sandbox = await start()
    client = connect(sandbox)
    axes = [await client.attribute(code) for code in ("color", "size", "material")]
    assert [a["frontend_input"] for a in axes] == ["select", "select", "select"]
    axes = [(a["scope"], a["is_user_defined"]) for a in axes]
    assert axes == [("global", True), ("global", True), ("store", True)]  # material cannot be an axis
    colors = {o["label"]: int(o["value"]) for o in (await client.attribute("color"))["options"] if o["value"]}
    sizes = {o["label"]: int(o["value"]) for o in (await client.attribute("size"))["options"] if o["value"]}

    parent = "TEE/1 #x"  # a SKU with URL characters travels as one segment
    await client.save_product({"sku": parent, "name": "Tee", "attribute_set_id": 4, "type_id": "configurable"})
    wanted = ConfigurableOption(attribute_id=int((await client.attribute("color"))["attribute_id"]), label="Color",
                                values=[colors["Black"], colors["White"]])  # fmt: skip
    color_id = await client.add_configurable_option(parent, wanted)
    size_attribute = int((await client.attribute("size"))["attribute_id"])
    size_option = ConfigurableOption(attribute_id=size_attribute, label="Size", position=1, values=[sizes["S"]])
    size_id = await client.add_configurable_option(parent, size_option)
    assert await client.add_configurable_option(parent, wanted) == color_id  # re-sent: the same option

    for sku, c, s in (("TEE-1-BS", "Black", "S"), ("TEE-1-WS", "White", "S")):
        custom = [
            {"attribute_code": "color", "value": str(colors[c])},
            {"attribute_code": "size", "value": str(sizes[s])},
        ]
        await client.save_product(simple(sku, visibility=1, custom_attributes=custom))
        assert await client.link_child(parent, sku) is True
    with pytest.raises(PermanentApiError) as attached:
        await client.link_child(parent, "TEE-1-BS")
    assert attached.value.status == 400 and attached.value.message == "The product is already attached."

    options = await client.configurable_options(parent)
    assert [(o.id, o.label, o.position, o.values) for o in options] == [
        (color_id, "Color", 0, [colors["Black"], colors["White"]]),
        (size_id, "Size", 1, [sizes["S"]]),
    ]
    assert [p.sku for p in await client.configurable_children(parent)] == ["TEE-1-BS", "TEE-1-WS"]
    renamed = options[1].model_copy(update={"label": "Tee size"})
    assert await client.update_configurable_option(parent, renamed) == size_id
    assert (await client.configurable_options(parent))[1].label == "Tee size"

    assert await client.unlink_child(parent, "TEE-1-WS") is True
    with pytest.raises(NotFound):
        await client.unlink_child(parent, "TEE-1-WS")
    assert [p.sku for p in await client.configurable_children(parent)] == ["TEE-1-BS"]
    assert await client.delete_configurable_option(parent, size_id) is True
    assert [o.id for o in await client.configurable_options(parent)] == [color_id]
    assert await client.configurable_children(parent) == []  # deleting an option unlinks every child
    assert await client.configurable_children("TEE-1-BS") == []  # a simple product has none
    with pytest.raises(PermanentApiError) as simple_only:
        await client.configurable_options("TEE-1-BS")
    assert simple_only.value.message == 'This is implemented for the "TEE-1-BS" configurable product only.'
