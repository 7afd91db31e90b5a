"""The sandbox Magento over real HTTP, signed with a bearer token and with OAuth 1.0a, every answer checked
against Adobe's 2.4.9 schema (tests/data), and the behaviour a connector relies on (docs/magento-api-notes.md): merge
semantics, store scope, url keys, searchCriteria and its paging quirk, customers per website, the order state
machine and its signed callbacks, faults, stats, auth failures, MSI off, and a 100k seed."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, Client
from pydantic import SecretStr
from yarl import URL

from gateway.signatures import SignatureError, Verifier
from sandbox import catalog
from sandbox.faults import FaultRule
from sandbox.magento import MagentoSandboxConfig, create_app
from sandbox.magento.routing import STATE
from sandbox.magento.search_filters import predicate
from sandbox.magento.state import MagentoState
from tests.support.signing import MAGENTO_SECRET

SCHEMA_FILE = Path(__file__).parent / "data" / "magento-2.4.9-connector-subset.json"
REST_PREFIX = "/rest/{store_code}"
# Where Magento itself sends null for a property the 2.4.9 schema declares as a string (and, for some, as
# required): the sandbox sends what Magento sends, so these few properties also accept null.
NULLABLE = {
    ("catalog-inventory-data-stock-item-interface", "low_stock_date"),
    ("sales-data-order-payment-interface", "account_status"),
    ("sales-data-order-payment-interface", "cc_last4"),
    ("catalog-data-product-attribute-media-gallery-entry-interface", "label"),
    ("customer-data-region-interface", "region_code"),
    ("customer-data-region-interface", "region"),
}
# The schema types error `parameters` as a list of {resources, fieldName, fieldValue} objects; Magento sends a
# list of values for `%1` placeholders and an object keyed by name for `%fieldName` ones
# (docs/magento-api-notes.md item 8).
ERROR_PARAMETERS = {"type": ["array", "object"], "description": "list for %1, object for %name placeholders"}
PNG_RED = catalog.png_bytes((255, 0, 0))
PNG_BLUE = catalog.png_bytes((0, 0, 255))


# --- schema -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    doc = json.loads(SCHEMA_FILE.read_text())
    doc.get("info", {}).pop("description", None)  # a $ref to a Markdown file of the docs repo
    for definition, prop in NULLABLE:
        schema = doc["definitions"][definition]["properties"][prop]
        schema["type"] = [schema["type"], "null"]
    doc["definitions"]["error-parameters"] = ERROR_PARAMETERS
    return doc


def response_schema(swagger: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any] | None:
    """The swagger 2.0 response schema as a JSON schema: `#/definitions/...` refs resolve against the
    definitions carried along (swagger 2.0 schemas are JSON Schema draft 4)."""
    responses = swagger["paths"][template][method.lower()]["responses"]
    if status == 200 and "200" not in responses:
        return None  # a service returning void
    schema = (responses.get(str(status)) or responses["default"]).get("schema")
    return None if schema is None else {**schema, "definitions": swagger["definitions"]}


def validate(swagger: dict[str, Any], method: str, template: str, status: int, body: Any) -> None:
    schema = response_schema(swagger, method, template, status)
    if schema is None:
        assert body == [], f"{method} {template}: a void answer is Magento's []"  # the service returns nothing
        return
    jsonschema.Draft4Validator(schema).validate(body)


def validate_error(swagger: dict[str, Any], body: Any) -> None:
    schema = {"$ref": "#/definitions/error-response", "definitions": swagger["definitions"]}
    jsonschema.Draft4Validator(schema).validate(body)


# --- the client side ----------------------------------------------------------------------------------------


def oauth_header(config: MagentoSandboxConfig, method: str, url: str, method_name: str = SIGNATURE_HMAC_SHA256) -> str:
    client = Client(
        config.consumer_key.get_secret_value(),
        client_secret=config.consumer_secret.get_secret_value(),
        resource_owner_key=config.access_token.get_secret_value(),
        resource_owner_secret=config.access_token_secret.get_secret_value(),
        signature_method=method_name,
    )
    _, headers, _ = client.sign(url, http_method=method)
    return headers["Authorization"]


def sc(*groups: Any, sort: Iterable[tuple[str, str]] = (), size: int | None = None, page: int | None = None) -> dict:
    """searchCriteria query parameters. A group is one (field, value[, condition]) or a list of them (ORed)."""
    params: dict[str, str] = {}
    for g, group in enumerate(groups):
        filters = group if isinstance(group, list) else [group]
        for f, flt in enumerate(filters):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params[f"{prefix}[field]"] = flt[0]
            params[f"{prefix}[value]"] = str(flt[1])
            if len(flt) > 2:
                params[f"{prefix}[condition_type]"] = flt[2]
    for n, (field, direction) in enumerate(sort):
        params[f"searchCriteria[sortOrders][{n}][field]"] = field
        params[f"searchCriteria[sortOrders][{n}][direction]"] = direction
    if size is not None:
        params["searchCriteria[pageSize]"] = str(size)
    if page is not None:
        params["searchCriteria[currentPage]"] = str(page)
    return params or {"searchCriteria": ""}


class Api:
    """A Magento REST client for the tests: signs, sends, checks the status, validates the body."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        swagger: dict[str, Any],
        config: MagentoSandboxConfig,
        app: web.Application,
        auth: str = "bearer",
        seen: set[tuple[str, str]] | None = None,
    ) -> None:
        self.session, self.base, self.swagger = session, base, swagger
        self.config, self.app, self.auth = config, app, auth
        self.seen = seen if seen is not None else set()

    @property
    def state(self) -> MagentoState:
        return self.app[STATE]

    def as_(self, auth: str) -> Api:
        return Api(self.session, self.base, self.swagger, self.config, self.app, auth, self.seen)

    def url(self, template: str, store: str | None, params: dict[str, str] | None, path: dict[str, Any]) -> URL:
        segment = template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        url = URL(f"{self.base}/rest{'' if store is None else '/' + store}{segment}", encoded=True)
        return url.update_query(params) if params else url

    def auth_headers(self, method: str, url: URL) -> dict[str, str]:
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {self.config.effective_bearer()}"}
        if self.auth == "oauth1":
            return {"Authorization": oauth_header(self.config, method, str(url))}
        if self.auth == "oauth1-sha1":
            return {"Authorization": oauth_header(self.config, method, str(url), SIGNATURE_HMAC_SHA1)}
        return {}

    async def send(
        self, method: str, url: URL, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        all_headers = {"Accept": "application/json", **self.auth_headers(method, url), **(headers or {})}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            all_headers["Content-Type"] = "application/json"
        async with self.session.request(method, url, data=data, headers=all_headers) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if raw else None), resp

    async def call(
        self,
        method: str,
        template: str,
        *,
        store: str | None = "default",
        params: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        status: int = 200,
        **path: Any,
    ) -> Any:
        url = self.url(template, store, params, path)
        got, payload, _ = await self.send(method, url, body, headers)
        assert got == status, f"{method} {url}: {got} {payload}"
        validate(self.swagger, method, template, got, payload)
        if got == 200:
            self.seen.add((method, template))
        return payload

    async def get(self, template: str, **kw: Any) -> Any:
        return await self.call("GET", template, **kw)

    async def post(self, template: str, **kw: Any) -> Any:
        return await self.call("POST", template, **kw)

    async def put(self, template: str, **kw: Any) -> Any:
        return await self.call("PUT", template, **kw)

    async def delete(self, template: str, **kw: Any) -> Any:
        return await self.call("DELETE", template, **kw)

    async def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, f"{self.base}/_sandbox/{path}", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


class Receiver:
    """The gateway's end of the callbacks: verifies each signature with the gateway's own verifier."""

    def __init__(self) -> None:
        self.verifier = Verifier.from_secrets([MAGENTO_SECRET])
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.verifier.verify(request.headers, body)
        except SignatureError:
            self.refused += 1
            return web.Response(status=401)
        self.events.append(orjson.loads(body))
        return web.json_response({"status": "queued"}, status=202)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["type"] == event_type]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/magento", rec.handle)
    server = TestServer(app)
    await server.start_server()
    rec.url = str(server.make_url("/webhooks/magento"))
    yield rec
    await server.close()


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start(receiver: Receiver, swagger: dict[str, Any]) -> AsyncIterator[Start]:
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def run(auth: str = "bearer", **overrides: Any) -> Api:
        values: dict[str, Any] = {"callback_url": receiver.url, "callback_secret": SecretStr(MAGENTO_SECRET)}
        values.update(overrides)
        config = MagentoSandboxConfig(**values)
        server = TestServer(create_app(config))
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Api(session, str(server.make_url("")).rstrip("/"), swagger, config, server.app, auth)

    yield run
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def api(start: Start) -> Api:
    return await start()


