"""`crmagento demo`: embedded Redis, gateway and worker, then a narrated run of signed webhooks.

Until the sandboxes and sync rules land (#3-#7) the scenario shows the webhook edge: accepted, duplicates
suppressed (also 50 at once), unknown types ignored, bad deliveries refused, and the event log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from crmagento.runtime import bound_port, gateway_running
from gateway.embedded_redis import EmbeddedRedis
from gateway.settings import Settings
from gateway.signatures import signed_headers
from workers.worker import run_worker

console = Console()


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _envelope(event_type: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data})


class _Sender:
    def __init__(self, http: aiohttp.ClientSession, base: str, secrets_by_source: dict[str, str]) -> None:
        self.http, self.base, self.secrets = http, base, secrets_by_source

    async def send(self, source: str, msg_id: str, body: bytes, *, secret: str | None = None) -> tuple[int, dict]:
        headers = signed_headers(secret or self.secrets[source], msg_id, body)
        async with self.http.post(f"{self.base}/webhooks/{source}", data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


async def run_demo(settings: Settings, *, keep_running: bool = False, data_dir: Path | None = None) -> int:
    started = time.monotonic()
    data_dir = (data_dir or settings.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    cr_secret, magento_secret, token = _new_secret(), _new_secret(), secrets.token_urlsafe(24)
    embedded = EmbeddedRedis(data_dir)
    console.rule("[bold]cr-magento-gateway demo")
    console.print(f"Starting an embedded Redis (append-only) in [cyan]{data_dir}[/]")
    url = await asyncio.to_thread(embedded.start)
    port = settings.port if settings.port else _free_port()
    demo_settings = settings.model_copy(
        update={
            "redis_url": SecretStr(url),
            "cr_webhook_secrets": [SecretStr(cr_secret)],
            "magento_webhook_secrets": [SecretStr(magento_secret)],
            "admin_tokens": [SecretStr(token)],
            "log_level": "WARNING",
        }
    )
    stop = asyncio.Event()
    try:
        async with gateway_running(demo_settings, "127.0.0.1", port) as runner:
            base = f"http://127.0.0.1:{bound_port(runner)}"
            worker = asyncio.create_task(run_worker(demo_settings, stop))
            console.print(f"Gateway on [cyan]{base}[/], worker started\n")
            async with aiohttp.ClientSession() as http:
                sender = _Sender(http, base, {"cloudretailer": cr_secret, "magento": magento_secret})
                ok = await _scenario(sender)
                await _show_event_log(http, base, token)
                console.print(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
                _print_urls(base, token, reveal=keep_running)
                if keep_running:
                    console.print("[bold]--keep-running[/]: everything stays up; Ctrl-C to stop.")
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()
            stop.set()
            await worker
    finally:
        stop.set()
        await asyncio.to_thread(embedded.stop)
    return 0 if ok else 1


async def _scenario(sender: _Sender) -> bool:
    table = Table(title="Webhooks sent", show_lines=False)
    for col in ("#", "what", "source", "type", "answer", "expected"):
        table.add_column(col)
    run = secrets.token_hex(3)
    product = _envelope("product.updated", {"product_id": "P-1001", "sku": "TEE-RED-M"})
    steps: list[tuple[str, str, str, str, bytes, dict[str, Any], str]] = [
        ("a price change", "cloudretailer", "product.updated", f"msg_{run}_1", product, {}, "202 queued"),
        ("the same delivery again", "cloudretailer", "product.updated", f"msg_{run}_1", product, {}, "200 duplicate"),
        (
            "a stock change",
            "cloudretailer",
            "inventory.updated",
            f"msg_{run}_2",
            _envelope("inventory.updated", {"sku": "TEE-RED-M", "store_id": "S-1", "on_hand": 7}),
            {},
            "202 queued",
        ),
        (
            "an order completed in Magento",
            "magento",
            "order.completed",
            f"msg_{run}_3",
            _envelope("order.completed", {"order_id": 42, "increment_id": "000000042"}),
            {},
            "202 queued",
        ),
        (
            "an event type we do not handle",
            "cloudretailer",
            "product.tagged",
            f"msg_{run}_4",
            _envelope("product.tagged", {"product_id": "P-1001"}),
            {},
            "202 ignored",
        ),
        (
            "signed with the wrong secret",
            "cloudretailer",
            "product.updated",
            f"msg_{run}_5",
            product,
            {"secret": _new_secret()},
            "401",
        ),
        (
            "a stock change without its SKU",
            "cloudretailer",
            "inventory.updated",
            f"msg_{run}_6",
            _envelope("inventory.updated", {"store_id": "S-1"}),
            {},
            "422",
        ),
    ]
    all_ok = True
    for i, (what, source, etype, msg_id, body, kw, expected) in enumerate(steps, 1):
        status, answer = await sender.send(source, msg_id, body, **kw)
        shown = f"{status} {answer.get('status') or answer.get('detail', '')}"
        good = shown.startswith(expected)
        all_ok &= good
        table.add_row(str(i), what, source, etype, f"[{'green' if good else 'red'}]{shown}[/]", expected)
    console.print(table)

    burst_id = f"msg_{run}_burst"
    body = _envelope("customer.updated", {"customer_id": "C-77"})
    answers = await asyncio.gather(*(sender.send("cloudretailer", burst_id, body) for _ in range(50)))
    queued = sum(1 for s, a in answers if s == 202 and a["status"] == "queued")
    dupes = sum(1 for s, a in answers if s == 200 and a["status"] == "duplicate")
    good = queued == 1 and dupes == 49
    all_ok &= good
    colour = "green" if good else "red"
    console.print(
        f"50 identical deliveries at once: [{colour}]{queued} queued, {dupes} answered duplicate[/] (expected 1 and 49)"
    )
    return all_ok


async def _show_event_log(http: aiohttp.ClientSession, base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 10
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        async with http.get(f"{base}/admin/events?limit=20", headers=auth) as resp:
            items = (await resp.json())["items"]
        if items and all(i["status"] not in ("queued", "processing") for i in items):
            break
        await asyncio.sleep(0.2)
    table = Table(title="Event log (GET /admin/events)")
    for col in ("webhook-id", "source", "type", "entity", "status", "note"):
        table.add_column(col)
    for item in reversed(items):
        table.add_row(
            item["id"], item["source"], item["type"], item["entity"], item["status"], item["last_error"] or ""
        )
    console.print(table)
    console.print(
        "[dim]Status 'skipped': the sync rules that act on these events land with issues #4-#7; "
        "the edge, queue, coalescing and event log are live.[/]"
    )
    async with http.get(f"{base}/admin/status", headers=auth) as resp:
        status = await resp.json()
    console.print(
        f"Queue depth {status['queue_depth']}, workers {len(status['workers'])}, "
        f"dead letters {status['dead_letters']}, job outcomes {status['jobs']}"
    )


def _print_urls(base: str, token: str, *, reveal: bool) -> None:
    table = Table(title="Look at", show_header=False)
    table.add_row("health", f"{base}/healthz  {base}/readyz")
    table.add_row("metrics", f"{base}/metrics")
    table.add_row("admin status", f"curl -H 'Authorization: Bearer <token>' {base}/admin/status")
    table.add_row("admin token", token if reveal else f"{token[:4]}… (shown in full with --keep-running)")
    console.print(table)
