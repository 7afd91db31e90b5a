"""Redis Sentinel through settings: a gateway and a worker that know only the Sentinel find the master, a
webhook goes through, an admin job too, and both keep working after a failover to the replica, and again
after that new primary is killed.

Everything runs on a master, a replica and a Sentinel this test starts itself (with passwords on both the
master and the Sentinel), never on the machine's shared Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from crmagento.runtime import redis_for
from crmcore.redis_conn import SentinelRedis, redis_from_settings
from crmcore.settings import Settings
from tests.support.cluster import Proc, cluster_env, post_webhook, spawn_gateway, spawn_worker, wait_healthy
from tests.support.redis_procs import RedisProcess
from tests.support.signing import ADMIN_TOKEN

MASTER_NAME = "crm-test"
PASSWORD = "master-password-for-tests"
SENTINEL_PASSWORD = "sentinel-password-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Replicated:
    def __init__(self, master: RedisProcess, replica: RedisProcess, sentinel: RedisProcess) -> None:
        self.master, self.replica, self.sentinel = master, replica, sentinel

    def master_port(self) -> int:
        addr = self.sentinel.client(SENTINEL_PASSWORD).sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(addr[1])

    def role(self, server: RedisProcess) -> str:
        return str(server.client(PASSWORD).info("replication")["role"])


def _until(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Replicated]:
    auth = [f"requirepass {PASSWORD}", f"masterauth {PASSWORD}"]
    master = RedisProcess(tmp_path / "master", auth)
    replica = RedisProcess(tmp_path / "replica", [*auth, f"replicaof 127.0.0.1 {master.port}"])
    sentinel = RedisProcess(
        tmp_path / "sentinel",
        [
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1",
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} 2000",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
        ],
        sentinel=True,
    )
    started: list[RedisProcess] = []
    try:
        for server, password in ((master, PASSWORD), (replica, PASSWORD)):
            started.append(server.start(password))
        _until(
            lambda: replica.client(PASSWORD).info("replication")["master_link_status"] == "up", 10, "replica in sync"
        )
        started.append(sentinel.start(SENTINEL_PASSWORD))
        # The Sentinel learns of the replica from the master's INFO; a failover needs it known and healthy.
        _until(
            lambda: any(r["flags"] == "slave" for r in sentinel.client(SENTINEL_PASSWORD).sentinel_slaves(MASTER_NAME)),
            15,
            "sentinel sees the replica",
        )
        yield Replicated(master, replica, sentinel)
    finally:
        for server in reversed(started):
            server.stop()


def _sentinel_env(sentinel: RedisProcess) -> dict[str, str]:
    return {
        "CRMAGENTO_REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "CRMAGENTO_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "CRMAGENTO_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
        # Only the master's password and the database: the Sentinel says where the master is.
        "CRMAGENTO_REDIS_URL": f"redis://:{PASSWORD}@/2",
    }


def _sentinel_settings(sentinel: RedisProcess) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_sentinels=[f"127.0.0.1:{sentinel.port}"],
        redis_sentinel_master=MASTER_NAME,
        redis_sentinel_password=SecretStr(SENTINEL_PASSWORD),
        redis_url=SecretStr(f"redis://:{PASSWORD}@/2"),
    )


async def _wait(predicate: Any, within: float, what: str, procs: list[Proc]) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.output()}" for p in procs)
            raise AssertionError(f"{what}: not within {within} s\n{logs}")
        await asyncio.sleep(0.1)


async def _accepted(session: aiohttp.ClientSession, gateway: Proc, customer: str) -> str | None:
    """The sender's side: a 503 (the queue could not take it) is retried, as Cloud Retailer does."""
    status, msg_id = await post_webhook(session, gateway, "customer.updated", {"customer_id": customer})
    assert status in (202, 503), status
    return msg_id if status == 202 else None


async def _seen(redis: Redis, msg_id: str) -> bool:
    return await redis.hget("test:seen", msg_id) == b"1"


