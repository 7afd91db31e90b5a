"""Running the pieces in one process: gateway, worker, or both (with an embedded Redis when no URL is set)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import SecretStr

from crmcore.redis_conn import describe
from crmcore.settings import Settings
from gateway.app import create_app
from gateway.connections import EdgeRunner
from gateway.embedded_redis import EmbeddedRedis
from gateway.gc_tuning import freeze_startup_heap
from workers.registry import Registry
from workers.worker import run_worker

log = structlog.get_logger(__name__)


@contextlib.contextmanager
def redis_for(settings: Settings, data_dir: Path | None = None) -> Iterator[Settings]:
    """Yield settings with a Redis: the configured one (URL or Sentinels), or an embedded Redis started for the
    duration."""
    if settings.redis_configured:
        log.info("redis_external", **describe(settings))
        yield settings
        return
    embedded = EmbeddedRedis(data_dir or settings.data_dir)
    url = embedded.start()
    log.info("redis_embedded_started", url=url, data_dir=str(embedded.data_dir), appendonly=True)
    try:
        yield settings.model_copy(update={"redis_url": SecretStr(url)})
    finally:
        embedded.stop()
        log.info("redis_embedded_stopped")


@contextlib.asynccontextmanager
async def gateway_running(
    settings: Settings, host: str, port: int, *, shutdown_timeout: float = 60.0
) -> AsyncIterator[web.AppRunner]:
    """`shutdown_timeout`: how long the stop waits for requests still being answered (aiohttp's default)."""
    app = create_app(settings)
    # EdgeRunner: the client deadlines and the connection cap (gateway/connections.py).
    runner = EdgeRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    log.info("gateway_listening", host=host, port=bound_port(runner) or port)
    try:
        yield runner
    finally:
        await runner.cleanup()


def bound_port(runner: web.AppRunner) -> int | None:
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    return None


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_forever(settings: Settings, host: str, port: int) -> None:
    stop = stop_on_signals()
    async with gateway_running(settings, host, port):
        freeze_startup_heap()
        await stop.wait()
    log.info("gateway_stopped")


async def worker_forever(settings: Settings, registry: Registry | None = None) -> None:
    freeze_startup_heap()
    await run_worker(settings, stop_on_signals(), registry)


async def run_all(settings: Settings, host: str, port: int, registry: Registry | None = None) -> None:
    stop = stop_on_signals()
    async with gateway_running(settings, host, port):
        freeze_startup_heap()
        await run_worker(settings, stop, registry)
    log.info("stopped")
