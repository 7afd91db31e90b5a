"""The `page_rate` fault on both sandboxes over real HTTP: a store in maintenance behind a proxy or CDN that
answers 200 with its own HTML page instead of the API's JSON (sandbox/faults.py, docs/sandboxes.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.cloudretailer import CloudRetailerSandboxConfig
from sandbox.cloudretailer import create_app as create_cloudretailer
from sandbox.faults import MAINTENANCE_PAGE, FaultRule
from sandbox.magento import MagentoSandboxConfig
from sandbox.magento import create_app as create_magento

CR_KEY = "cr-sandbox-page-test-key"
HTML = "text/html; charset=utf-8"

Call = tuple[str, str, Any]  # method, path, JSON body


@dataclass(frozen=True)
class Kind:
    """What differs between the two sandboxes for these tests."""

    name: str
    create: Callable[[list[FaultRule]], web.Application]
    headers: dict[str, str]
    read: str  # a GET that answers 200 JSON normally
    write: Call  # a change that the read would show
    calls: tuple[Call, ...]  # API calls that answer 200 JSON normally
    other: str  # a GET that a rule matching `read` only leaves alone
    unknown: str  # a path the API has no route for (404 normally)


def _magento(faults: list[FaultRule]) -> web.Application:
    return create_magento(MagentoSandboxConfig(products=3, faults=faults, seed=7))


def _cloudretailer(faults: list[FaultRule]) -> web.Application:
    config = CloudRetailerSandboxConfig(
        api_key=CR_KEY, products=3, customers=1, faults=faults, fault_seed=7, styles=False
    )
    return create_cloudretailer(config)


MAGENTO = Kind(
    name="magento",
    create=_magento,
    headers={"Authorization": f"Bearer {MagentoSandboxConfig().effective_bearer()}", "Accept": "application/json"},
    read="/rest/V1/products/CR-000001",
    write=("PUT", "/rest/all/V1/products/CR-000001", {"product": {"price": 123.45}}),
    calls=(
        ("GET", "/rest/default/V1/store/storeViews", None),
        ("GET", "/rest/all/V1/products?searchCriteria[pageSize]=2", None),
        (
            "POST",
            "/rest/all/V1/products",
            {"product": {"sku": "NEW-1", "name": "New", "price": 1, "type_id": "simple", "attribute_set_id": 4}},
        ),
    ),
    other="/rest/default/V1/store/websites",
    unknown="/rest/default/V1/no-such-thing",
)
CLOUDRETAILER = Kind(
    name="cloudretailer",
    create=_cloudretailer,
    headers={"Authorization": f"Bearer {CR_KEY}"},
    read="/api/v1/products/P-1",
    write=("PUT", "/api/v1/products/P-1", {"price": 123.45}),
    calls=(
        ("GET", "/api/v1/stores", None),
        ("GET", "/api/v1/products?limit=2", None),
        ("PUT", "/api/v1/inventory/W-1/CR-000001", {"on_hand": 1}),
    ),
    other="/api/v1/stores",
    unknown="/api/v1/no-such-thing",
)


@dataclass
class Answer:
    status: int
    content_type: str
    text: str

    @property
    def json(self) -> Any:
        assert self.content_type.startswith(("application/json", "application/problem+json")), self
        return orjson.loads(self.text)

    @property
    def is_page(self) -> bool:
        return self.status == 200 and self.content_type == HTML and self.text == MAINTENANCE_PAGE


class Sandbox:
    def __init__(self, kind: Kind, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.kind, self.server, self.session = kind, server, session

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Answer:
        headers = dict(self.kind.headers) if auth else {}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.server.make_url(path), data=data, headers=headers) as resp:
            return Answer(resp.status, resp.headers.get("Content-Type", ""), await resp.text())

    async def faults(self, rules: Any) -> Answer:
        return await self.call("PUT", "/_sandbox/faults", rules, auth=False)

    async def read(self) -> Answer:
        return await self.call("GET", self.kind.read)


async def _start(kind: Kind, faults: list[FaultRule] | None = None) -> tuple[TestServer, aiohttp.ClientSession]:
    server = TestServer(kind.create(list(faults or [])))
    await server.start_server()
    return server, aiohttp.ClientSession()


@pytest.fixture(params=[MAGENTO, CLOUDRETAILER], ids=lambda k: k.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param


@pytest.fixture
async def sandbox(kind: Kind) -> AsyncIterator[Sandbox]:
    server, session = await _start(kind)
    yield Sandbox(kind, server, session)
    await session.close()
    await server.close()


def test_the_page_is_a_small_maintenance_page() -> None:
    assert FaultRule().page_rate == 0
    assert MAINTENANCE_PAGE.startswith("<!doctype html>")
    assert "<title>Service Temporarily Unavailable</title>" in MAINTENANCE_PAGE
    assert "maintenance downtime" in MAINTENANCE_PAGE and len(MAINTENANCE_PAGE) < 1024


async def test_page_rate_1_answers_every_api_call_with_the_html_page(sandbox: Sandbox) -> None:
    kind = sandbox.kind
    before = await sandbox.read()
    assert before.status == 200 and before.content_type.startswith("application/json")

    set_rules = await sandbox.faults([{"page_rate": 1}])
    assert set_rules.status == 200 and set_rules.json[0]["page_rate"] == 1
    await sandbox.call("DELETE", "/_sandbox/stats", auth=False)

    for method, path, body in (*kind.calls, kind.write, ("GET", kind.read, None)):
        answer = await sandbox.call(method, path, body)
        assert answer.is_page, (method, path, answer)
    # The proxy answers before the API: no auth check, no routing, no change made.
    assert (await sandbox.call("GET", kind.read, auth=False)).is_page
    assert (await sandbox.call("GET", kind.unknown)).is_page

    # The sandbox surface is never faulted, and it counted the faulted calls.
    health = await sandbox.call("GET", "/_sandbox/health", auth=False)
    assert health.status == 200 and health.json["status"] == "ok"
    assert (await sandbox.call("GET", "/_sandbox/faults", auth=False)).json[0]["page_rate"] == 1
    stats = await sandbox.call("GET", "/_sandbox/stats", auth=False)
    assert stats.status == 200 and stats.json["total"] == len(kind.calls) + 4

    assert (await sandbox.call("DELETE", "/_sandbox/faults", auth=False)).json == []
    after = await sandbox.read()
    assert after.status == 200 and after.json == before.json, "the write behind the page never happened"


async def test_page_rate_0_and_cleared_rules_leave_the_api_alone(sandbox: Sandbox) -> None:
    kind = sandbox.kind
    assert (await sandbox.faults([{"page_rate": 0}, {"match": "*", "page_rate": 0, "latency_ms": 1}])).status == 200
    for method, path, body in kind.calls:
        answer = await sandbox.call(method, path, body)
        assert answer.status == 200 and answer.content_type.startswith("application/json"), (path, answer)
    assert (await sandbox.call(*kind.write)).status == 200
    assert (await sandbox.read()).json["price"] == 123.45
    assert (await sandbox.call("GET", kind.unknown)).status == 404
    assert (await sandbox.call("GET", kind.read, auth=False)).status == 401

    await sandbox.faults([{"page_rate": 1}])
    assert (await sandbox.read()).is_page
    await sandbox.faults([{"page_rate": 0}])
    assert (await sandbox.read()).status == 200, "a rule replaced live by one with rate 0"


async def test_the_match_glob_limits_the_page(sandbox: Sandbox) -> None:
    kind = sandbox.kind
    await sandbox.faults([{"match": f"GET {kind.read}", "page_rate": 1}])
    assert (await sandbox.read()).is_page
    other = await sandbox.call("GET", kind.other)
    assert other.status == 200 and other.content_type.startswith("application/json")
    write = await sandbox.call(*kind.write)
    assert write.status == 200 and write.content_type.startswith("application/json"), "PUT is not matched"


@pytest.mark.parametrize("value", [1.5, -1, "often"])
async def test_an_invalid_page_rate_is_refused_and_changes_nothing(sandbox: Sandbox, value: Any) -> None:
    kept = [{"match": "GET /nowhere", "error_rate": 1}]
    assert (await sandbox.faults(kept)).status == 200
    refused = await sandbox.faults([{"match": "*", "page_rate": value}])
    assert refused.status == 422 and refused.content_type == "application/problem+json"
    body = refused.json
    assert body["title"] == "invalid fault rules" and body["status"] == 422
    assert [e["field"] for e in body["errors"]] == ["0.page_rate"]
    rules = (await sandbox.call("GET", "/_sandbox/faults", auth=False)).json
    assert [(r["match"], r["error_rate"], r["page_rate"]) for r in rules] == [("GET /nowhere", 1, 0)]
    assert (await sandbox.read()).status == 200


def test_an_invalid_page_rate_is_refused_at_start() -> None:
    for value in (1.5, -1):
        with pytest.raises(ValueError, match="page_rate"):
            FaultRule(page_rate=value)
        with pytest.raises(ValueError, match="page_rate"):
            CloudRetailerSandboxConfig(api_key=CR_KEY, faults=[{"page_rate": value}])
        with pytest.raises(ValueError, match="page_rate"):
            MagentoSandboxConfig(faults=[{"page_rate": value}])


async def test_a_page_rule_set_at_start(kind: Kind) -> None:
    server, session = await _start(kind, [FaultRule(match=f"GET {kind.read}", page_rate=1)])
    try:
        sandbox = Sandbox(kind, server, session)
        assert (await sandbox.read()).is_page
        assert (await sandbox.call("GET", kind.other)).status == 200
    finally:
        await session.close()
        await server.close()


async def test_errors_come_before_the_page_and_a_partial_rate_mixes(sandbox: Sandbox) -> None:
    # Per rule: delay, drop, timeout, 429, error, page; the first that rolls true wins.
    await sandbox.faults([{"error_rate": 1, "error_status": 502, "page_rate": 1}])
    assert (await sandbox.read()).status == 502
    await sandbox.faults([{"rate_limit_rate": 1, "page_rate": 1}])
    assert (await sandbox.read()).status == 429
    # Two rules: the first one's page wins over the second one's error.
    await sandbox.faults([{"page_rate": 1}, {"error_rate": 1}])
    assert (await sandbox.read()).is_page

    await sandbox.faults([{"page_rate": 0.5}])
    answers = [await sandbox.read() for _ in range(40)]
    pages = sum(a.is_page for a in answers)
    assert 0 < pages < 40
    assert all(a.is_page or (a.status == 200 and a.json["sku"] == "CR-000001") for a in answers)
