"""Shared fixtures: a real Redis (the machine's when it answers, else an embedded one), the gateway over
real HTTP on loopback, and in-process workers. Nothing at our own boundaries is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis as redis_sync
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis.asyncio import Redis

from crmcore.redis_conn import create_redis
from crmcore.settings import Settings
from gateway.app import create_app
from gateway.embedded_redis import EmbeddedRedis
from tests.support.gateway_server import GatewayServer
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET, SECRETS, new_id, sign_headers
from workers.registry import Registry
from workers.worker import run_worker

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _answers(url: str) -> bool:
    try:
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return bool(client.ping())
    except redis_sync.RedisError:
        return False


CLAIMS = "crmagento-tests:db:"


def _claim_local_db() -> tuple[str, str] | None:
    """A database of the local Redis that no other test run is using (tests FLUSHDB it): two runs at once
    (a developer's and CI's, or parallel sessions) must not wipe each other's state. The claims live in
    db 0, which the tests never flush."""
    claims = redis_sync.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=0.5, socket_timeout=0.5)
    for db in range(14, 1, -1):
        if claims.set(f"{CLAIMS}{db}", os.getpid(), nx=True, ex=3 * 3600):
            return f"redis://127.0.0.1:6379/{db}", f"{CLAIMS}{db}"
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("CRMAGENTO_TEST_REDIS_URL"):
        yield url
    elif _answers(LOCAL_REDIS) and (claimed := _claim_local_db()):
        url, claim = claimed
        yield url
        redis_sync.Redis.from_url(LOCAL_REDIS).delete(claim)
    else:
        embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"), fsync="everysec")
        yield embedded.start()
        embedded.stop()


def make_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": SecretStr(redis_url),
        "cr_webhook_secrets": [SecretStr(CR_SECRET)],
        "magento_webhook_secrets": [SecretStr(MAGENTO_SECRET)],
        "admin_tokens": [SecretStr(ADMIN_TOKEN)],
        "job_retry_base_seconds": 0.05,
        "job_retry_max_seconds": 0.2,
        "worker_poll_delay_seconds": 0.02,
        "worker_heartbeat_seconds": 0.5,
        "worker_shutdown_grace_seconds": 2,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = create_redis(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def gateway(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    client = TestClient(GatewayServer(create_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def post_event(
    client: TestClient,
    source: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    secret: str | None = None,
    timestamp: float | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    signed = sign_headers(secret or SECRETS[source], msg_id or new_id(), body, timestamp)
    signed.update(headers or {})
    return await client.post(f"/webhooks/{source}", data=body, headers=signed)


class WorkerHandle:
    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self.task, self.stop = task, stop

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def start_worker(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    handles: list[WorkerHandle] = []

    async def start(registry: Registry, worker_settings: Settings | None = None) -> WorkerHandle:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(worker_settings or settings, stop, registry))
        handle = WorkerHandle(task, stop)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.close()


async def wait_for(predicate: Callable[[], Any], within: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
