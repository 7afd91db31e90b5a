"""The real processes of a chaos run: a private Redis, the gateway (`crmagento serve`) and the workers
(`crmagento worker`), each a subprocess that the scenarios can SIGKILL and start again.

Never the machine's shared Redis: each run starts its own `redis-server` on a free loopback port with its own
data directory, so killing it, restarting it and reading its keys touches nobody else's data.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from gateway.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """redis-server with append-only on and `appendfsync always` (what the runbook recommends for no loss of
    acknowledged events), restartable on the same port and data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedRedis(data_dir, port=free_port(), fsync="always")

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> str:
        # EmbeddedRedis.start polls with time.sleep: off the loop, so the sandboxes keep serving meanwhile.
        return await asyncio.to_thread(self.server.start)

    def kill(self) -> None:
        """SIGKILL: only what reached the append-only file survives."""
        self.server.kill()

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Processes:
    """Gateway and workers sharing one environment (the CRMAGENTO_ settings of the scenario)."""

    env: dict[str, str]
    log_dir: Path
    gateway_port: int = field(default_factory=free_port)
    gateway: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    _started: int = 0

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _spawn(self, name: str, *args: str) -> Proc:
        self._started += 1
        log = self.log_dir / f"{name}.log"
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **self.env,
        }
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "crmagento.cli", *args],
                env=environ,
                # Not the checkout: a developer's .env there must not leak into the run's settings.
                cwd=self.log_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return Proc(name, popen, log)

    async def start_gateway(self, within: float = 30.0) -> Proc:
        self.gateway = self._spawn("gateway", "serve", "--host", "127.0.0.1", "--port", str(self.gateway_port))
        await self._wait_http(f"{self.gateway_url}/healthz", self.gateway, within)
        return self.gateway

    async def start_worker(self) -> Proc:
        proc = self._spawn(f"worker-{self._started}", "worker")
        self.workers.append(proc)
        return proc

    async def _wait_http(self, url: str, proc: Proc, within: float) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while True:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} did not answer {url} within {within} s; see {proc.log}")
                await asyncio.sleep(0.1)

    def freeze(self, proc: Proc) -> None:
        """SIGSTOP: the process holds whatever it was doing (its leases stay) until thawed or killed."""
        proc.popen.send_signal(signal.SIGSTOP)

    def thaw(self, proc: Proc) -> None:
        proc.popen.send_signal(signal.SIGCONT)

    def kill(self, proc: Proc) -> None:
        """SIGKILL, no goodbye: the worker's running jobs stay leased in Redis until arq's lease runs out."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait()

    async def stop_all(self) -> None:
        """SIGTERM everything we started (graceful), SIGKILL what does not stop in time."""
        procs = [p for p in [*self.workers, self.gateway] if p is not None and p.alive()]
        for proc in procs:
            proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                await asyncio.to_thread(proc.popen.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc)