@pytest.mark.slow
async def test_gateway_and_worker_through_sentinel_survive_a_failover(replicated: Replicated, tmp_path: Path) -> None:
    env = cluster_env(**_sentinel_env(replicated.sentinel))
    gateway = spawn_gateway("gateway", env, tmp_path)
    worker = spawn_worker("worker", env, tmp_path)
    procs = [gateway, worker]
    redis = redis_from_settings(_sentinel_settings(replicated.sentinel))
    assert isinstance(redis, SentinelRedis)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, gateway)
            first = await _accepted(session, gateway, "C-before")
            assert first is not None
            await _wait(lambda: _seen(redis, first), 20, "event handled through the sentinel", procs)
            assert (await redis.connection_pool.get_master_address())[1] == replicated.master.port
            assert replicated.master.client(PASSWORD, db=2).hget("test:seen", first) == "1"  # the URL's db
            assert await _ready(session, gateway)

            # An admin job: the gateway enqueues it with an ArqRedis on the Sentinel pool, the worker's long
            # queue (its own Sentinel pool) takes it. (It fails: these workers have no Magento; taken is enough.)
            async with session.post(f"{gateway.base}/admin/resync/customers", json={}, headers=ADMIN) as resp:
                assert resp.status == 202, await resp.text()
                job = (await resp.json())["job_id"]

            async def job_taken() -> bool:
                async with session.get(f"{gateway.base}/admin/jobs/{job}", headers=ADMIN) as resp:
                    return (await resp.json())["status"] != "queued"

            await _wait(job_taken, 20, "admin job taken by the worker", procs)

            replicated.sentinel.client(SENTINEL_PASSWORD).execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            await asyncio.to_thread(
                _until,
                lambda: (
                    replicated.master_port() == replicated.replica.port
                    and replicated.role(replicated.replica) == "master"
                    and replicated.role(replicated.master) == "slave"
                ),
                20,
                "failover to the replica",
            )

            after: str | None = None

            async def accepted_after() -> bool:
                nonlocal after
                after = await _accepted(session, gateway, "C-after")
                return after is not None

            await _wait(accepted_after, 20, "gateway accepting again after the failover", procs)
            assert after is not None
            await _wait(lambda: _seen(redis, after), 30, "worker handling again after the failover", procs)
            # The same client, and the gateway and worker, now write to the promoted replica; what was
            # accepted before the failover was replicated there.
            assert (await redis.connection_pool.get_master_address())[1] == replicated.replica.port
            assert await _seen(redis, first)
            assert await _wait(lambda: _ready(session, gateway), 20, "/readyz after the failover", procs)

            # Now unplanned: the new primary dies (SIGKILL) and the Sentinel promotes the old one, which it
            # turned into a replica of the new one above.
            old_primary = replicated.master.client(PASSWORD)
            await asyncio.to_thread(
                _until,
                lambda: old_primary.info("replication")["master_link_status"] == "up",
                15,
                "old primary replicating from the new one",
            )
            assert replicated.replica.process is not None
            replicated.replica.process.kill()
            await asyncio.to_thread(
                _until,
                lambda: (
                    replicated.master_port() == replicated.master.port
                    and replicated.role(replicated.master) == "master"
                ),
                30,
                "sentinel promoting the old primary after the crash",
            )
            crashed: str | None = None

            async def accepted_after_crash() -> bool:
                nonlocal crashed
                crashed = await _accepted(session, gateway, "C-after-crash")
                return crashed is not None

            await _wait(accepted_after_crash, 20, "gateway accepting after the crash", procs)
            assert crashed is not None
            await _wait(lambda: _seen(redis, crashed), 30, "worker handling after the crash", procs)
            assert await _seen(redis, first) and await _seen(redis, after)
            assert gateway.process.poll() is None and worker.process.poll() is None
    finally:
        await redis.aclose()
        for proc in procs:
            proc.stop()


async def _ready(session: aiohttp.ClientSession, gateway: Proc) -> bool:
    async with session.get(f"{gateway.base}/readyz") as resp:
        return resp.status == 200


def test_run_starts_no_embedded_redis_when_sentinels_are_set(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, redis_sentinels=["127.0.0.1:1"], redis_sentinel_master=MASTER_NAME
    )
    with redis_for(settings) as ready:
        assert ready is settings and ready.redis_url is None
    assert not (tmp_path / "redis.sock").exists() and not list(tmp_path.iterdir())
