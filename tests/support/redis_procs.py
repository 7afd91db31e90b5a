"""Throwaway redis-server and Sentinel processes on free loopback ports, for tests that must not touch the
machine's shared Redis (failover, passwords). Same binary as the embedded Redis."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis as redis_sync

from gateway.embedded_redis import server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """One redis-server (or, with `sentinel=True`, one Sentinel) configured by `lines` of redis.conf."""

    def __init__(self, workdir: Path, lines: list[str], *, port: int | None = None, sentinel: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.sentinel = sentinel
        self.lines = list(lines)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, password: str | None = None, timeout: float = 10.0) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / ("sentinel.conf" if self.sentinel else "redis.conf")
        # A file, not arguments: Sentinel rewrites its config as it learns (replicas, the new master).
        base = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.workdir}", "logfile redis.log"]
        if not self.sentinel:
            base.append('save ""')
        conf.write_text("\n".join([*base, *self.lines]) + "\n")
        args = [server_binary(), str(conf), *(["--sentinel"] if self.sentinel else [])]
        self.process = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = self.client(password)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis_sync.ConnectionError):
                if client.ping():
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on {self.port} did not start:\n{log}")
            time.sleep(0.05)

    def client(self, password: str | None = None, db: int = 0) -> redis_sync.Redis:
        return redis_sync.Redis(
            host="127.0.0.1", port=self.port, password=password, db=db, socket_timeout=2, decode_responses=True
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
