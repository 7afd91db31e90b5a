"""The baseline for bench/ingest.py: a bare aiohttp server that reads the body and answers 202.

It runs the way `crmagento serve` runs the gateway (asyncio.run with the default event loop, AppRunner
without an access log, the same backlog), so "gateway / bare" measures only what the gateway adds:
signature check, validation, the Redis round trip and metrics.

    .venv/bin/python bench/bare_server.py --host 127.0.0.1 --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import orjson
from aiohttp import web


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


async def receive(request: web.Request) -> web.Response:
    await request.read()
    msg_id = request.headers.get("webhook-id", "")
    return web.json_response({"id": msg_id, "status": "queued"}, status=202, dumps=_dumps)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def create_app() -> web.Application:
    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/webhooks/{source}", receive)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="match the gateway's")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