def image(data: bytes = PNG_RED, name: str = "cr-000001.png", mime: str = "image/png", **extra: Any) -> dict:
    entry = {
        "media_type": "image",
        "label": "Front",
        "position": 1,
        "disabled": False,
        "types": ["image", "small_image", "thumbnail"],
        "content": {"base64_encoded_data": base64.b64encode(data).decode(), "type": mime, "name": name},
    }
    entry.update(extra)
    return entry


def custom(product: dict[str, Any], code: str) -> Any:
    return next((a["value"] for a in product.get("custom_attributes", []) if a["attribute_code"] == code), None)


def simple(sku: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    product = {"sku": sku, "name": name or f"Product {sku}", "price": 10, "attribute_set_id": 4, "type_id": "simple"}
    product.update(extra)
    return {"product": product}


async def wait_until(predicate: Callable[[], Any], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


ADDRESS_TX = {
    "firstname": "Ava",
    "lastname": "Smith",
    "street": ["1 Congress Ave"],
    "city": "Austin",
    "postcode": "78701",
    "country_id": "US",
    "region": {"region_code": "TX", "region": "Texas", "region_id": 57},
    "region_id": 57,
    "telephone": "+1-512-555-0100",
    "default_billing": True,
    "default_shipping": True,
}


# --- every route, both ways of signing ---------------------------------------------------------------------


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if canonical.startswith(REST_PREFIX + "/V1/") and route.method != "HEAD":
            out.add((route.method, canonical[len(REST_PREFIX) :]))
    return out


@pytest.mark.parametrize("auth", ["bearer", "oauth1"])
async def test_every_route_answers_in_the_2_4_9_shapes(start: Start, auth: str) -> None:
    api = await start(auth=auth)
    served = served_routes(api.app)
    assert not {(m, t) for m, t in served if t not in api.swagger["paths"]}, "a route Magento does not have"

    for template in ("/V1/store/websites", "/V1/store/storeGroups", "/V1/store/storeViews", "/V1/store/storeConfigs"):
        await api.get(template)
    sets = await api.get("/V1/products/attribute-sets/sets/list", params=sc(size=10))
    assert {s["attribute_set_name"] for s in sets["items"]} == set(catalog.MAGENTO_ATTRIBUTE_SETS)
    assert (await api.get("/V1/products/attribute-sets/{attributeSetId}", attributeSetId=4))["attribute_set_id"] == 4
    await api.get("/V1/products/attributes", params=sc(("is_user_defined", "1")))
    await api.get("/V1/products/attributes/{attributeCode}", attributeCode="color")
    await api.get("/V1/products/attributes/{attributeCode}/options", attributeCode="color")
    option_id = await api.post(
        "/V1/products/attributes/{attributeCode}/options", attributeCode="color", body={"option": {"label": "Teal"}}
    )

    tree = await api.get("/V1/categories", store="all")
    assert tree["id"] == 1 and tree["children_data"][0]["id"] == 2
    category = await api.post(
        "/V1/categories", store="all", body={"category": {"parent_id": 2, "name": "Apparel", "is_active": True}}
    )
    await api.get("/V1/categories/list", params=sc(("parent_id", 2)))
    await api.get("/V1/categories/{categoryId}", categoryId=category["id"])
    await api.put("/V1/categories/{id}", store="all", id=category["id"], body={"category": {"name": "Clothing"}})
    other = await api.post("/V1/categories", store="all", body={"category": {"parent_id": 2, "name": "Outdoor"}})
    moved = await api.put("/V1/categories/{categoryId}/move", categoryId=other["id"], body={"parentId": category["id"]})
    assert moved is True

    created = await api.post(
        "/V1/products",
        store="all",
        body=simple(
            "CR-900001",
            custom_attributes=[{"attribute_code": "color", "value": option_id}],
            extension_attributes={"stock_item": {"qty": 7, "is_in_stock": True}},
        ),
    )
    assert created["extension_attributes"]["stock_item"]["qty"] == 7
    await api.get("/V1/products", params=sc(("sku", "CR-9%", "like"), size=5))
    await api.get("/V1/products/{sku}", sku="CR-900001")
    await api.put("/V1/products/{sku}", store="all", sku="CR-900001", body={"product": {"price": 12.5}})
    entry_id = await api.post("/V1/products/{sku}/media", store="all", sku="CR-900001", body={"entry": image()})
    await api.get("/V1/products/{sku}/media", sku="CR-900001")
    await api.get("/V1/products/{sku}/media/{entryId}", sku="CR-900001", entryId=entry_id)
    assert (
        await api.put(
            "/V1/products/{sku}/media/{entryId}",
            store="all",
            sku="CR-900001",
            entryId=entry_id,
            body={"entry": {"id": entry_id, "label": "Back", "position": 2, "disabled": False, "types": ["image"]}},
        )
        == entry_id
    )
    assert (
        await api.delete("/V1/products/{sku}/media/{entryId}", store="all", sku="CR-900001", entryId=entry_id) is True
    )

    link = {"productLink": {"sku": "CR-900001", "position": 3, "category_id": str(category["id"])}}
    assert await api.post("/V1/categories/{categoryId}/products", categoryId=category["id"], body=link) is True
    assert await api.put("/V1/categories/{categoryId}/products", categoryId=category["id"], body=link) is True
    links = await api.get("/V1/categories/{categoryId}/products", categoryId=category["id"])
    assert links == [{"sku": "CR-900001", "position": 3, "category_id": str(category["id"])}]
    assert (
        await api.delete("/V1/categories/{categoryId}/products/{sku}", categoryId=category["id"], sku="CR-900001")
        is True
    )

    wholesale = {"price": 9.5, "price_type": "fixed", "website_id": 0, "sku": "CR-900001", "quantity": 1}
    assert (
        await api.post("/V1/products/tier-prices", body={"prices": [{**wholesale, "customer_group": "Wholesale"}]})
        == []
    )
    refused = await api.post("/V1/products/tier-prices", body={"prices": [{**wholesale, "customer_group": "Nobody"}]})
    assert refused == [
        {
            "message": "No such entity with Customer Group = %customerGroup. Row ID: SKU = %SKU, Website ID: "
            "%websiteId, Customer Group: %customerGroup, Quantity: %qty.",
            "parameters": ["CR-900001", "0", "Nobody", "1"],
        }
    ]
    info = await api.post("/V1/products/tier-prices-information", body={"skus": ["CR-900001"]})
    assert info == [{**wholesale, "customer_group": "Wholesale"}]
    gone = {"prices": [{**wholesale, "customer_group": "wholesale"}]}  # codes match whatever their case
    assert await api.post("/V1/products/tier-prices-delete", body=gone) == []
    assert await api.post("/V1/products/tier-prices-information", body={"skus": ["CR-900001"]}) == []
    assert (await api.get("/V1/customerGroups/{id}", id=2))["code"] == "Wholesale"

    await api.get("/V1/inventory/sources")
    items = {"sourceItems": [{"sku": "CR-900001", "source_code": "default", "quantity": 4, "status": 1}]}
    assert await api.post("/V1/inventory/source-items", body=items) == []
    found = await api.get("/V1/inventory/source-items", params=sc(("sku", "CR-900001")))
    assert found["items"] == [{"sku": "CR-900001", "source_code": "default", "quantity": 4, "status": 1}]
    stock = await api.get("/V1/stockItems/{productSku}", productSku="CR-900001")
    item_id = await api.put(
        "/V1/products/{productSku}/stockItems/{itemId}",
        productSku="CR-900001",
        itemId=stock["item_id"],
        body={"stockItem": {"qty": 9, "is_in_stock": True}},
    )
    assert item_id == stock["item_id"]

    customer = await api.post(
        "/V1/customers",
        body={
            "customer": {"email": "ava@example.com", "firstname": "Ava", "lastname": "Smith", "addresses": [ADDRESS_TX]}
        },
    )
    await api.get("/V1/customers/search", params=sc(("email", "ava@example.com")))
    await api.get("/V1/customers/{customerId}", customerId=customer["id"])
    await api.put(
        "/V1/customers/{customerId}",
        customerId=customer["id"],
        body={"customer": {"email": "ava@example.com", "firstname": "Ava", "lastname": "Jones", "website_id": 1}},
    )
    assert any(c["id"] == "US" for c in await api.get("/V1/directory/countries"))
    texas = await api.get("/V1/directory/countries/{countryId}", countryId="US")
    assert {"id": "57", "code": "TX", "name": "Texas"} in texas["available_regions"]

    order_entity = {"customer_id": customer["id"], "items": [{"sku": "CR-900001", "qty_ordered": 2, "price": 12.5}]}
    order = await api.post("/V1/orders", body={"entity": order_entity})
    await api.get("/V1/orders", params=sc(("state", "new")))
    await api.get("/V1/orders/{id}", id=order["entity_id"])
    assert isinstance(await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body={}), int)
    shipment_id = await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body={})
    assert isinstance(shipment_id, int)
    listed = await api.get("/V1/shipments", params=sc(("order_id", str(order["entity_id"]), "in")))
    assert [s["entity_id"] for s in listed["items"]] == [shipment_id]
    shipment = await api.get("/V1/shipment/{id}", id=shipment_id)
    assert shipment["items"][0]["sku"] == "CR-900001" and shipment["extension_attributes"]["source_code"] == "default"
    salable = "/V1/inventory/get-product-salable-quantity/{sku}/{stockId}"
    assert await api.get(salable, sku="CR-900001", stockId=1) == 7
    assert await api.post("/V1/orders/{id}/cancel", id=order["entity_id"]) is False  # complete
    second = await api.post(
        "/V1/orders", body={"entity": {**order_entity, "items": [{"sku": "CR-900001", "price": 1}]}}
    )
    assert await api.get(salable, sku="CR-900001", stockId=1) == 6
    assert await api.post("/V1/orders/{id}/cancel", id=second["entity_id"]) is True
    assert await api.get(salable, sku="CR-900001", stockId=1) == 7

    # a configurable product: an option on color, a child, and back (rules: test_sandbox_magento_configurable)
    parent = {"sku": "CR-TEE", "name": "Tee", "attribute_set_id": 4, "type_id": "configurable"}
    await api.post("/V1/products", store="all", body={"product": parent})
    values = [{"value_index": int(option_id)}]
    color = {"attribute_id": str(api.state.attributes["color"].id), "label": "Color", "values": values}
    configurable = "/V1/configurable-products/{sku}"
    color_id = await api.post(configurable + "/options", sku="CR-TEE", body={"option": color})
    assert await api.post(configurable + "/child", sku="CR-TEE", body={"childSku": "CR-900001"}) is True
    assert [p["sku"] for p in await api.get(configurable + "/children", sku="CR-TEE")] == ["CR-900001"]
    options = await api.get(configurable + "/options/all", sku="CR-TEE")
    assert options == [await api.get(configurable + "/options/{id}", sku="CR-TEE", id=color_id)]
    assert options[0]["values"] == [{"value_index": int(option_id)}]
    body = {"option": {"label": "Colour"}}
    assert await api.put(configurable + "/options/{id}", sku="CR-TEE", id=color_id, body=body) == color_id
    assert await api.delete(configurable + "/children/{childSku}", sku="CR-TEE", childSku="CR-900001") is True
    assert await api.delete(configurable + "/options/{id}", sku="CR-TEE", id=color_id) is True

    assert await api.delete("/V1/products/{sku}", store="all", sku="CR-900001") is True
    await api.get("/V1/products/{sku}", sku="CR-900001", status=404)
    assert (await api.get("/V1/inventory/source-items", params=sc(("sku", "CR-900001"))))["total_count"] == 0
    assert served - api.seen == set(), "routes served but not exercised"


