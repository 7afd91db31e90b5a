"""`crmagento serve` and `crmagento worker` as separate processes, the way a scaled-out deployment runs
them, for the scale-out and Sentinel tests. Each process logs to its own file; only processes started
here are stopped here, by their own handle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.redis_procs import free_port
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET, envelope, new_id, sign_headers

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.support.scale_handlers"


def cluster_env(**extra: str) -> dict[str, str]:
    """A clean environment (nothing of the machine's CRMAGENTO_ leaks in) with test secrets and fast timings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),  # the handlers module lives under tests/
        "CRMAGENTO_CR_WEBHOOK_SECRETS": CR_SECRET,
        "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": MAGENTO_SECRET,
        "CRMAGENTO_ADMIN_TOKENS": ADMIN_TOKEN,
        "CRMAGENTO_WORKER_POLL_DELAY_SECONDS": "0.05",
        "CRMAGENTO_WORKER_HEARTBEAT_SECONDS": "0.5",
        "CRMAGENTO_JOB_RETRY_BASE_SECONDS": "0.1",
        "CRMAGENTO_JOB_RETRY_MAX_SECONDS": "0.5",
        "CRMAGENTO_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
        "CRMAGENTO_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, within: float = 10) -> int:
        """SIGTERM (graceful), then SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(within)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def spawn(name: str, args: list[str], env: dict[str, str], logdir: Path, port: int | None = None) -> Proc:
    log = logdir / f"{name}.log"
    cmd = [sys.executable, "-m", "crmagento.cli", *args]
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return Proc(name, process, log, f"http://127.0.0.1:{port}" if port else "")


def spawn_gateway(name: str, env: dict[str, str], logdir: Path) -> Proc:
    port = free_port()
    return spawn(name, ["serve", "--host", "127.0.0.1", "--port", str(port)], env, logdir, port)


def spawn_worker(name: str, env: dict[str, str], logdir: Path) -> Proc:
    return spawn(name, ["worker", "--handlers-module", HANDLERS], env, logdir)


async def wait_healthy(session: aiohttp.ClientSession, gateway: Proc, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while True:
        if gateway.process.poll() is not None:
            raise AssertionError(f"{gateway.name} exited ({gateway.process.returncode}):\n{gateway.output()}")
        try:
            async with session.get(f"{gateway.base}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise AssertionError(f"{gateway.name} not healthy within {within} s:\n{gateway.output()}")
        await asyncio.sleep(0.1)


async def post_webhook(
    session: aiohttp.ClientSession, gateway: Proc, event_type: str, data: dict[str, Any], msg_id: str | None = None
) -> tuple[int, str]:
    msg_id = msg_id or new_id()
    body = envelope(event_type, data)
    url = f"{gateway.base}/webhooks/cloudretailer"
    async with session.post(url, data=body, headers=sign_headers(CR_SECRET, msg_id, body)) as resp:
        await resp.read()
        return resp.status, msg_id


async def queued_count(session: aiohttp.ClientSession, gateway: Proc) -> float:
    """Webhooks this gateway process accepted, from its own /metrics (the counters are per process)."""
    async with session.get(f"{gateway.base}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("crmagento_webhooks_total{") and 'outcome="queued"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
