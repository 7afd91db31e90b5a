"""Slow-client flood: what stalled uploads cost the gateway, in memory and in time held.

    .venv/bin/python bench/slow_clients.py [--connections N] [--body-bytes B] [--send-bytes S]
                                           [--body-timeout S] [--header-timeout S] [--idle S]
                                           [--client-close-after S] [--settle S]
                                           [--crmagento PATH] [--gateway-env CRMAGENTO_X=Y ...]

Starts an embedded Redis and the gateway as a real subprocess (`crmagento serve`, as bench/ingest.py does),
then opens N connections to POST /webhooks/cloudretailer, each with well-formed signature headers and a
Content-Length of B, sends S bytes of that body (default: all but 1 KiB) and stalls. It prints the gateway's
RSS (VmRSS from /proc) before, at its peak while the connections are open, right after the last one closed,
and after `--settle` seconds more; how the connections ended (a 408 from the body timeout, a close, or the
client's own close after `--client-close-after` seconds, for a gateway without a body timeout); and the time
from a client's stall to the gateway closing it (min / median / max).

`--crmagento PATH` runs another checkout's `crmagento` (e.g. a baseline worktree's .venv/bin/crmagento) to
compare; `--gateway-env` passes extra settings or allocator switches (GLIBC_TUNABLES=...) to the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))  # the project's packages come from this checkout

from ingest import HOST, free_port, new_secret, run_context, wait_healthy  # noqa: E402

from gateway.embedded_redis import EmbeddedRedis  # noqa: E402

SAMPLE_SECONDS = 0.1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def signed_head(secret: str, msg_id: str, body: bytes) -> bytes:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    ts = int(time.time())
    mac = hmac.digest(key, b"%s.%d.%s" % (msg_id.encode(), ts, body), "sha256")
    lines = [
        "POST /webhooks/cloudretailer HTTP/1.1",
        f"Host: {HOST}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"webhook-id: {msg_id}",
        f"webhook-timestamp: {ts}",
        f"webhook-signature: v1,{base64.b64encode(mac).decode()}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def slow_client(
    port: int, secret: str, n: int, args: argparse.Namespace, stalled: asyncio.Event
) -> tuple[str, float | None]:
    """Send the headers and most of the body, stall, and wait: (how it ended, seconds from stall to close)."""
    body = b'{"type":"product.updated","pad":"' + b"x" * max(args.body_bytes - 40, 0) + b'"}'
    body = body[: args.body_bytes].ljust(args.body_bytes, b" ")
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(signed_head(secret, f"slow-{n}-{os.urandom(8).hex()}", body))
    writer.write(body[: args.send_bytes])
    await writer.drain()
    stall = time.monotonic()
    stalled.set()
    outcome = "closed"
    try:
        async with asyncio.timeout(args.client_close_after):
            first = await reader.read(65536)
            if first.startswith(b"HTTP/1.1 "):
                outcome = first[9:12].decode()
            while await reader.read(65536):
                pass
        return outcome, time.monotonic() - stall
    except TimeoutError:
        return "client_closed", None
    except ConnectionResetError:
        return "reset", time.monotonic() - stall
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def flood(port: int, pid: int, secret: str, args: argparse.Namespace) -> dict[str, Any]:
    stalled = [asyncio.Event() for _ in range(args.connections)]
    tasks = [asyncio.create_task(slow_client(port, secret, n, args, event)) for n, event in enumerate(stalled)]
    peak = 0.0
    opened = time.monotonic()
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mib(pid))
        await asyncio.sleep(SAMPLE_SECONDS)
    results = [t.result() for t in tasks]
    return {"peak": peak, "results": results, "seconds": time.monotonic() - opened}


def _summary(results: list[tuple[str, float | None]]) -> str:
    outcomes: dict[str, int] = {}
    for outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    held = sorted(s for _, s in results if s is not None)
    ended = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    if not held:
        return f"ended: {ended}; the gateway closed none"
    spread = f"{held[0]:.2f} / {statistics.median(held):.2f} / {held[-1]:.2f} s"
    return f"ended: {ended}; stall to gateway close min / median / max {spread}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--body-bytes", type=int, default=1_048_576)
    parser.add_argument("--send-bytes", type=int, default=None, help="default: body-bytes minus 1 KiB")
    parser.add_argument("--body-timeout", type=float, default=3.0)
    parser.add_argument("--header-timeout", type=float, default=2.0)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--client-close-after", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--crmagento", default=None, help="the crmagento to run (default: this venv's)")
    parser.add_argument("--gateway-env", nargs="*", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.send_bytes is None:
        args.send_bytes = max(args.body_bytes - 1024, 0)
    crmagento = args.crmagento or shutil.which("crmagento", path=str(Path(sys.executable).parent)) or "crmagento"

    with run_context() as (procs, tmp):
        redis = EmbeddedRedis(tmp / "redis", fsync="everysec")
        procs.embedded(redis)
        url = redis.start()
        port = free_port()
        secret = new_secret()
        env = {
            **os.environ,
            "CRMAGENTO_REDIS_URL": url,
            "CRMAGENTO_CR_WEBHOOK_SECRETS": secret,
            "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": new_secret(),
            "CRMAGENTO_ADMIN_TOKENS": base64.urlsafe_b64encode(os.urandom(24)).decode(),
            "CRMAGENTO_LOG_LEVEL": "WARNING",
            "CRMAGENTO_MAX_BODY_BYTES": str(max(args.body_bytes, 1_048_576)),
            "CRMAGENTO_CLIENT_HEADER_TIMEOUT_SECONDS": str(args.header_timeout),
            "CRMAGENTO_CLIENT_BODY_TIMEOUT_SECONDS": str(args.body_timeout),
            "CRMAGENTO_CLIENT_IDLE_SECONDS": str(args.idle),
        }
        env.update(dict(item.split("=", 1) for item in args.gateway_env))
        log = (tmp / "gateway.log").open("wb")
        # cwd=tmp: a developer's .env in the repo must not change the gateway's settings.
        gateway = procs.popen(
            "gateway",
            [crmagento, "serve", "--host", HOST, "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(f"http://{HOST}:{port}/healthz", gateway, "gateway")
        time.sleep(1.0)
        before = rss_mib(gateway.pid)
        print(
            f"gateway {crmagento} pid {gateway.pid}: {args.connections} connections, Content-Length "
            f"{args.body_bytes}, {args.send_bytes} bytes sent then stalled; body timeout {args.body_timeout} s"
        )
        run = asyncio.run(flood(port, gateway.pid, secret, args))
        closed = rss_mib(gateway.pid)
        time.sleep(args.settle)
        settled = rss_mib(gateway.pid)
        print(
            f"RSS MiB: before {before:.1f}, peak during {run['peak']:.1f}, all closed {closed:.1f}, "
            f"{args.settle:g} s later {settled:.1f}"
        )
        print(_summary(run["results"]))
        print(f"flood lasted {run['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