async def test_the_default_store_is_also_served_without_a_code(api: Api) -> None:
    views = await api.get("/V1/store/storeViews", store=None)
    assert [v["code"] for v in views] == ["admin", "default", "fr", "outlet"]
    created = await api.post("/V1/products", store=None, body=simple("NO-CODE"))
    assert created["extension_attributes"]["website_ids"] == [1]


async def test_unknown_routes_and_store_codes_are_magentos_404(api: Api) -> None:
    for path in ("/rest/nowhere/V1/products/X", "/rest/default/V1/nothing-here", "/rest/default/V2/products"):
        got, body, _ = await api.send("GET", URL(api.base + path))
        assert got == 404 and body == {"message": "Request does not match any route."}, (path, body)
        validate_error(api.swagger, body)
    got, body, _ = await api.send("PATCH", URL(api.base + "/rest/default/V1/products/X"))
    assert got == 404 and body["message"] == "Request does not match any route."
    missing = await api.get("/V1/products/{sku}", sku="NOPE", status=404)
    assert missing == {"message": "The product that was requested doesn't exist. Verify the product and try again."}


# --- authentication ----------------------------------------------------------------------------------------


async def test_requests_without_valid_credentials_are_refused_like_magento(start: Start) -> None:
    api = await start()
    product_url = api.url("/V1/products/{sku}", "default", None, {"sku": "X"})
    refused = {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "Magento_Catalog::products"},
    }
    for auth, extra in (("none", {}), ("none", {"Authorization": "Bearer wrong-token"})):
        got, body, _ = await api.as_(auth).send("GET", product_url, headers=extra)
        assert (got, body) == (401, refused)
        validate_error(api.swagger, body)

    # a signature made with the wrong consumer secret, and a signed URL whose query was changed afterwards
    wrong = api.config.model_copy(update={"consumer_secret": SecretStr("not-the-secret")})
    got, body, _ = await api.as_("none").send(
        "GET", product_url, headers={"Authorization": oauth_header(wrong, "GET", str(product_url))}
    )
    assert (got, body["message"]) == (401, "The signature is invalid. Verify and try again.")
    list_url = api.url("/V1/products", "default", sc(size=1), {})
    header = oauth_header(api.config, "GET", str(list_url))
    tampered = list_url.update_query({"searchCriteria[pageSize]": "500"})
    got, body, _ = await api.as_("none").send("GET", tampered, headers={"Authorization": header})
    assert (got, body["message"]) == (401, "The signature is invalid. Verify and try again.")
    # the genuine request goes through once; its nonce cannot be replayed
    got, _, _ = await api.as_("none").send("GET", list_url, headers={"Authorization": header})
    assert got == 200
    got, body, _ = await api.as_("none").send("GET", list_url, headers={"Authorization": header})
    assert got == 401 and body == {
        "message": "The nonce is already being used by the consumer with ID %1.",
        "parameters": [1],
    }
    # HMAC-SHA1 is accepted as well
    assert (await api.as_("oauth1-sha1").get("/V1/store/websites"))[0]["code"] == "admin"

    # creating an account is anonymous in Magento; a bad OAuth header is refused even there
    anonymous = {"customer": {"email": "anon@example.com", "firstname": "A", "lastname": "Non"}}
    made = await api.as_("none").post("/V1/customers", body=anonymous)
    assert (made["email"], made["firstname"]) == ("anon@example.com", "A") and isinstance(made["id"], int)
    customers_url = api.url("/V1/customers", "default", None, {})
    got, _, _ = await api.as_("none").send(
        "POST", customers_url, anonymous, {"Authorization": oauth_header(wrong, "POST", str(customers_url))}
    )
    assert got == 401


async def test_bearer_can_be_turned_off_like_2_4_4(start: Start) -> None:
    api = await start(bearer_enabled=False)
    got, body, _ = await api.send("GET", api.url("/V1/store/storeViews", "default", None, {}))
    assert got == 401 and body["parameters"] == {"resources": "Magento_Backend::store"}
    assert [v["code"] for v in await api.as_("oauth1").get("/V1/store/storeViews")][:2] == ["admin", "default"]


# --- products -----------------------------------------------------------------------------------------------


