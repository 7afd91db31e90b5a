"""The admin verbs (`crmagento status`, `events`, `dead-letters`, `resync`, `reconcile`, `jobs`) as an operator
runs them: the installed `crmagento` in a subprocess with a clean environment, against the gateway on a real
port, real Redis and a real worker. Checks the tables, `--json`, the progress of long jobs and the exit codes
scripts rely on; no run may print the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from crmcore import keys
from crmcore.events import AcceptedEvent, Source
from gateway.app import create_app
from tests.conftest import make_settings, post_event, wait_for
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from tests.test_cli import CLI, clean_env, run_cli
from workers.errors import PermanentError
from workers.registry import HandlerContext, Progress, Registry

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Awaitable[Result]]


def _env(url: str, **extra: str | None) -> dict[str, str]:
    # COLUMNS: wide tables, so ids are never folded across lines in what the tests read.
    env = clean_env(CRMAGENTO_ADMIN_URL=url, CRMAGENTO_ADMIN_TOKEN=ADMIN_TOKEN, COLUMNS="250")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _checked(code: int | None, out: bytes, err: bytes) -> Result:
    result = Result(code if code is not None else -1, out.decode(), err.decode())
    assert ADMIN_TOKEN not in result.out + result.err, "the CLI printed the admin token"
    assert "Traceback" not in result.err, result.err
    return result


def _cli_for(url: str, cwd: Path) -> Run:
    async def run(*args: str, **env: str | None) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, env=_env(url, **env), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return _checked(proc.returncode, out, err)

    return run


@pytest.fixture
def cli(gateway: TestClient, tmp_path: Path) -> Run:
    """`crmagento ...` against the test gateway; keyword arguments set (or, with None, drop) variables."""
    return _cli_for(f"http://{gateway.host}:{gateway.port}", tmp_path)


async def _send(gateway: TestClient, product_id: str = "P-1", msg_id: str | None = None) -> str:
    msg_id = msg_id or new_id()
    body = envelope("product.updated", {"product_id": product_id, "sku": f"SKU-{product_id}"})
    resp = await post_event(gateway, "cloudretailer", body, msg_id=msg_id)
    assert resp.status == 202, await resp.text()
    return msg_id


async def _event_status(gateway: TestClient, msg_id: str) -> str:
    return (await (await gateway.get(f"/admin/events/{msg_id}", headers=AUTH)).json())["status"]


# ----------------------------------------------------------------------------------------------- help


def test_help_documents_the_admin_verbs_and_exit_codes(tmp_path: Path) -> None:
    result = run_cli(["--help"], clean_env(COLUMNS="200"), tmp_path)
    assert result.returncode == 0
    for verb in ("status", "resync", "reconcile", "events", "dead-letters", "jobs", "CRMAGENTO_ADMIN_URL"):
        assert verb in result.stdout, verb
    text = " ".join(result.stdout.split())
    for code in ("0 ok", "1 a job failed", "2 bad usage", "3 gateway unreachable", "4 admin token refused"):
        assert code in text, code


# ----------------------------------------------------------------------------------------------- reading


async def test_status_as_table_and_json(cli: Run, gateway: TestClient, redis: Redis) -> None:
    await _send(gateway)
    await redis.hset(keys.REPORTS, "order-poll", orjson.dumps({"cursor": "2026-01-31T10:00:00Z", "orders": 4}))
    snap = (await cli("status", "--json")).json()
    assert snap["redis"] == "ok" and snap["queue_depth"] == 1 and snap["recent_events"] == 1
    assert snap["reports"]["order-poll"]["orders"] == 4

    table = await cli("status")
    assert table.code == 0
    assert "Queue depth" in table.out and "No worker has reported" in table.out
    assert "Last report: order-poll" in table.out and "2026-01-31T10:00:00Z" in table.out
    # Per domain: no change applied yet, so "never" for each of them.
    assert "Domains (last 15 minutes)" in table.out
    assert all(domain in table.out for domain in ("products", "stock", "categories", "customers", "orders"))
    assert "never" in table.out


async def test_events_list_and_show(cli: Run, gateway: TestClient) -> None:
    first = await _send(gateway, "P-1")
    odd = await _send(gateway, "P-2", msg_id="ord/2026 #7")  # a sender's id with `/`, space and `#`
    listed = (await cli("events", "list", "--json")).json()["items"]
    assert [e["id"] for e in listed] == [odd, first]
    assert [e["id"] for e in (await cli("events", "list", "--limit", "1", "--json")).json()["items"]] == [odd]
    assert (await cli("events", "list", "--status", "dead", "--json")).json() == {"items": []}

    table = await cli("events", "list")
    assert table.code == 0 and first in table.out and "cloudretailer:product:P-1" in table.out

    record = (await cli("events", "show", odd, "--json")).json()
    assert record["id"] == odd and record["status"] == "queued" and record["data"]["sku"] == "SKU-P-2"
    shown = await cli("events", "show", first)
    assert shown.code == 0 and "SKU-P-1" in shown.out and "queued" in shown.out

    # The same id from Magento too: ambiguous until --source says whose.
    order = envelope("order.completed", {"order_id": 12, "increment_id": "000000012"})
    assert (await post_event(gateway, "magento", order, msg_id=first)).status == 202
    ambiguous = await cli("events", "show", first)
    assert ambiguous.code == 2 and "source" in ambiguous.err
    assert (await cli("events", "show", first, "--source", "magento", "--json")).json()["type"] == "order.completed"

    missing = await cli("events", "show", new_id())
    assert missing.code == 1 and "no event" in missing.err


async def test_dead_letters_list_show_and_replay(cli: Run, gateway: TestClient, redis: Redis, start_worker) -> None:
    broken = {"on": True}
    handled: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        if broken["on"]:
            raise PermanentError("attribute set 'Shoes' does not exist in Magento")
        handled.extend(e.id for e in events)

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    await start_worker(registry)
    msg_id = await _send(gateway)
    await wait_for(lambda: _is(gateway, msg_id, "dead"))

    page = (await cli("dead-letters", "list", "--json")).json()
    assert page["total"] == 1
    (dl,) = page["items"]
    assert dl["event_ids"] == [msg_id] and "Shoes" in dl["reason"]
    table = await cli("dead-letters", "list")
    assert table.code == 0 and dl["id"] in table.out and "does not exist in Magento" in table.out
    assert "1 in all" in table.out
    assert (await cli("dead-letters", "show", dl["id"], "--json")).json()["entity"] == "cloudretailer:product:P-1"
    shown = await cli("dead-letters", "show", dl["id"])
    assert shown.code == 0 and "Shoes" in shown.out

    status = (await cli("status", "--json")).json()
    assert status["dead_letters"] == 1 and len(status["workers"]) == 1
    assert "heartbeat age" in (await cli("status")).out

    broken["on"] = False
    replayed = await cli("dead-letters", "replay", dl["id"])
    assert replayed.code == 0, replayed.err
    assert f"dead letter {dl['id']} requeued" in replayed.out and msg_id in replayed.out
    await wait_for(lambda: _is(gateway, msg_id, "done"))
    assert handled == [msg_id]
    assert (await cli("dead-letters", "list", "--json")).json() == {"total": 0, "items": []}

    again = await cli("dead-letters", "replay", dl["id"])
    assert again.code == 1 and "no dead letter" in again.err
    assert (await cli("dead-letters", "show", "0123456789abcdef")).code == 1


async def _is(gateway: TestClient, msg_id: str, status: str) -> bool:
    return await _event_status(gateway, msg_id) == status


# ----------------------------------------------------------------------------------------------- admin jobs


async def test_resync_follows_the_job_until_done_showing_each_step(
    gateway: TestClient, tmp_path: Path, start_worker
) -> None:
    steps = [asyncio.Event() for _ in range(3)]

    async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=0, total=len(params["skus"]))
        for i, step in enumerate(steps):
            await step.wait()  # the test lets each step happen only once the CLI has shown the one before
            await progress(done=i + 1)
        return {"updated": len(params["skus"])}

    registry = Registry()
    registry.register_job("resync-products", resync_products)
    await start_worker(registry)

    url = f"http://{gateway.host}:{gateway.port}"
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "resync",
        "products",
        "SKU-1",
        "SKU-2",
        "SKU-3",
        env=_env(url),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    while line := (await asyncio.wait_for(proc.stderr.readline(), 30)).decode():
        seen.append(line.strip())
        for i in range(3):
            if line.rstrip().endswith(f"running {i}/3"):
                steps[i].set()
    out = (await proc.stdout.read()).decode()
    code = await proc.wait()
    _checked(code, out.encode(), "\n".join(seen).encode())
    assert code == 0, seen
    # One line per change of state, in order: every step was shown while the job was running.
    progress = [line.split(": ", 1)[1] for line in seen]
    assert [p for p in progress if p.startswith("running")][:3] == [f"running {i}/3" for i in range(3)]
    assert progress[-1] == "done 3/3"
    assert "result.updated" in out and "done" in out


async def test_resync_bodies_no_wait_and_json(cli: Run, gateway: TestClient) -> None:
    # No worker: the jobs stay queued, and --no-wait returns at once with the job id.
    queued = (await cli("resync", "products", "SKU-1", "SKU-2", "--no-wait", "--json")).json()
    assert queued["status"] == "queued" and queued["kind"] == "resync-products"
    job = (await cli("jobs", "show", queued["job_id"], "--json")).json()
    assert job["params"] == {"skus": ["SKU-1", "SKU-2"]} and job["status"] == "queued"

    expected = {
        ("orders", "12", "13", "--since", "2026-01-01T00:00:00Z"): {
            "order_ids": [12, 13],
            "since": "2026-01-01T00:00:00Z",
        },
        ("categories", "CAT-1"): {"category_ids": ["CAT-1"]},
        ("customers", "C-7", "C-8"): {"customer_ids": ["C-7", "C-8"]},
        ("products",): {},  # every product
    }
    for args, params in expected.items():
        result = await cli("resync", *args, "--no-wait")
        assert result.code == 0, result.err
        job_id = result.out.strip()
        assert "crmagento jobs show" in result.err
        assert (await cli("jobs", "show", job_id, "--json")).json()["params"] == params, args

    listed = (await cli("jobs", "list", "--json")).json()["items"]
    assert len(listed) == 5 and queued["job_id"] in {j["id"] for j in listed}
    table = await cli("jobs", "list")
    assert table.code == 0 and queued["job_id"] in table.out and "queued" in table.out
    shown = await cli("jobs", "show", queued["job_id"])
    assert shown.code == 0 and "SKU-1" in shown.out and "0/?" in shown.out


async def test_reconcile_shows_its_report_and_a_failed_job_exits_1(cli: Run, gateway: TestClient, start_worker) -> None:
    runs: list[dict[str, Any]] = []

    async def reconcile(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        runs.append(params)
        if len(runs) > 1:
            raise PermanentError("Magento is not configured: set CRMAGENTO_MAGENTO_URL")
        report = {"skus_compared": 40, "drift": 2, "fixed": 0 if params["dry_run"] else 2}
        await ctx.redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps(report))  # as the real job does
        await progress(done=40, total=40)
        return report

    registry = Registry()
    registry.register_job("reconcile-inventory", reconcile)
    await start_worker(registry)

    done = await cli("reconcile", "inventory", "--dry-run", "--json")
    assert done.code == 0, done.err
    job = done.json()
    assert job["status"] == "done" and job["params"] == {"dry_run": True}
    assert job["result"] == {"skus_compared": 40, "drift": 2, "fixed": 0}
    assert job["progress"] == {"done": 40, "failed": 0, "total": 40}
    assert done.err == ""  # --json: no progress lines
    assert (await cli("status", "--json")).json()["reports"]["reconcile-inventory"]["drift"] == 2

    failed = await cli("reconcile", "inventory")
    assert failed.code == 1
    assert "failed: Magento is not configured: set CRMAGENTO_MAGENTO_URL" in failed.err
    assert runs[-1] == {"dry_run": False}
    job_id = failed.err.split("job ", 1)[1].split(" ", 1)[0]
    again = await cli("jobs", "show", job_id)
    assert again.code == 1 and "CRMAGENTO_MAGENTO_URL" in again.out


async def test_progress_bar_on_a_terminal(cli: Run, gateway: TestClient, start_worker) -> None:
    async def resync_customers(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        for i in range(1, 5):
            await asyncio.sleep(0.3)
            await progress(done=i, total=4)
        return {"created": 1, "updated": 3}

    registry = Registry()
    registry.register_job("resync-customers", resync_customers)
    await start_worker(registry)
    # TTY_COMPATIBLE=1: rich treats stderr as a terminal and draws the live bar.
    result = await cli("resync", "customers", TTY_COMPATIBLE="1")
    assert result.code == 0, result.err
    assert "4/4" in result.err and "\x1b[" in result.err  # the bar, drawn with terminal escapes
    assert "result.created" in result.out


# ----------------------------------------------------------------------------------------------- failing


async def test_usage_and_config_errors_exit_2(cli: Run, gateway: TestClient, redis: Redis) -> None:
    for args in (
        ("resync", "widgets"),
        ("resync", "orders", "12x"),
        ("resync", "products", "--since", "2026-01-01T00:00:00Z"),
        ("resync", "orders", "--since", "yesterday"),  # refused by the gateway (422)
        ("events", "list", "--limit", "0"),
        ("events", "list", "--status", "lost"),
        ("events", "show", "x", "--source", "pos"),
        ("dead-letters",),
    ):
        result = await cli(*args, "--no-wait") if args[0] == "resync" else await cli(*args)
        assert result.code == 2, (args, result.out, result.err)
    assert await redis.zcard("crmagento:queue") == 0  # nothing was queued by any of them

    no_token = await cli("status", CRMAGENTO_ADMIN_TOKEN=None)
    assert no_token.code == 2 and "CRMAGENTO_ADMIN_TOKEN" in no_token.err
    bad_url = await cli("status", CRMAGENTO_ADMIN_URL="ftp://example.com")
    assert bad_url.code == 2 and "CRMAGENTO_ADMIN_URL" in bad_url.err
    # A user and password in the URL: refused, and never printed (the URL would be named in every error).
    for url in ("http://ops:hunter2pw@127.0.0.1:1", "https://:hunter2pw@gateway.example"):
        with_login = await cli("status", CRMAGENTO_ADMIN_URL=url)
        assert with_login.code == 2 and "CRMAGENTO_ADMIN_URL" in with_login.err
        assert "hunter2pw" not in with_login.err + with_login.out
    # The token may also come from the gateway's own list (the first one).
    from_list = await cli(
        "status", CRMAGENTO_ADMIN_TOKEN=None, CRMAGENTO_ADMIN_TOKENS=f"{ADMIN_TOKEN},another-token-5e81c0b7f29a4d36"
    )
    assert from_list.code == 0, from_list.err


async def test_a_refused_token_exits_4(cli: Run, gateway: TestClient) -> None:
    for args in (("status",), ("dead-letters", "replay", "abc"), ("resync", "products", "--no-wait")):
        result = await cli(*args, CRMAGENTO_ADMIN_TOKEN="not-the-token-0123456789")
        assert result.code == 4, (args, result.err)
        assert "refused the admin token" in result.err and "not-the-token" not in result.err


async def test_unreachable_gateway_exits_3(tmp_path: Path) -> None:
    cli = _cli_for("http://127.0.0.1:1", tmp_path)  # nothing listens on port 1
    for args in (("status",), ("events", "list"), ("resync", "products", "--no-wait")):
        result = await cli(*args)
        assert result.code == 3, (args, result.err)
        assert "cannot reach the gateway at http://127.0.0.1:1" in result.err


@pytest.fixture
async def gateway_without_redis() -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(make_settings("redis://127.0.0.1:1/0"))))
    await client.start_server()
    yield client
    await client.close()


async def test_a_failing_gateway_exits_3(gateway_without_redis: TestClient, tmp_path: Path) -> None:
    cli = _cli_for(f"http://{gateway_without_redis.host}:{gateway_without_redis.port}", tmp_path)
    status = await cli("status")
    assert status.code == 3 and "Redis is not answering" in status.err
    for args in (("dead-letters", "list"), ("jobs", "show", "x"), ("reconcile", "inventory")):
        result = await cli(*args)
        assert result.code == 3, (args, result.err)
        assert "503" in result.err
