"""`crmagento demo`: the whole product on one machine, then a narrated scenario (crmagento/demo_scenario.py).

An embedded Redis, both sandboxes (Magento starts empty, Cloud Retailer seeded with a few hundred products,
a category tree, stock and customers), the gateway and one worker with every shipped sync rule. All
credentials are fresh random values shared between the sandboxes and the gateway, so the user's own
CRMAGENTO_* settings for a real store are never used or touched.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import shutil
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import SecretStr

from crmagento.demo_calls import DemoCalls, Endpoints, until
from crmagento.demo_report import console, print_started, print_summary, print_urls
from crmagento.demo_scenario import run_scenario
from crmagento.demo_support import Demo
from crmagento.runtime import bound_port, gateway_running, stop_on_signals
from crmagento.sandboxes import Sandboxes, configs_from_settings, sandboxes_running
from crmcore.logs import configure_logging
from crmcore.settings import Settings, StockLink
from gateway.embedded_redis import EmbeddedRedis
from sandbox.catalog import LINKED_STORE_ID
from workers.worker import run_worker

T = TypeVar("T")

# A container runtime SIGKILLs 10 s after its SIGTERM (docker stop): the worker's grace (2 s, demo_settings), the
# sandboxes' and this keep the whole stop within 5 s even with a request hanging in flight.
GATEWAY_SHUTDOWN_TIMEOUT_S = 1.0


def demo_settings(settings: Settings, redis_url: str) -> Settings:
    """The user's settings (ports, data dir, tuning) with everything that names a system replaced."""
    return settings.model_copy(
        update={
            "redis_url": SecretStr(redis_url),
            # The demo's own embedded Redis, never Sentinels of the environment (they would win over the URL).
            "redis_sentinels": [],
            "redis_sentinel_master": None,
            "redis_sentinel_password": None,
            "cr_webhook_secrets": [SecretStr(_new_webhook_secret())],
            "magento_webhook_secrets": [SecretStr(_new_webhook_secret())],
            "admin_tokens": [SecretStr(secrets.token_urlsafe(24))],
            "admin_token": None,
            # Bearer only: the sandbox accepts this token, and the client uses OAuth only when all four are set.
            "magento_token": SecretStr(secrets.token_urlsafe(24)),
            "magento_consumer_key": None,
            "magento_consumer_secret": None,
            "magento_access_token": None,
            "magento_access_token_secret": None,
            "magento_store_code": "default",
            "magento_website_id": 1,
            "magento_source_code": "default",
            "cr_api_key": SecretStr(secrets.token_urlsafe(24)),
            "cr_store_id": LINKED_STORE_ID,
            # Two shops: the web store's stock on Magento's default source, the Main Street shop's on its own.
            "stock_links": [StockLink(LINKED_STORE_ID, "default"), StockLink("S-1", "main_street")],
            # Each step triggers what it shows; a catch-up run falling due mid-demo (minutes 0 and 30) would heal
            # the lost webhook of step 6 before the reconciliation gets to.
            "catchup_interval_minutes": 1440,
            "worker_shutdown_grace_seconds": 2,
            "log_level": "WARNING",
        }
    )


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Warnings of the gateway and worker go to a file: the console is the narration's."""
    configure_logging("WARNING", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    with path.open("a", encoding="utf-8") as stream:
        old = handler.setStream(stream)
        try:
            yield
        finally:
            handler.setStream(old)


def _gateway_port(host: str, port: int) -> int:
    """CRMAGENTO_PORT (8080 by default) when it is free, else any free port: the demo should not fail on it."""
    if port == 0:
        return 0
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the gateway's own listener does
        try:
            probe.bind((host, port))
        except OSError:
            console.print(f"[yellow]Port {port} is taken; the gateway takes a free one.[/]")
            return 0
    return port


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (mapping a wildcard, not binding)


async def run_demo(
    settings: Settings,
    *,
    keep_running: bool = False,
    data_dir: Path | None = None,
    products: int = 300,
    customers: int = 50,
) -> int:
    """0 when every step met its expectation, 1 when one did not, 130 when interrupted."""
    started = time.monotonic()
    stop = stop_on_signals()  # Ctrl-C or SIGTERM at any point: everything stops cleanly, no traceback
    data_dir = (data_dir or settings.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    log_file = data_dir / "demo.log"
    console.rule("[bold]cr-magento-gateway demo")
    embedded = EmbeddedRedis(data_dir)
    console.print(f"Embedded Redis (append-only) in [cyan]{data_dir}[/]; gateway and worker logs: [cyan]{log_file}[/]")
    redis_url = await asyncio.to_thread(embedded.start)
    try:
        with _logs_to(log_file):
            async with contextlib.AsyncExitStack() as stack:
                calls, boxes = await _start(stack, demo_settings(settings, redis_url), products, customers)
                results = await _unless_stopped(stop, run_scenario(Demo(calls, console, LINKED_STORE_ID)))
                if results is None:
                    console.print("\n[yellow]Interrupted.[/]")
                    return 130
                print_summary(results, time.monotonic() - started)
                await print_urls(calls, boxes, log_file, reveal=keep_running)
                if keep_running:
                    console.print(
                        "\n[bold]--keep-running[/]: everything stays up; Ctrl-C stops it"
                        " (SIGTERM too, e.g. docker stop)."
                    )
                    await stop.wait()
    finally:
        await asyncio.to_thread(embedded.stop)
    return 0 if all(r.ok for r in results) else 1


async def _start(
    stack: contextlib.AsyncExitStack, base: Settings, products: int, customers: int
) -> tuple[DemoCalls, Sandboxes]:
    """Gateway first (the sandboxes need its URL for their webhooks), then both sandboxes, then the worker
    (it needs theirs)."""
    port = _gateway_port(base.host, base.port)
    runner = await stack.enter_async_context(
        gateway_running(base, base.host, port, shutdown_timeout=GATEWAY_SHUTDOWN_TIMEOUT_S)
    )
    gateway_url = f"http://{_connect_host(base.host)}:{bound_port(runner)}"
    configs = configs_from_settings(base, gateway_url=gateway_url, products=products, customers=customers)
    boxes = await stack.enter_async_context(sandboxes_running(configs, host=base.host))
    settings = base.model_copy(update={"magento_url": boxes.magento_url, "cr_url": boxes.cloudretailer_url})
    print_started(gateway_url, boxes, products, customers)
    http = await stack.enter_async_context(aiohttp.ClientSession())
    calls = DemoCalls(http, _endpoints(settings, gateway_url, boxes))
    await stack.enter_async_context(_worker(settings, calls))
    return calls, boxes


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of `work`, or None when `stop` is set first (then `work` is cancelled)."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _endpoints(settings: Settings, gateway_url: str, boxes: Sandboxes) -> Endpoints:
    def secret(value: SecretStr | None) -> str:
        assert value is not None
        return value.get_secret_value()

    return Endpoints(
        gateway=gateway_url,
        magento=boxes.magento_url,
        cloudretailer=boxes.cloudretailer_url,
        admin_token=secret(settings.admin_tokens[0]),
        magento_token=secret(settings.magento_token),
        cr_api_key=secret(settings.cr_api_key),
        cr_webhook_secret=secret(settings.cr_webhook_secrets[0]),
    )


@contextlib.asynccontextmanager
async def _worker(settings: Settings, calls: DemoCalls) -> AsyncIterator[None]:
    """One worker with the default registry (every shipped rule), up once its heartbeat shows."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))

    async def beating() -> bool:
        return bool((await calls.admin("GET", "/admin/status"))["workers"])

    try:
        await until(beating, 15, "the worker's heartbeat")
        console.print("Worker up with every shipped sync rule (GET /admin/status lists its heartbeat).")
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