async def test_product_save_is_an_upsert_that_merges_the_keys_sent(api: Api) -> None:
    color = api.state.attributes["color"]
    red = next(str(o.id) for o in color.options if o.label == "Red")
    created = await api.post(
        "/V1/products",
        store="all",
        body=simple(
            "MRG-1",
            "Blue Tee",
            custom_attributes=[
                {"attribute_code": "description", "value": "<p>Soft</p>"},
                {"attribute_code": "meta_title", "value": "Blue Tee | Shop"},
                {"attribute_code": "color", "value": red},
                {"attribute_code": "brand", "value": "Contoso"},
                {"attribute_code": "not_an_attribute", "value": "dropped"},
            ],
        ),
    )
    assert custom(created, "url_key") == "blue-tee"  # derived from the name
    assert custom(created, "not_an_attribute") is None  # unknown codes are ignored
    assert custom(created, "color") == red and created["status"] == 1 and created["visibility"] == 4

    partial = await api.put("/V1/products/{sku}", store="all", sku="MRG-1", body={"product": {"price": 20}})
    assert partial["price"] == 20 and partial["name"] == "Blue Tee"
    assert custom(partial, "description") == "<p>Soft</p>" and custom(partial, "meta_title") == "Blue Tee | Shop"

    merged = await api.put(
        "/V1/products/{sku}",
        store="all",
        sku="MRG-1",
        body={"product": {"sku": "MRG-1", "custom_attributes": [{"attribute_code": "meta_title", "value": "New"}]}},
    )
    assert custom(merged, "meta_title") == "New" and custom(merged, "description") == "<p>Soft</p>"
    assert custom(merged, "color") == red and merged["price"] == 20

    again = await api.post("/V1/products", store="all", body={"product": {"sku": "mrg-1", "weight": 1.5}})
    assert again["id"] == created["id"] and again["weight"] == 1.5 and again["sku"] == "MRG-1"
    assert (await api.get("/V1/products/{sku}", sku="mrg-1"))["id"] == created["id"]  # SKUs ignore case

    no_name = await api.post("/V1/products", store="all", body={"product": {"sku": "MRG-2", "price": 1}}, status=400)
    assert no_name == {
        "message": 'The "%1" attribute value is empty. Set the attribute and try again.',
        "parameters": ["Product Name"],
    }
    bad_price = await api.put("/V1/products/{sku}", sku="MRG-1", body={"product": {"price": "cheap"}}, status=400)
    assert bad_price["parameters"] == {"value": "cheap", "type": "float"}
    missing = await api.post("/V1/products", body={"sku": "MRG-3"}, status=400)
    assert missing == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "product"},
    }
    set_missing = await api.post("/V1/products", body=simple("MRG-4", attribute_set_id=99), status=400)
    assert set_missing["parameters"] == ["Invalid attribute set entity type"]


async def test_a_category_moves_with_its_subtree_and_keeps_its_products(api: Api) -> None:
    async def create(name: str, parent: int) -> int:
        body = {"category": {"parent_id": parent, "name": name}}
        return int((await api.post("/V1/categories", store="all", body=body))["id"])

    shoes, gear = await create("Move Shoes", 2), await create("Move Gear", 2)
    running = await create("Move Running", shoes)
    trail = await create("Move Trail", running)
    first, second = await create("Move First", gear), await create("Move Second", gear)
    await api.post("/V1/products", store="all", body=simple("MOV-1"))
    link = {"productLink": {"sku": "MOV-1", "position": 4, "category_id": str(running)}}
    await api.post("/V1/categories/{categoryId}/products", categoryId=running, body=link)

    assert await api.put("/V1/categories/{categoryId}/move", categoryId=running, body={"parentId": gear}) is True
    moved = await api.get("/V1/categories/{categoryId}", categoryId=running)
    assert (moved["parent_id"], moved["level"], moved["position"]) == (gear, 3, 3)  # last without afterId
    assert moved["path"] == f"1/2/{gear}/{running}"
    child = await api.get("/V1/categories/{categoryId}", categoryId=trail)
    assert (child["path"], child["level"]) == (f"1/2/{gear}/{running}/{trail}", 4)
    assert (await api.get("/V1/categories/{categoryId}", categoryId=shoes))["children"] == ""
    assert await api.get("/V1/categories/{categoryId}/products", categoryId=running) == [
        {"sku": "MOV-1", "position": 4, "category_id": str(running)}
    ]

    body = {"parentId": gear, "afterId": first}
    assert await api.put("/V1/categories/{categoryId}/move", categoryId=running, body=body) is True
    positions = {c: (await api.get("/V1/categories/{categoryId}", categoryId=c))["position"] for c in (first, second)}
    assert (positions, (await api.get("/V1/categories/{categoryId}", categoryId=running))["position"]) == (
        {first: 1, second: 3},
        2,
    )

    # a department becomes a sub-category and back: level 2 -> 3 -> 2 with its subtree
    await api.put("/V1/categories/{categoryId}/move", categoryId=gear, body={"parentId": shoes})
    assert (await api.get("/V1/categories/{categoryId}", categoryId=trail))["level"] == 5
    await api.put("/V1/categories/{categoryId}/move", categoryId=gear, body={"parentId": 2})
    back = await api.get("/V1/categories/{categoryId}", categoryId=trail)
    assert (back["path"], back["level"]) == (f"1/2/{gear}/{running}/{trail}", 4)

    missing = await api.put("/V1/categories/{categoryId}/move", categoryId=running, body={"parentId": 999}, status=404)
    assert missing == {
        "message": "No such entity with %fieldName = %fieldValue",
        "parameters": {"fieldName": "id", "fieldValue": 999},
    }
    for under in (running, trail):
        refused = await api.put(
            "/V1/categories/{categoryId}/move", categoryId=running, body={"parentId": under}, status=400
        )
        assert refused == {"message": "Operation do not allow to move a parent category to any of children category"}
    root = await api.put("/V1/categories/{categoryId}/move", categoryId=1, body={"parentId": 2}, status=400)
    assert root["message"].startswith("Operation do not allow")
    await api.put("/V1/categories/{categoryId}/move", categoryId=running, body={}, status=400)


async def test_category_links_are_additive_and_an_empty_list_clears_them(api: Api) -> None:
    ids = []
    for name in ("Links A", "Links B"):
        ids.append(
            (await api.post("/V1/categories", store="all", body={"category": {"parent_id": 2, "name": name}}))["id"]
        )
    a, b = ids

    def links(product: dict[str, Any]) -> dict[str, int]:
        return {
            link["category_id"]: link["position"] for link in product["extension_attributes"].get("category_links", [])
        }

    def with_links(*pairs: tuple[int, int]) -> dict[str, Any]:
        return {"extension_attributes": {"category_links": [{"category_id": str(c), "position": p} for c, p in pairs]}}

    created = await api.post("/V1/products", store="all", body=simple("LNK-1", **with_links((a, 0))))
    assert links(created) == {str(a): 0}
    added = await api.put("/V1/products/{sku}", store="all", sku="LNK-1", body={"product": with_links((b, 1))})
    assert links(added) == {str(a): 0, str(b): 1}  # A was left out and stays
    moved = await api.put("/V1/products/{sku}", store="all", sku="LNK-1", body={"product": with_links((a, 5))})
    assert links(moved) == {str(a): 5, str(b): 1}
    untouched = await api.put("/V1/products/{sku}", store="all", sku="LNK-1", body={"product": {"price": 3}})
    assert links(untouched) == {str(a): 5, str(b): 1}
    tree = await api.get("/V1/categories", params={"rootCategoryId": "2", "depth": "1"})
    assert {c["id"]: c["product_count"] for c in tree["children_data"]} == {a: 1, b: 1}
    assert await api.get("/V1/categories/{categoryId}/products", categoryId=a) == [
        {"sku": "LNK-1", "position": 5, "category_id": str(a)}
    ]
    cleared = await api.put(
        "/V1/products/{sku}",
        store="all",
        sku="LNK-1",
        body={"product": {"extension_attributes": {"category_links": []}}},
    )
    assert links(cleared) == {}
    assert await api.get("/V1/categories/{categoryId}/products", categoryId=b) == []
    refused = await api.delete("/V1/categories/{categoryId}/products/{sku}", categoryId=a, sku="LNK-1", status=400)
    assert refused == {"message": "The category doesn't contain the specified product."}
    unknown = await api.put("/V1/products/{sku}", sku="LNK-1", body={"product": with_links((999, 0))}, status=400)
    assert unknown["parameters"] == ["LNK-1", 0, 999]


