"""openapi.yaml is a valid OpenAPI 3.1 document, covers exactly the routes the app registers, and describes what
the live gateway answers (bodies checked against the spec's schemas, which are JSON Schema 2020-12)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import referencing
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from redis.asyncio import Redis
from referencing.jsonschema import DRAFT202012

from crmcore import deadletters, keys
from crmcore.events import CATALOGUE, Source
from crmcore.settings import Settings
from gateway.app import create_app
from gateway.guards import FALLBACK_ROUTE
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from workers.registry import Registry

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
SPEC_URI = "urn:crmagento:openapi"
REGISTRY = referencing.Registry().with_resource(
    SPEC_URI, referencing.Resource.from_contents(SPEC, default_specification=DRAFT202012)
)
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRODUCT = {"product_id": "P-1", "sku": "SKU-1"}


def _resolve(ref: str) -> Any:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _follow(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _resolve(node["$ref"])
    return node


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _spec_response(method: str, path: str, status: int) -> tuple[str, dict[str, Any]]:
    """(JSON pointer of the response object, the response object) for one documented answer."""
    responses = SPEC["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    pointer = f"#/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    response = responses[str(status)]
    while "$ref" in response:
        pointer = response["$ref"]
        response = _resolve(pointer)
    return pointer, response


async def check(resp: ClientResponse, method: str, path: str) -> Any:
    """Assert that `resp` is an answer the spec documents for (method, path) and return its JSON body."""
    pointer, response = _spec_response(method, path, resp.status)
    content = response.get("content", {})
    assert resp.content_type in content, f"{resp.content_type} not documented for {method} {path} {resp.status}"
    for name, header in response.get("headers", {}).items():
        header = _follow(header)
        if name not in resp.headers:
            assert not header.get("required"), f"{method} {path} {resp.status}: no {name} header"
            continue
        value: Any = resp.headers[name]
        if header["schema"].get("type") == "integer":
            value = int(value)
        assert Draft202012Validator(header["schema"]).is_valid(value), f"{name}: {value!r}"
    raw = await resp.read()
    if resp.content_type.endswith("json"):
        body = orjson.loads(raw)
    else:
        body = raw.decode()
    schema_pointer = f"{pointer.removeprefix('#')}/content/{_escape(resp.content_type)}/schema"
    errors = sorted(_validator("#" + schema_pointer).iter_errors(body), key=str)
    assert not errors, f"{method} {path} {resp.status}: {[e.message for e in errors]}\n{body}"
    return body


def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": SPEC_URI + pointer},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


# ------------------------------------------------------------------------------------------- the document


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC)


def test_every_schema_is_valid_json_schema() -> None:
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_ref_resolves() -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(SPEC)
    assert refs
    for ref in refs:
        _resolve(ref)


def _spec_operations() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in METHODS}


def test_spec_documents_exactly_the_app_routes(settings: Settings) -> None:
    app = create_app(settings)
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds one per GET
            continue
        if route.resource is not None and route.resource.name == FALLBACK_ROUTE:  # 404/405 for everything else
            continue
        # `{name}` and `{name:regex}` in aiohttp are `{name}` in OpenAPI.
        path = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", r"{\1}", route.resource.canonical)
        routes.add((route.method, path))
    assert routes == _spec_operations()


def test_admin_operations_need_the_bearer_token_and_others_do_not() -> None:
    scheme = SPEC["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path in _spec_operations():
        operation = SPEC["paths"][path][method.lower()]
        if path.startswith("/admin/") and not path.startswith("/admin/ui"):  # the dashboard's files are public
            assert operation["security"] == [{"adminToken": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
        else:
            assert operation.get("security", SPEC["security"]) == [], (method, path)


def test_event_types_match_the_catalogue() -> None:
    schemas = SPEC["components"]["schemas"]
    for source, name in ((Source.CLOUDRETAILER, "CloudRetailerEvent"), (Source.MAGENTO, "MagentoEvent")):
        *handled_branches, unhandled = schemas[name]["oneOf"]
        data_schemas: dict[str, dict[str, Any]] = {}
        for branch in handled_branches:
            type_schema = branch["properties"]["type"]
            for event_type in type_schema.get("enum", [type_schema.get("const")]):
                data_schemas[event_type] = _follow(branch["properties"]["data"])
        assert set(data_schemas) == set(CATALOGUE[source])
        assert set(unhandled["properties"]["type"]["not"]["enum"]) == set(CATALOGUE[source])

        validator = _validator(f"#/components/schemas/{name}")
        for event_type, model in CATALOGUE[source].items():
            fields = model.model_fields
            data_schema = data_schemas[event_type]
            assert set(data_schema["properties"]) == set(fields), event_type
            assert set(data_schema["required"]) == {f for f, info in fields.items() if info.is_required()}
            # A minimal valid body by the spec is valid for the gateway's model, and {} is invalid for both.
            data = {f: (7 if info.annotation is int else "X-1") for f, info in fields.items() if info.is_required()}
            body = {"type": event_type, "timestamp": "2024-05-01T10:00:00Z", "data": data}
            assert validator.is_valid(body), (source, event_type, [e.message for e in validator.iter_errors(body)])
            model.model_validate(data)
            assert not validator.is_valid({**body, "data": {}}), (source, event_type)
        assert validator.is_valid({"type": "something.else", "timestamp": "2024-05-01T10:00:00Z", "data": {}})


# ------------------------------------------------------------------------------------------- live answers


async def test_webhook_answers_match_the_spec(gateway: TestClient) -> None:
    cr = "/webhooks/cloudretailer"
    msg_id = new_id()
    body = envelope("product.updated", PRODUCT)
    queued = await check(await post_event(gateway, "cloudretailer", body, msg_id=msg_id), "POST", cr)
    assert queued == {"id": msg_id, "status": "queued"}
    duplicate = await post_event(gateway, "cloudretailer", body, msg_id=msg_id)
    assert duplicate.status == 200
    assert await check(duplicate, "POST", cr) == {"id": msg_id, "status": "duplicate"}

    ignored = await post_event(gateway, "cloudretailer", envelope("loyalty.points.changed", {"x": 1}))
    assert ignored.status == 202 and (await check(ignored, "POST", cr))["status"] == "ignored"

    wrong = await post_event(gateway, "cloudretailer", body, secret="whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==")
    assert wrong.status == 401
    await check(wrong, "POST", cr)
    unsigned = await gateway.post(cr, data=body, headers={"content-type": "application/json"})
    assert unsigned.status == 401
    await check(unsigned, "POST", cr)

    invalid = await post_event(gateway, "cloudretailer", envelope("product.updated", {"product_id": "P-1"}))
    assert invalid.status == 422
    problem = await check(invalid, "POST", cr)
    assert problem["errors"] == [{"field": "data.sku", "reason": "Field required"}]

    not_json = await post_event(gateway, "cloudretailer", b"{not json")
    assert not_json.status == 400
    await check(not_json, "POST", cr)
    no_envelope = await post_event(gateway, "cloudretailer", b'{"type": "product.updated"}')
    assert no_envelope.status == 400
    assert {e["field"] for e in (await check(no_envelope, "POST", cr))["errors"]} == {"timestamp", "data"}

    text = await post_event(gateway, "cloudretailer", body, headers={"content-type": "text/plain"})
    assert text.status == 415
    await check(text, "POST", cr)

    big = await post_event(gateway, "magento", b"[" + b"0," * 600_000 + b"0]")
    assert big.status == 413
    await check(big, "POST", "/webhooks/magento")

    order = envelope("order.completed", {"order_id": 12, "increment_id": "000000012"})
    assert (await check(await post_event(gateway, "magento", order), "POST", "/webhooks/magento"))["status"] == "queued"
    bad_order = envelope("order.completed", {"order_id": "12", "increment_id": "000000012"})
    resp = await post_event(gateway, "magento", bad_order)
    assert resp.status == 422
    await check(resp, "POST", "/webhooks/magento")


async def test_admin_answers_match_the_spec(gateway: TestClient, redis: Redis) -> None:
    msg_id = new_id()
    await post_event(gateway, "cloudretailer", envelope("customer.updated", {"customer_id": "C-1"}), msg_id=msg_id)

    resp = await gateway.get("/admin/status", headers=AUTH)
    assert resp.status == 200
    status = await check(resp, "GET", "/admin/status")
    assert status["redis"] == "ok" and status["queue_depth"] == 1

    for path in ("/admin/status", f"/admin/events/{msg_id}", "/admin/dead-letters"):
        denied = await gateway.get(path, headers={"Authorization": "Bearer not-a-token-0123456789"})
        assert denied.status == 401
        await check(denied, "GET", re.sub(r"/msg_\w+$", "/{event_id}", path))
    denied = await gateway.post("/admin/dead-letters/x/replay")
    assert denied.status == 401
    await check(denied, "POST", "/admin/dead-letters/{dl_id}/replay")

    record = await check(await gateway.get(f"/admin/events/{msg_id}", headers=AUTH), "GET", "/admin/events/{event_id}")
    assert record["id"] == msg_id and record["status"] == "queued"
    missing = await gateway.get(f"/admin/events/{new_id()}", headers=AUTH)
    assert missing.status == 404
    await check(missing, "GET", "/admin/events/{event_id}")
    bad_source = await gateway.get(f"/admin/events/{msg_id}?source=pos", headers=AUTH)
    assert bad_source.status == 400
    await check(bad_source, "GET", "/admin/events/{event_id}")
    await post_event(gateway, "magento", envelope("customer.created", {"customer_id": 5}), msg_id=msg_id)
    ambiguous = await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)
    assert ambiguous.status == 409
    assert (await check(ambiguous, "GET", "/admin/events/{event_id}"))["id"] == msg_id

    listing = await check(await gateway.get("/admin/events?limit=5", headers=AUTH), "GET", "/admin/events")
    assert len(listing["items"]) == 2
    for query in ("limit=0", "limit=x", "status=lost"):
        resp = await gateway.get(f"/admin/events?{query}", headers=AUTH)
        assert resp.status == 400
        await check(resp, "GET", "/admin/events")

    # A dead letter made the way a worker makes one, then listed, read, replayed and gone.
    raw = await redis.hgetall(keys.event(f"cloudretailer:{msg_id}"))
    dl_id = await deadletters.create(
        redis,
        entity="cloudretailer:customer:C-1",
        event_type="customer.updated",
        records=[raw],
        reason="PermanentError: no such customer",
        attempts=1,
        job_id=keys.job_id("cloudretailer:customer:C-1", 1),
    )
    dls = await check(await gateway.get("/admin/dead-letters", headers=AUTH), "GET", "/admin/dead-letters")
    assert dls["total"] == 1 and dls["items"][0]["id"] == dl_id
    bad_offset = await gateway.get("/admin/dead-letters?offset=-1", headers=AUTH)
    assert bad_offset.status == 400
    await check(bad_offset, "GET", "/admin/dead-letters")
    dl = await check(
        await gateway.get(f"/admin/dead-letters/{dl_id}", headers=AUTH), "GET", "/admin/dead-letters/{dl_id}"
    )
    assert dl["event_ids"] == [msg_id] and dl["source"] == "cloudretailer"
    replayed = await gateway.post(f"/admin/dead-letters/{dl_id}/replay", headers=AUTH)
    assert replayed.status == 202
    assert await check(replayed, "POST", "/admin/dead-letters/{dl_id}/replay") == {
        "id": dl_id,
        "status": "requeued",
        "event_ids": [msg_id],
    }
    again = await gateway.post(f"/admin/dead-letters/{dl_id}/replay", headers=AUTH)
    assert again.status == 404
    await check(again, "POST", "/admin/dead-letters/{dl_id}/replay")
    gone = await gateway.get(f"/admin/dead-letters/{dl_id}", headers=AUTH)
    assert gone.status == 404
    await check(gone, "GET", "/admin/dead-letters/{dl_id}")


async def test_health_answers_match_the_spec(gateway: TestClient) -> None:
    assert await check(await gateway.get("/healthz"), "GET", "/healthz") == {"status": "ok"}
    not_ready = await gateway.get("/readyz")  # no worker has reported
    assert not_ready.status == 503
    assert (await check(not_ready, "GET", "/readyz"))["redis"] == "ok"
    metrics = await gateway.get("/metrics")
    assert metrics.status == 200
    assert "crmagento_queue_depth" in await check(metrics, "GET", "/metrics")


async def test_answers_with_a_worker_running_match_the_spec(gateway: TestClient, start_worker) -> None:
    msg_id = new_id()
    await post_event(gateway, "cloudretailer", envelope("category.updated", {"category_id": "K-1"}), msg_id=msg_id)
    await start_worker(Registry())

    async def handled() -> Any:
        record = await (await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)).json()
        return record["status"] == "skipped"

    await wait_for(handled)
    record = await check(await gateway.get(f"/admin/events/{msg_id}", headers=AUTH), "GET", "/admin/events/{event_id}")
    assert record["attempts"] == 1 and record["last_error"]
    status = await check(await gateway.get("/admin/status", headers=AUTH), "GET", "/admin/status")
    assert len(status["workers"]) == 1 and status["jobs"] == {"skipped": 1}
    ready = await gateway.get("/readyz")
    assert ready.status == 200
    assert (await check(ready, "GET", "/readyz"))["status"] == "ready"
    skipped = await check(await gateway.get("/admin/events?status=skipped", headers=AUTH), "GET", "/admin/events")
    assert [item["id"] for item in skipped["items"]] == [msg_id]


@pytest.fixture
async def gateway_without_redis() -> Any:
    # Nothing listens on port 1: every Redis call fails at once with "connection refused".
    client = TestClient(TestServer(create_app(make_settings("redis://127.0.0.1:1/0"))))
    await client.start_server()
    yield client
    await client.close()


async def test_outage_answers_match_the_spec(gateway_without_redis: TestClient) -> None:
    client = gateway_without_redis
    resp = await post_event(client, "cloudretailer", envelope("product.updated", PRODUCT))
    assert resp.status == 503
    await check(resp, "POST", "/webhooks/cloudretailer")
    assert int(resp.headers["Retry-After"]) >= 1

    status = await client.get("/admin/status", headers=AUTH)
    assert status.status == 503
    assert (await check(status, "GET", "/admin/status"))["redis"] == "unavailable"
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await check(ready, "GET", "/readyz"))["redis"] == "unavailable"
