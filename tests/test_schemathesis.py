"""Schemathesis against the live gateway: every operation in openapi.yaml, stateless, with
generated data; no answer may be a 5xx or contradict the spec (status, content type, body schema).

The gateway runs for real on a loopback port in a background thread with its own event loop (Schemathesis'
`case.call` is synchronous), over the suite's real Redis. Admin operations carry the admin token; every
generated webhook body is serialized here and signed over the exact bytes sent with its source's secret,
so the generated envelopes reach validation and the queue instead of stopping at the signature check.
Nothing is excluded: the dashboard's static files are plain GETs too. No worker runs, so resyncs and
reconciliations only enqueue jobs; a bare worker heartbeat (no job is consumed) keeps /readyz ready, since
its documented 503 for "no worker" would otherwise trip the no-5xx check."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crmcore.redis_conn import create_redis
from gateway.app import create_app
from tests.conftest import make_settings
from tests.support.signing import ADMIN_TOKEN, SECRETS, new_id, sign_headers
from workers.heartbeat import Heartbeat, new_worker_id

SPEC = Path(__file__).resolve().parents[1] / "openapi.yaml"
schema = schemathesis.openapi.from_path(SPEC)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
WEBHOOK_SOURCES = {"/webhooks/cloudretailer": "cloudretailer", "/webhooks/magento": "magento"}


class LiveGateway:
    """The gateway app on 127.0.0.1:<free port>, served from a thread that owns its event loop."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.app = create_app(make_settings(redis_url))
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app)
        self.thread = threading.Thread(target=self.loop.run_forever, name="schemathesis-gateway", daemon=True)
        self.base_url = ""

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self.base_url

    async def _start(self) -> None:
        # A worker's heartbeat (and nothing else of a worker: no job is consumed), so /readyz answers 200.
        self.redis = create_redis(self.redis_url)
        self.heartbeat = Heartbeat(self.redis, new_worker_id(), 0.5, lambda: 0)
        await self.heartbeat.beat()
        self.heartbeat.start()
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.heartbeat.stop()
        await self.redis.aclose()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def live_gateway(redis_url: str) -> Iterator[str]:
    redis_sync.Redis.from_url(redis_url).flushdb()
    gateway = LiveGateway(redis_url)
    yield gateway.start()
    gateway.stop()
    redis_sync.Redis.from_url(redis_url).flushdb()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _wire_body(body: Any) -> bytes:
    """The exact bytes to sign and send. Schemathesis also tries a required body left out (sent empty) and
    raw bytes that are not JSON (sent as they are); everything else is a JSON value."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_gateway_conforms_to_openapi(case: Any, live_gateway: str, http: requests.Session) -> None:
    kwargs: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if case.path.startswith("/admin/") and not case.path.startswith("/admin/ui"):
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    if source := WEBHOOK_SOURCES.get(case.path):
        body = _wire_body(case.body)
        signed = sign_headers(SECRETS[source], new_id(), body)
        case.headers = {**(case.headers or {}), **signed}
        kwargs["data"] = body
    response = case.call(base_url=live_gateway, session=http, headers=headers, **kwargs)
    case.validate_response(response, checks=CHECKS, headers={**(case.headers or {}), **headers})