async def test_media_gallery_upload_roles_and_wipe(api: Api) -> None:
    await api.post("/V1/products", store="all", body=simple("CR-000001", "Media Tee"))
    first = await api.post("/V1/products/{sku}/media", store="all", sku="CR-000001", body={"entry": image()})
    second = await api.post(
        "/V1/products/{sku}/media",
        store="all",
        sku="CR-000001",
        body={"entry": image(PNG_BLUE, types=["image"], position=2, label="Side")},
    )
    assert isinstance(first, int) and second > first
    gallery = {e["id"]: e for e in await api.get("/V1/products/{sku}/media", sku="CR-000001")}
    assert gallery[first]["file"] == "/c/r/cr-000001.png" and gallery[second]["file"] == "/c/r/cr-000001_1.png"
    assert gallery[first]["types"] == ["small_image", "thumbnail"]  # one image per role: the newer took "image"
    assert gallery[second]["types"] == ["image"]
    product = await api.get("/V1/products/{sku}", sku="CR-000001")
    assert custom(product, "image") == "/c/r/cr-000001_1.png" and custom(product, "thumbnail") == "/c/r/cr-000001.png"

    for content, message in (
        ({"base64_encoded_data": "***", "type": "image/png", "name": "x.png"}, "must be valid base64"),
        ({"base64_encoded_data": base64.b64encode(b"not an image").decode(), "type": "image/png", "name": "x.png"},
         "must be valid base64"),
        ({"base64_encoded_data": base64.b64encode(PNG_RED).decode(), "type": "image/jpeg", "name": "x.jpg"},
         "MIME type is not valid"),
        ({"base64_encoded_data": base64.b64encode(PNG_RED).decode(), "type": "image/png", "name": "a/b.png"},
         "forbidden characters"),
    ):  # fmt: skip
        refused = await api.post(
            "/V1/products/{sku}/media", sku="CR-000001", body={"entry": {**image(), "content": content}}, status=400
        )
        assert message in refused["message"]

    # a save that lists one entry keeps it and drops the other; a new entry with content is added
    listed = await api.put(
        "/V1/products/{sku}",
        store="all",
        sku="CR-000001",
        body={"product": {"media_gallery_entries": [{**gallery[first], "label": "Kept"}, image(name="cr-000001.png")]}},
    )
    entries = listed["media_gallery_entries"]
    assert [e["label"] for e in entries if e["id"] == first] == ["Kept"] and second not in {e["id"] for e in entries}
    assert len(entries) == 2
    wiped = await api.put(
        "/V1/products/{sku}", store="all", sku="CR-000001", body={"product": {"media_gallery_entries": []}}
    )
    assert wiped["media_gallery_entries"] == [] and custom(wiped, "image") is None
    assert await api.get("/V1/products/{sku}/media", sku="CR-000001") == []
    gone = await api.delete("/V1/products/{sku}/media/{entryId}", sku="CR-000001", entryId=first, status=404)
    assert gone == {"message": "No image with the provided ID was found. Verify the ID and try again."}


async def test_url_key_collisions_are_magentos_400(api: Api) -> None:
    await api.post("/V1/products", store="all", body=simple("URL-1", "Classic Tee"))
    clash = await api.post("/V1/products", store="all", body=simple("URL-2", "Classic Tee"), status=400)
    assert clash == {"message": "URL key for specified store already exists."}
    explicit = simple(
        "URL-2", "Classic Tee", custom_attributes=[{"attribute_code": "url_key", "value": "Classic Tee 2"}]
    )
    assert custom(await api.post("/V1/products", store="all", body=explicit), "url_key") == "classic-tee-2"
    renamed = {"product": {"custom_attributes": [{"attribute_code": "url_key", "value": "classic-tee"}]}}
    await api.put("/V1/products/{sku}", store="all", sku="URL-2", body=renamed, status=400)
    # products on different websites share no store view, so no URL can clash
    await api.post("/V1/products", store="default", body=simple("URL-3", "Solo Lamp"))
    await api.post("/V1/products", store="outlet", body=simple("URL-4", "Solo Lamp"))

    def category(name: str, parent: int) -> dict[str, Any]:
        return {"category": {"parent_id": parent, "name": name}}

    apparel = await api.post("/V1/categories", store="all", body=category("Apparel", 2))
    footwear = await api.post("/V1/categories", store="all", body=category("Footwear", 2))
    await api.post("/V1/categories", store="all", body=category("Boots", apparel["id"]))
    await api.post("/V1/categories", store="all", body=category("Boots", footwear["id"]))  # another URL path
    twin = await api.post("/V1/categories", store="all", body=category("Boots", apparel["id"]), status=400)
    assert twin == {"message": "URL key for specified store already exists."}
    assert await api.post("/V1/categories", body={"category": {"parent_id": 2}}, status=400) == {
        "message": 'The "%1" attribute is required. Enter and try again.',
        "parameters": ["Name"],
    }


async def test_store_scope_overrides_versus_global_values(api: Api) -> None:
    assert (await api.post("/V1/products", store="all", body=simple("SCP-1", "Tee")))["extension_attributes"][
        "website_ids"
    ] == [1, 2]
    assert (await api.post("/V1/products", store="outlet", body=simple("SCP-2", "Outlet Tee")))["extension_attributes"][
        "website_ids"
    ] == [2]

    french = {
        "product": {
            "name": "T-shirt",
            "price": 99,
            "custom_attributes": [{"attribute_code": "description", "value": "<p>Doux</p>"}],
        }
    }
    saved = await api.put("/V1/products/{sku}", store="fr", sku="SCP-1", body=french)
    assert saved["name"] == "T-shirt"
    in_fr = await api.get("/V1/products/{sku}", store="fr", sku="SCP-1")
    in_all = await api.get("/V1/products/{sku}", store="all", sku="SCP-1")
    in_default = await api.get("/V1/products/{sku}", store="default", sku="SCP-1")
    assert (in_fr["name"], custom(in_fr, "description")) == ("T-shirt", "<p>Doux</p>")
    assert (in_all["name"], custom(in_all, "description")) == ("Tee", None)
    assert in_default["name"] == "Tee"
    assert in_fr["price"] == in_all["price"] == in_default["price"] == 99  # price has global scope

    # a global write does not reach the view that has its own value
    await api.put("/V1/products/{sku}", store="all", sku="SCP-1", body={"product": {"name": "Tee 2"}})
    assert (await api.get("/V1/products/{sku}", store="default", sku="SCP-1"))["name"] == "Tee 2"
    assert (await api.get("/V1/products/{sku}", store="fr", sku="SCP-1"))["name"] == "T-shirt"
    # through `default` (or /rest/V1) an update writes the default view's override
    await api.put("/V1/products/{sku}", store=None, sku="SCP-1", body={"product": {"name": "Default Tee"}})
    assert (await api.get("/V1/products/{sku}", store="all", sku="SCP-1"))["name"] == "Tee 2"
    assert (await api.get("/V1/products/{sku}", store="default", sku="SCP-1"))["name"] == "Default Tee"
    # status is website-scoped: both views of website 1 change, the outlet's does not
    await api.put("/V1/products/{sku}", store="fr", sku="SCP-1", body={"product": {"status": 2}})
    statuses = [
        (await api.get("/V1/products/{sku}", store=s, sku="SCP-1"))["status"] for s in ("fr", "default", "outlet")
    ]
    assert statuses == [2, 2, 1]
    # searches run in the store's values
    french_hit = sc(("name", "T-shirt"))
    assert (await api.get("/V1/products", store="fr", params=french_hit))["total_count"] == 1
    assert (await api.get("/V1/products", store="all", params=french_hit))["total_count"] == 0


# --- searchCriteria ------------------------------------------------------------------------------------------


async def test_search_criteria_like_magento(start: Start) -> None:
    api = await start(products=30)
    specs = [catalog.product(i) for i in range(1, 31)]

    async def skus(params: dict[str, str], store: str = "all") -> list[str]:
        return [p["sku"] for p in (await api.get("/V1/products", store=store, params=params))["items"]]

    either = sc([("sku", "CR-000003"), ("sku", "cr-000007")])  # OR inside a group, case-insensitive
    assert await skus(either) == ["CR-000003", "CR-000007"]
    both = sc(("sku", "CR-00001%", "like"), ("status", 1))  # AND across groups
    assert await skus(both) == [s.sku for s in specs[9:19] if s.web_active]
    assert await skus(sc(("sku", "CR-000004,cr-000002,CR-999999", "in"))) == ["CR-000002", "CR-000004"]
    assert len(await skus(sc(("sku", "CR-000002,CR-000004", "nin")))) == 28
    assert await skus(sc(("price", 100, "gt"))) == [s.sku for s in specs if s.price > 100]
    assert await skus(sc(("price", 100, "lteq"), ("price", 50, "gteq"))) == [
        s.sku for s in specs if 50 <= s.price <= 100
    ]
    assert await skus(sc(("price", 100, "from"), ("price", 200, "to"))) == [
        s.sku for s in specs if 100 <= s.price <= 200
    ]
    assert len(await skus(sc(("sku", "CR-000001", "neq")))) == 29
    assert await skus(sc(("status", 2))) == [s.sku for s in specs if not s.web_active]
    assert len(await skus(sc(("special_price", "", "null")))) == 30
    assert len(await skus(sc(("color", "", "notnull")))) == sum("color" in s.attributes for s in specs)
    assert len(await skus(sc(("website_id", "2", "finset")))) == 30
    assert len(await skus(sc(("updated_at", "2000-01-01 00:00:00", "gt")))) == 30

    by_price = await api.get("/V1/products", store="all", params=sc(sort=[("price", "DESC")], size=30))
    prices = [p["price"] for p in by_price["items"]]
    assert prices == sorted(prices, reverse=True)
    two_keys = await skus(sc(sort=[("status", "DESC"), ("sku", "DESC")], size=30))
    assert two_keys == [s.sku for s in sorted(specs, key=lambda s: (1 if s.web_active else 2, s.sku), reverse=True)]

    pages = []
    for page in range(1, 7):
        result = await api.get("/V1/products", store="all", params=sc(sort=[("sku", "ASC")], size=7, page=page))
        assert result["total_count"] == 30 and result["search_criteria"]["current_page"] == page
        pages.append([p["sku"] for p in result["items"]])
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2, 2]
    assert pages[5] == pages[4]  # past the end: the last page again
    assert [sku for page in pages[:5] for sku in page] == [s.sku for s in specs]

    camel = {
        "searchCriteria[filterGroups][0][filters][0][field]": "sku",
        "searchCriteria[filterGroups][0][filters][0][value]": "CR-00002%",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "like",
    }
    assert len(await skus(camel)) == 10
    no_criteria = await api.get("/V1/products", params={}, status=400)
    assert no_criteria == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "searchCriteria"},
    }
    assert (await api.get("/V1/products", params=sc(("nope", 1)), status=400))["parameters"] == ["nope"]
    assert (await api.get("/V1/products", params=sc(("sku", 1, "near")), status=400))["parameters"]["value"] == "near"
    everything = await api.get("/V1/products", store="all", params=sc())
    assert len(everything["items"]) == everything["total_count"] == 30  # no pageSize: every match


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", "abc", "ABC", True),  # case-insensitive like MySQL's collation
        ("eq", "2", 2, True),
        ("eq", "2", None, False),  # NULL matches nothing ...
        ("neq", "2", None, False),  # ... not even neq
        ("neq", "2", [1, 3], True),
        ("neq", "2", [1, 2], False),
        ("gt", "9", "10", True),  # ordering conditions compare numeric text as numbers
        ("gt", "9", 10.5, True),
        ("lt", "2026-01-01 00:00:00", "2025-12-31 23:59:59", True),
        ("in", "1,2", [2, 7], True),
        ("nin", "1,2", [3], True),
        ("like", "cr-0%1_", "CR-000015", True),
        ("nlike", "%Tee%", "Lamp", True),
        ("finset", "2", "1,2,3", True),
        ("nfinset", "2", "1,3", True),
        ("null", "", "", True),
        ("notnull", "", 0, True),
        ("from", "5", 5, True),
        ("to", "5", 5.01, False),
    ],
)
def test_filter_conditions(op: str, value: str, actual: Any, expected: bool) -> None:
    assert predicate(op, value)(actual) is expected


