"""Each remote's state and parked backlog as the operator sees it: /admin/status (against the spec), /metrics
and `crmagento status`, over real HTTP and Redis. The state is written the way the workers write it
(crmcore/remotes.py's keys and Lua), the parked entities by hand."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from crmcore import keys
from crmcore.clock import iso_ms
from crmcore.remotes import MARK_DOWN_LUA, Remote, drain_rank
from tests.support.signing import ADMIN_TOKEN
from tests.test_admin_cli import Run, _cli_for
from tests.test_openapi import check

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def cli(gateway: TestClient, tmp_path: Path) -> Run:
    return _cli_for(f"http://{gateway.host}:{gateway.port}", tmp_path)


async def mark_down(redis: Redis, remote: Remote, state: str, error: str, setting: str = "") -> int:
    """What a worker does when a call to `remote` fails in a way that is about the remote, not the event."""
    now_ms = int(time.time() * 1000)
    await redis.eval(MARK_DOWN_LUA, 1, keys.remote(remote), state, error, setting, now_ms)
    return now_ms


async def park(redis: Redis, remote: Remote, events_per_entity: dict[str, int]) -> None:
    now_ms = int(time.time() * 1000)
    for entity, n in events_per_entity.items():
        await redis.zadd(keys.remote_parked(remote), {entity: drain_rank(entity, now_ms)})
        if n:
            await redis.rpush(keys.pending(entity), *[f"event-{entity}-{i}" for i in range(n)])


async def status(gateway: TestClient) -> dict[str, Any]:
    resp = await gateway.get("/admin/status", headers=AUTH)
    assert resp.status == 200
    return await check(resp, "GET", "/admin/status")


async def metrics(gateway: TestClient) -> str:
    resp = await gateway.get("/metrics")
    assert resp.status == 200
    return await resp.text()


async def test_both_remotes_are_up_without_a_record(gateway: TestClient, redis: Redis) -> None:
    remotes = (await status(gateway))["remotes"]
    assert set(remotes) == {"magento", "cloudretailer"}
    for r in remotes.values():
        assert r["state"] == "up" and r["summary"] == "up"
        assert r["since"] is None and r["error"] is None and r["setting"] is None and r["next_probe"] is None
        assert r["parked"] == 0 and r["parked_events"] == 0 and r["outages"] == 0
    text = await metrics(gateway)
    assert 'crmagento_remote_up{remote="magento"} 1.0' in text
    assert 'crmagento_remote_up{remote="cloudretailer"} 1.0' in text
    assert 'crmagento_parked_events{remote="magento"} 0.0' in text


async def test_unavailable_shows_since_error_and_the_parked_backlog(gateway: TestClient, redis: Redis) -> None:
    down_ms = await mark_down(redis, Remote.MAGENTO, "unavailable", "magento 503 Service Unavailable")
    await park(redis, Remote.MAGENTO, {"cloudretailer:product:P-1": 2, "cloudretailer:category:C-1": 1})
    await park(redis, Remote.MAGENTO, {"cloudretailer:product:P-2": 0})  # parked, its events since handled

    remotes = (await status(gateway))["remotes"]
    magento = remotes["magento"]
    since = iso_ms(down_ms)
    assert magento["state"] == "unavailable" and magento["since"] == since
    assert magento["error"] == "magento 503 Service Unavailable" and magento["setting"] is None
    assert magento["summary"] == f"unavailable since {since} (magento 503 Service Unavailable)"
    assert magento["outages"] == 1 and magento["next_probe"] is not None
    assert magento["parked"] == 3 and magento["parked_events"] == 3
    # The other remote is unaffected.
    assert remotes["cloudretailer"]["state"] == "up" and remotes["cloudretailer"]["parked"] == 0

    text = await metrics(gateway)
    assert 'crmagento_remote_up{remote="magento"} 0.0' in text
    assert 'crmagento_parked_events{remote="magento"} 3.0' in text
    assert 'crmagento_remote_up{remote="cloudretailer"} 1.0' in text
    assert 'crmagento_parked_events{remote="cloudretailer"} 0.0' in text

    # /readyz stays about the gateway: it still takes webhooks, so a load balancer must keep it while Magento
    # is down. A fresh heartbeat stands in for a worker (a real one might probe Magento and change the state).
    await redis.zadd(keys.WORKERS, {"worker-1": time.time()})
    assert (await gateway.get("/readyz")).status == 200


async def test_misconfigured_names_the_setting(gateway: TestClient, redis: Redis) -> None:
    await mark_down(redis, Remote.CLOUDRETAILER, "misconfigured", "401: API key refused", "CRMAGENTO_CR_API_KEY")
    cr = (await status(gateway))["remotes"]["cloudretailer"]
    assert cr["state"] == "misconfigured" and cr["setting"] == "CRMAGENTO_CR_API_KEY"
    assert cr["summary"] == "misconfigured: 401: API key refused"
    assert 'crmagento_remote_up{remote="cloudretailer"} 0.0' in await metrics(gateway)


async def test_cli_status_shows_the_remotes_table(cli: Run, gateway: TestClient, redis: Redis) -> None:
    down_ms = await mark_down(redis, Remote.MAGENTO, "unavailable", "connection refused")
    await mark_down(redis, Remote.CLOUDRETAILER, "misconfigured", "store 'xx' unknown", "CRMAGENTO_CR_STORE_ID")
    await park(redis, Remote.MAGENTO, {"cloudretailer:product:P-1": 4, "cloudretailer:product:P-2": 1})

    table = await cli("status")
    assert table.code == 0, table.err
    assert "Remotes" in table.out
    for header in ("remote", "state", "since", "last error / reason", "parked entities", "parked events"):
        assert header in table.out, header
    magento = next(line for line in table.out.splitlines() if "magento" in line)
    since = iso_ms(down_ms)
    for cell in ("unavailable", since, "connection refused", " 2 ", " 5 "):
        assert cell in magento, (cell, magento)
    cr = next(line for line in table.out.splitlines() if "cloudretailer" in line)
    assert "misconfigured" in cr and "CRMAGENTO_CR_STORE_ID: store 'xx' unknown" in cr

    snap = (await cli("status", "--json")).json()
    assert snap["remotes"]["magento"]["parked_events"] == 5
    assert snap["remotes"]["cloudretailer"]["setting"] == "CRMAGENTO_CR_STORE_ID"
