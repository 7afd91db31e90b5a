"""The whole product for end-to-end tests: sandbox Magento and Cloud Retailer on loopback, the real gateway
(TestServer) with their webhooks pointed at it, and real arq workers with the shipped sync rules.

    async with full_stack(redis_url, products=20) as stack:
        await stack.start_worker()
        ... stack.cr_api / stack.magento_api (aiohttp sessions on the sandboxes), stack.gateway (TestClient)

Settings point the clients at the sandboxes; `settings_overrides` adjust them. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from crmcore.redis_conn import create_redis
from crmcore.settings import Settings
from gateway.app import create_app
from sandbox.catalog import LINKED_STORE_ID
from sandbox.cloudretailer.app import create_app as create_cr
from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
from sandbox.cloudretailer.keys import SENDER
from sandbox.magento.app import create_app as create_magento
from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.routing import CALLBACKS
from tests.conftest import make_settings
from tests.support.gateway_server import GatewayServer
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET
from workers.registry import Registry, default_registry
from workers.worker import run_worker

CR_API_KEY = "cr-sandbox-api-key-for-tests-0001"
MAGENTO_TOKEN = "sandboxaccesstoken00000000000001"  # the sandbox's default integration access token
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Stack:
    settings: Settings
    redis: Redis
    gateway: TestClient
    magento_server: TestServer
    cr_server: TestServer
    magento_url: str
    cr_url: str
    magento_api: aiohttp.ClientSession
    cr_api: aiohttp.ClientSession
    _workers: list[tuple[asyncio.Task[None], asyncio.Event]] = field(default_factory=list)

    @property
    def magento_app(self) -> web.Application:
        return self.magento_server.app  # type: ignore[return-value]

    @property
    def cr_app(self) -> web.Application:
        return self.cr_server.app  # type: ignore[return-value]

    async def start_worker(self, registry: Registry | None = None, settings: Settings | None = None) -> None:
        stop = asyncio.Event()
        s = settings or self.settings
        task = asyncio.create_task(run_worker(s, stop, registry or default_registry(s)))
        self._workers.append((task, stop))

    async def stop_workers(self) -> None:
        for _task, stop in self._workers:
            stop.set()
        for task, _ in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        self._workers.clear()

    async def deliveries_landed(self, within: float = 10.0) -> None:
        """Until every webhook and callback the sandboxes have started sending was answered (or given up): after
        this, a change they did not send for cannot show up late in the event log."""
        await self.cr_app[SENDER].drain(within)
        await self.magento_app[CALLBACKS].drain(within)

    async def magento(self, method: str, path: str, store: str = "all", **kwargs: Any) -> Any:
        """Call the sandbox Magento as an admin would (not through the gateway's client)."""
        async with self.magento_api.request(
            method, f"{self.magento_url}/rest/{store}/V1/{path.lstrip('/')}", **kwargs
        ) as r:
            body = await r.json(content_type=None)
            if r.status >= 400:
                raise AssertionError(f"{method} {path} -> {r.status}: {body}")
            return body

    async def cr(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the sandbox Cloud Retailer as its back office would."""
        async with self.cr_api.request(method, f"{self.cr_url}/{path.lstrip('/')}", **kwargs) as r:
            body = await r.json(content_type=None) if r.content_type.endswith("json") else await r.read()
            if r.status >= 400:
                raise AssertionError(f"{method} {path} -> {r.status}: {body}")
            return body

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self.gateway.request(method, path, headers=ADMIN, **kwargs)
        return resp.status, await resp.json(content_type=None)


@contextlib.asynccontextmanager
async def full_stack(
    redis_url: str,
    *,
    products: int = 20,
    customers: int = 5,
    magento_products: int = 0,
    magento_config: dict[str, Any] | None = None,
    cr_config: dict[str, Any] | None = None,
    styles: bool = False,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    redis = create_redis(redis_url)
    await redis.flushdb()
    # The gateway first: the sandboxes need its URL for their webhooks.
    placeholder = make_settings(redis_url)
    gateway = TestClient(GatewayServer(create_app(placeholder)))
    await gateway.start_server()
    hooks = str(gateway.make_url("/webhooks")).rstrip("/")
    magento_server = TestServer(
        create_magento(
            MagentoSandboxConfig(
                callback_url=f"{hooks}/magento",
                callback_secret=SecretStr(MAGENTO_SECRET),
                products=magento_products,
                **(magento_config or {}),
            )
        )
    )
    cr_server = TestServer(
        create_cr(
            CloudRetailerSandboxConfig(
                api_key=SecretStr(CR_API_KEY),
                gateway_webhook_url=f"{hooks}/cloudretailer",
                webhook_secret=SecretStr(CR_SECRET),
                products=products,
                customers=customers,
                styles=styles,
                **(cr_config or {}),
            )
        )
    )
    await magento_server.start_server()
    await cr_server.start_server()
    magento_url = str(magento_server.make_url("")).rstrip("/")
    cr_url = str(cr_server.make_url("/api/v1")).rstrip("/")
    values: dict[str, Any] = {
        "magento_url": magento_url,
        "magento_token": MAGENTO_TOKEN,
        "cr_url": cr_url,
        "cr_api_key": CR_API_KEY,
        "cr_store_id": LINKED_STORE_ID,
        "http_retries": 2,
    }
    values.update(settings_overrides)
    settings = make_settings(redis_url, **values)
    magento_api = aiohttp.ClientSession(headers={"Authorization": f"Bearer {MAGENTO_TOKEN}"})
    cr_api = aiohttp.ClientSession(headers={"Authorization": f"Bearer {CR_API_KEY}"})
    stack = Stack(settings, redis, gateway, magento_server, cr_server, magento_url, cr_url, magento_api, cr_api)
    try:
        yield stack
    finally:
        await stack.stop_workers()
        await magento_api.close()
        await cr_api.close()
        await cr_server.close()
        await magento_server.close()
        await gateway.close()
        await redis.aclose()