# --- customers ----------------------------------------------------------------------------------------------


async def test_customers_unique_per_website_with_addresses_replaced_on_save(api: Api, receiver: Receiver) -> None:
    body = {
        "customer": {"email": "Mia@Example.com", "firstname": "Mia", "lastname": "Lopez", "addresses": [ADDRESS_TX]}
    }
    mia = await api.post("/V1/customers", body=body, status=200)
    assert (mia["website_id"], mia["store_id"], mia["group_id"], mia["created_in"]) == (1, 1, 1, "Default Store View")
    address = mia["addresses"][0]
    assert address["region"] == {"region_code": "TX", "region": "Texas", "region_id": 57}
    assert mia["default_billing"] == mia["default_shipping"] == str(address["id"])

    duplicate = {"customer": {**body["customer"], "email": "mia@example.com", "addresses": []}}
    assert await api.post("/V1/customers", body=duplicate, status=400) == {
        "message": "A customer with the same email address already exists in an associated website."
    }
    other_site = await api.post("/V1/customers", store="outlet", body=duplicate)
    assert other_site["website_id"] == 2 and other_site["store_id"] == 3
    found = await api.get("/V1/customers/search", params=sc(("email", "mia@example.com"), ("website_id", 1)))
    assert [c["id"] for c in found["items"]] == [mia["id"]]

    california = {**ADDRESS_TX, "city": "San Jose", "postcode": "95113", "region": {"region_code": "CA"}}
    california.pop("region_id")
    replaced = await api.put(
        "/V1/customers/{customerId}",
        customerId=mia["id"],
        body={
            "customer": {
                "email": mia["email"],
                "firstname": "Mia",
                "lastname": "Lopez",
                "website_id": 1,
                "addresses": [california],
            }
        },
    )
    assert [(a["city"], a["region_id"]) for a in replaced["addresses"]] == [("San Jose", 12)]
    assert replaced["addresses"][0]["id"] != address["id"]
    kept = await api.put(
        "/V1/customers/{customerId}",
        customerId=mia["id"],
        body={"customer": {"email": mia["email"], "firstname": "Mia", "lastname": "Moore", "website_id": 1}},
    )
    assert kept["lastname"] == "Moore" and kept["addresses"] == replaced["addresses"]
    assert kept["default_billing"] == str(replaced["addresses"][0]["id"])

    def customer(**fields: Any) -> dict[str, Any]:
        return {"customer": {"email": "new@example.com", "firstname": "N", "lastname": "W", **fields}}

    assert (await api.post("/V1/customers", body=customer(email="not-an-email"), status=400))["parameters"] == ["Email"]
    unknown_country = await api.post(
        "/V1/customers", body=customer(addresses=[{**ADDRESS_TX, "country_id": "ZZ"}]), status=400
    )
    assert unknown_country == {
        "message": 'Invalid value of "%value" provided for the %fieldName field.',
        "parameters": {"fieldName": "countryId", "value": "ZZ"},
    }
    no_region = {k: v for k, v in ADDRESS_TX.items() if k not in ("region", "region_id")}
    assert (await api.post("/V1/customers", body=customer(addresses=[no_region]), status=400))["parameters"] == {
        "fieldName": "regionId"
    }
    weak = await api.post("/V1/customers", body={**customer(), "password": "short"}, status=400)
    assert weak["parameters"] == [8]
    no_site = {"customer": {"email": mia["email"], "firstname": "Mia", "lastname": "Lopez"}}
    missing = await api.put("/V1/customers/{customerId}", customerId=mia["id"], body=no_site, status=400)
    assert missing["parameters"] == {"fieldName": "website_id"}
    no_email = {"customer": {"firstname": "Mia", "lastname": "Lopez", "website_id": 1}}
    assert (await api.put("/V1/customers/{customerId}", customerId=mia["id"], body=no_email, status=400)) == {
        "message": "The customer email is missing. Enter and try again."
    }
    taken = {"customer": {"email": "anna@example.com", "firstname": "Anna", "lastname": "B", "website_id": 1}}
    anna = await api.post("/V1/customers", body=taken)
    steal = {"customer": {**taken["customer"], "firstname": "Mia"}}
    await api.put("/V1/customers/{customerId}", customerId=mia["id"], body=steal, status=400)
    assert await api.get("/V1/customers/{customerId}", customerId=999, status=404) == {
        "message": "No such entity with %fieldName = %fieldValue",
        "parameters": {"fieldName": "customerId", "fieldValue": 999},
    }
    await wait_until(lambda: len(receiver.of_type("customer.created")) == 3)
    assert receiver.of_type("customer.created") == [
        {"customer_id": mia["id"]},
        {"customer_id": other_site["id"]},
        {"customer_id": anna["id"]},
    ]
    assert receiver.refused == 0


# --- orders and callbacks -----------------------------------------------------------------------------------


class Clock:
    """The sandbox's clock, moved by hand so timestamps are exact."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


async def test_order_invoice_ship_completes_and_calls_back(api: Api, receiver: Receiver) -> None:
    clock = Clock()
    api.state.clock = clock
    await api.post("/V1/products", store="all", body=simple("TEE", "Tee", type_id="configurable", price=None))
    await api.post(
        "/V1/products",
        store="all",
        body=simple("TEE-S", "Tee S", visibility=1, extension_attributes={"stock_item": {"qty": 10}}),
    )
    await api.post("/V1/products", store="all", body=simple("MUG", "Mug", price=8))
    entity = {
        "customer_email": "guest@example.com",
        "customer_firstname": "Gus",
        "customer_lastname": "Guest",
        "shipping_amount": 5,
        "billing_address": {k: v for k, v in ADDRESS_TX.items() if not k.startswith("default_")},
        "items": [
            {"sku": "TEE-S", "product_type": "configurable", "qty_ordered": 2, "price": 20, "tax_amount": 3.3,
             "discount_amount": 4},
            {"sku": "MUG", "qty_ordered": 1, "price": 8},
        ],
    }  # fmt: skip
    order = await api.post("/V1/orders", body={"entity": entity})
    assert (order["state"], order["status"], order["increment_id"]) == ("new", "pending", "000000001")
    assert order["customer_is_guest"] == 1 and "customer_id" not in order
    parent, child, mug = order["items"]
    assert (parent["product_type"], parent["sku"], parent["price"], parent["row_total"]) == (
        "configurable",
        "TEE-S",
        20,
        40,
    )
    assert (child["product_type"], child["parent_item_id"], child["price"]) == ("simple", parent["item_id"], 0)
    assert child["product_id"] == api.state.product("TEE-S").id and child["parent_item"]["item_id"] == parent["item_id"]
    assert (mug["sku"], mug.get("parent_item_id")) == ("MUG", None)
    assert (order["subtotal"], order["tax_amount"], order["discount_amount"], order["shipping_amount"]) == (
        48,
        3.3,
        -4,
        5,
    )
    assert order["grand_total"] == pytest.approx(52.3) and order["total_qty_ordered"] == 3
    address = order["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    assert address["address_type"] == "shipping" and address["city"] == "Austin"
    assert order["created_at"] == order["updated_at"] == "2026-05-01 10:00:00"

    clock.advance(60)
    invoice_id = await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body={"capture": True})
    invoiced = await api.get("/V1/orders/{id}", id=order["entity_id"])
    assert isinstance(invoice_id, int) and (invoiced["state"], invoiced["status"]) == ("processing", "processing")
    assert invoiced["total_invoiced"] == pytest.approx(52.3) and invoiced["updated_at"] == "2026-05-01 10:01:00"
    assert [r["qty_invoiced"] for r in invoiced["items"]] == [2, 2, 1]

    clock.advance(60)
    partial = {"items": [{"order_item_id": mug["item_id"], "qty": 1}]}
    await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body=partial)
    assert (await api.get("/V1/orders/{id}", id=order["entity_id"]))["state"] == "processing"
    clock.advance(60)
    await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body={"notify": False})
    done = await api.get("/V1/orders/{id}", id=order["entity_id"])
    assert (done["state"], done["status"], done["updated_at"]) == ("complete", "complete", "2026-05-01 10:03:00")
    assert api.state.source_item("TEE-S", "default").quantity == 8  # MSI deducts at shipment, not before

    await wait_until(lambda: receiver.of_type("order.completed"))
    assert receiver.of_type("order.completed") == [{"order_id": order["entity_id"], "increment_id": "000000001"}]
    assert receiver.refused == 0

    again = await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body={}, status=400)
    assert again["message"].startswith("Invoice Document Validation Error(s):")
    assert await api.get("/V1/orders/{id}", id=424242, status=404) == {
        "message": "The entity that was requested doesn't exist. Verify the entity and try again."
    }
    poll = sc(("state", "complete"), ("updated_at", "2026-05-01 10:02:00", "gt"), sort=[("updated_at", "ASC")], size=10)
    assert [o["increment_id"] for o in (await api.get("/V1/orders", params=poll))["items"]] == ["000000001"]
    later = sc(("state", "complete"), ("updated_at", "2026-05-01 10:03:00", "gt"), size=10)
    assert (await api.get("/V1/orders", params=later))["total_count"] == 0


async def test_callbacks_for_categories_and_the_suppress_header(api: Api, receiver: Receiver) -> None:
    quiet = {"X-Sandbox-Suppress-Webhook": "1"}
    silent = await api.post(
        "/V1/categories", store="all", headers=quiet, body={"category": {"parent_id": 2, "name": "Quiet"}}
    )
    await api.post(
        "/V1/customers", headers=quiet, body={"customer": {"email": "q@example.com", "firstname": "Q", "lastname": "Q"}}
    )
    await api.post("/V1/products", store="all", body=simple("Q-1"))
    order = await api.post(
        "/V1/orders", body={"entity": {"customer_email": "q@example.com", "items": [{"sku": "Q-1", "price": 10}]}}
    )
    await api.post("/V1/order/{orderId}/invoice", orderId=order["entity_id"], body={})
    await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], headers=quiet, body={})
    loud = await api.post("/V1/categories", store="all", body={"category": {"parent_id": 2, "name": "Loud"}})
    await wait_until(lambda: receiver.of_type("category.created"))
    await asyncio.sleep(0.2)
    assert receiver.of_type("category.created") == [{"category_id": loud["id"]}]
    assert silent["id"] != loud["id"]
    assert receiver.of_type("customer.created") == receiver.of_type("order.completed") == []
    assert (await api.get("/V1/orders/{id}", id=order["entity_id"]))["state"] == "complete"


# --- faults, stats, health ----------------------------------------------------------------------------------


async def test_fault_rules_answer_in_magentos_shape_and_can_be_cleared(start: Start) -> None:
    api = await start(faults=[FaultRule(match="GET /rest/*/V1/store/*", error_rate=1, error_status=500)])
    views_url = api.url("/V1/store/storeViews", "default", None, {})
    got, body, _ = await api.send("GET", views_url)
    assert got == 500 and body == {"message": "Sandbox fault: internal error."}
    validate_error(api.swagger, body)

    rules = [{"match": "GET /rest/*/V1/products/*", "error_rate": 1, "error_status": 503}]
    assert (await api.sandbox("PUT", "faults", rules))[0]["error_status"] == 503
    product_url = api.url("/V1/products/{sku}", "default", None, {"sku": "X"})
    got, body, _ = await api.send("GET", product_url)
    assert got == 503 and "message" in body
    assert (await api.send("GET", views_url))[0] == 200  # the start-up rule was replaced

    await api.sandbox("PUT", "faults", [{"match": "*", "rate_limit_rate": 1, "retry_after_seconds": 7}])
    got, body, resp = await api.send("GET", views_url)
    assert got == 429 and resp.headers["Retry-After"] == "7" and body["message"]
    assert (await api.sandbox("GET", "health"))["status"] == "ok"  # /_sandbox/ is never faulted

    assert await api.sandbox("DELETE", "faults") == []
    await api.get("/V1/products/{sku}", sku="X", status=404)


async def test_stats_count_calls_per_method_and_route(api: Api) -> None:
    await api.sandbox("DELETE", "stats")
    for _ in range(3):
        await api.get("/V1/products/{sku}", sku="NOPE", status=404)
    await api.get("/V1/products/{sku}", store=None, sku="NOPE", status=404)
    await api.get("/V1/store/websites")
    stats = await api.sandbox("GET", "stats")
    assert stats["calls"]["GET /rest/{store_code}/V1/products/{sku}"] == 3
    assert stats["calls"]["GET /rest/V1/products/{sku}"] == 1
    assert stats["calls"]["GET /rest/{store_code}/V1/store/websites"] == 1
    assert stats["total"] == 5
    health = await api.sandbox("GET", "health")
    assert health["system"] == "magento" and health["products"] == 0 and health["msi"] is True


# --- inventory ----------------------------------------------------------------------------------------------


async def test_source_items_and_legacy_stock(start: Start) -> None:
    api = await start(source_codes=["default", "warehouse"])
    for n in range(3):
        await api.post("/V1/products", store="all", body=simple(f"INV-{n}"))
    sources = await api.get("/V1/inventory/sources")
    assert [s["source_code"] for s in sources["items"]] == ["default", "warehouse"] and sources["total_count"] == 2
    batch = [
        {"sku": f"INV-{n}", "source_code": "warehouse", "quantity": n * 10, "status": int(n > 0)} for n in range(3)
    ]
    batch.append({"sku": "INV-0", "source_code": "default", "quantity": 4, "status": 1})
    assert await api.post("/V1/inventory/source-items", body={"sourceItems": batch}) == []
    at_warehouse = await api.get(
        "/V1/inventory/source-items",
        params=sc(("source_code", "warehouse"), ("sku", "INV-1,INV-2", "in"), sort=[("sku", "DESC")]),
    )
    assert [(i["sku"], i["quantity"]) for i in at_warehouse["items"]] == [("INV-2", 20), ("INV-1", 10)]

    # legacy stock is the default source only
    stock = await api.get("/V1/stockItems/{productSku}", productSku="INV-0")
    assert (stock["qty"], stock["is_in_stock"]) == (4, True)
    await api.put(
        "/V1/products/{productSku}/stockItems/{itemId}",
        productSku="INV-0",
        itemId=stock["item_id"],
        body={"stockItem": {"qty": 0, "is_in_stock": False}},
    )
    assert api.state.source_item("INV-0", "default").quantity == 0
    assert api.state.source_item("INV-0", "warehouse").quantity == 0  # untouched (it was 0 before too)
    assert api.state.source_item("INV-2", "warehouse").quantity == 20
    product = await api.get("/V1/products/{sku}", sku="INV-0")
    assert product["extension_attributes"]["stock_item"]["is_in_stock"] is False

    invalid = await api.post(
        "/V1/inventory/source-items", body={"sourceItems": [{"sku": "", "source_code": "default"}]}, status=400
    )
    assert invalid["message"] == "Validation Failed" and invalid["errors"][0]["parameters"] == {"field": "sku"}
    unknown = {"sourceItems": [{"sku": "INV-1", "source_code": "nowhere", "quantity": 1, "status": 1}]}
    assert (await api.post("/V1/inventory/source-items", body=unknown, status=400))["message"] == (
        "Could not save Source Item"
    )
    empty = await api.post("/V1/inventory/source-items", body={"sourceItems": []}, status=400)
    assert empty == {"message": "Input data is empty"}
    await api.get("/V1/stockItems/{productSku}", productSku="NOPE", status=404)


async def test_without_msi_the_inventory_routes_do_not_exist(start: Start) -> None:
    api = await start(msi=False)
    for method, template in (("GET", "/V1/inventory/sources"), ("POST", "/V1/inventory/source-items")):
        got, body, _ = await api.send(method, api.url(template, "default", None, {}), body={"sourceItems": []})
        assert (got, body) == (404, {"message": "Request does not match any route."})
    got, _, _ = await api.send("GET", api.url("/V1/inventory/source-items", "default", sc(), {}))
    assert got == 404
    await api.post("/V1/products", store="all", body=simple("LEG-1", extension_attributes={"stock_item": {"qty": 3}}))
    stock = await api.get("/V1/stockItems/{productSku}", productSku="LEG-1")
    assert (stock["qty"], stock["is_in_stock"]) == (3, True)
    assert (await api.sandbox("GET", "health"))["msi"] is False


# --- attributes ---------------------------------------------------------------------------------------------


async def test_attribute_options_answer_the_new_id_as_a_string(api: Api) -> None:
    before = await api.get("/V1/products/attributes/{attributeCode}/options", attributeCode="size")
    assert before[0] == {"label": " ", "value": ""}  # a user-defined select starts with the empty choice
    assert [o["label"] for o in before[1:]] == catalog.SHARED_ATTRIBUTES["size"]
    new_id = await api.post(
        "/V1/products/attributes/{attributeCode}/options",
        attributeCode="size",
        body={"option": {"label": "XXL", "sort_order": 9, "is_default": False}},
    )
    assert isinstance(new_id, str) and new_id.isdigit()
    after = await api.get("/V1/products/attributes/{attributeCode}/options", attributeCode="size")
    assert after[-1] == {"label": "XXL", "value": new_id}
    duplicate = await api.post(
        "/V1/products/attributes/{attributeCode}/options",
        attributeCode="size",
        body={"option": {"label": "xxl"}},
        status=400,
    )
    assert duplicate == {"message": 'Admin store attribute option label "%1" already exists.', "parameters": ["xxl"]}
    empty = {"option": {"label": "  "}}
    await api.post("/V1/products/attributes/{attributeCode}/options", attributeCode="size", body=empty, status=400)
    text = await api.post(
        "/V1/products/attributes/{attributeCode}/options",
        attributeCode="brand",
        body={"option": {"label": "X"}},
        status=400,
    )
    assert text == {"message": 'The "%1" attribute doesn\'t work with options.', "parameters": ["brand"]}
    missing = await api.get("/V1/products/attributes/{attributeCode}", attributeCode="nope", status=404)
    assert missing["parameters"] == ["nope"]
    saved = await api.post(
        "/V1/products",
        store="all",
        body=simple("OPT-1", custom_attributes=[{"attribute_code": "size", "value": new_id}]),
    )
    assert custom(saved, "size") == new_id
    attribute = await api.get("/V1/products/attributes/{attributeCode}", attributeCode="name")
    assert (attribute["attribute_id"], attribute["scope"], attribute["is_required"]) == (73, "store", True)


# --- seeding ------------------------------------------------------------------------------------------------


async def test_seeded_products_and_customers_match_the_shared_catalog(start: Start) -> None:
    api = await start(products=12, customers=3, seed=7)
    listed = await api.get("/V1/products/attribute-sets/sets/list", params=sc())
    sets = {s["attribute_set_id"]: s["attribute_set_name"] for s in listed["items"]}
    materials = await api.get("/V1/products/attributes/{attributeCode}/options", attributeCode="material")
    options = {o["value"]: o["label"] for o in materials}
    assert sets[4] == "Default"
    for i in (1, 3, 10):
        spec = catalog.product(i, seed=7)
        product = await api.get("/V1/products/{sku}", store="all", sku=spec.sku)
        assert (product["name"], product["price"], product["weight"]) == (spec.name, spec.price, spec.weight)
        assert product["status"] == (1 if spec.web_active else 2)
        primary = next(s["name"] for s in spec.attribute_sets if s["primary"])
        assert sets[product["attribute_set_id"]] == (primary if primary in sets.values() else "Default")
        assert product["extension_attributes"]["website_ids"] == [1, 2]
        assert product["extension_attributes"]["stock_item"]["qty"] == spec.on_hand[catalog.LINKED_STORE_ID]
        assert options[custom(product, "material")] == spec.attributes["material"]
        assert custom(product, "brand") == spec.attributes["brand"]
    customers = await api.get("/V1/customers/search", params=sc(sort=[("id", "ASC")]))
    assert [c["email"] for c in customers["items"]] == [catalog.customer(i, seed=7).email for i in (1, 2, 3)]
    assert all(c["addresses"][0]["region"]["region_id"] in (57, 12, 43) for c in customers["items"])


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_100k_seed_loads_and_pages(start: Start) -> None:
    before, started = rss_mb(), time.perf_counter()
    api = await start(products=100_000)
    load_seconds, grown_mb = time.perf_counter() - started, rss_mb() - before
    print(f"\n100k seed: {load_seconds:.1f} s, +{grown_mb:.0f} MB RSS")
    assert load_seconds < 120 and grown_mb < 1500

    spec = catalog.product(100_000)
    product = await api.get("/V1/products/{sku}", sku=spec.sku)
    assert product["name"] == spec.name
    products = await api.get("/V1/products", params=sc(("status", 1), size=500, page=3))
    assert products["total_count"] == sum(1 for i in range(1, 100_001) if i % 10) and len(products["items"]) == 500
    started = time.perf_counter()
    criteria = sc(("source_code", "default"), sort=[("sku", "ASC")], size=500, page=1)
    first = await api.get("/V1/inventory/source-items", params=criteria)
    assert first["total_count"] == 100_000 and first["items"][0]["sku"] == "CR-000001"
    pages = []
    for page in (2, 199, 200, 201):
        criteria["searchCriteria[currentPage]"] = str(page)
        pages.append(await api.get("/V1/inventory/source-items", params=criteria))
    assert pages[2]["items"][-1]["sku"] == "CR-100000"
    assert pages[3]["items"] == pages[2]["items"]  # past the end: the last page again
    print(f"source-items: 5 pages of 500 in {time.perf_counter() - started:.2f} s")
    assert pages[2]["items"][-1]["quantity"] == spec.on_hand[catalog.LINKED_STORE_ID]
    by_sku = await api.get(
        "/V1/inventory/source-items", params=sc(("sku", ",".join(catalog.sku(i) for i in range(1, 501)), "in"))
    )
    assert by_sku["total_count"] == 500


async def test_tier_prices_refuse_as_magento_does(api: Api) -> None:
    await api.post("/V1/products", store="all", body=simple("TIER-1"))
    row = {"price": 8.0, "price_type": "fixed", "website_id": 0, "sku": "TIER-1", "customer_group": "Retailer"}
    bad_qty = await api.post("/V1/products/tier-prices", body={"prices": [{**row, "quantity": 0}]})
    assert [r["message"].split(".")[0] for r in bad_qty] == ["Invalid attribute Quantity = %qty"]
    assert await api.post("/V1/products/tier-prices", body={"prices": [{**row, "quantity": 1}]}) == []
    # One price for all websites and one for website 1, same group and quantity: Magento keeps the first.
    clash = await api.post("/V1/products/tier-prices", body={"prices": [{**row, "website_id": 1, "quantity": 1}]})
    assert clash[0]["message"].startswith("We found a duplicate website")
    # A delete names the row's price too: another price removes nothing.
    other = {"prices": [{**row, "price": 7.0, "quantity": 1}]}
    assert await api.post("/V1/products/tier-prices-delete", body=other) == []
    info = await api.post("/V1/products/tier-prices-information", body={"skus": ["TIER-1"]})
    assert [(r["customer_group"], r["price"]) for r in info] == [("Retailer", 8.0)]
    missing = await api.post("/V1/products/tier-prices-information", body={"skus": ["TIER-1", "NOPE"]}, status=404)
    assert missing == {"message": "Requested products don't exist: %sku", "parameters": {"sku": "NOPE"}}
    assert (await api.get("/V1/customerGroups/{id}", id=99, status=404))["parameters"] == {
        "fieldName": "id",
        "fieldValue": 99,
    }
