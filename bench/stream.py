"""Shared machinery of the end-to-end benches (e2e_latency.py, worker_throughput.py, soak.py).

`Stack` starts the real product as separate processes, the way it is deployed:

    embedded Redis (redis-server, appendfsync always by default, as `crmagento run` ships it)
    `crmagento serve`   the gateway
    `crmagento worker`  one or more workers, started and stopped on demand
    this module with --serve-sandboxes: both sandboxes (seeded, signed webhooks to the gateway) in one child

The sandbox child wraps both sandbox apps in a *recorder* middleware (bench-only code; the sandboxes are
unchanged): every API request is logged with its route, status and wall-clock start/end, and the writes the
benches care about also carry what they wrote:

    Cloud Retailer  PUT /api/v1/products/{id}                 ("price", sku, price)   -> a product.updated webhook
    Cloud Retailer  PUT /api/v1/inventory/{store}/{sku}       ("qty", sku, on_hand)   -> an inventory.updated webhook
    Magento         PUT /rest/{store}/V1/products/{sku}       ("price", sku, price)
    Magento         POST /rest/{store}/V1/inventory/source-items  ("qty", sku, quantity) per item

The Cloud Retailer entry's end time is when the change was stored and its webhook handed to the sender; the
Magento entry's end time is when Magento stored the value (the recorder is the innermost middleware, so the
sandbox's injected latency is before it). Both come from the same process and clock, so the difference is
the end-to-end latency "webhook sent -> Magento written" without polling. The driver reads the log through
`GET /_bench/log?after=SEQ` on the Magento port, which also drops what it has read (bounded memory in soaks).

`ChangeMaker` produces real Cloud Retailer changes (a new price, a new on-hand at the linked store), each with a
value never used before, so every Magento write can be matched to the change it carries. Each kind cycles
through the products in a shuffled order, so one SKU is not changed twice within a few seconds (which the
gateway would rightly coalesce into one job); `Tracker` matches the two logs and counts what was written,
superseded (a later change to the same SKU won first) or lost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
LINKED_STORE = "W-1"  # sandbox.catalog.LINKED_STORE_ID (not imported here: the parent stays light)
LOG_ROUTE = "/_sandbox/bench-log"  # under /_sandbox/: never counted, faulted or recorded

_MAGENTO_PRODUCT = re.compile(r"^/rest/(?:[^/]+/)?V1/products/([^/]+)$")
_MAGENTO_SOURCE_ITEMS = re.compile(r"^/rest/(?:[^/]+/)?V1/inventory/source-items$")
_CR_PRODUCT = re.compile(r"^/api/v1/products/[^/]+$")
_CR_INVENTORY = re.compile(r"^/api/v1/inventory/[^/]+/([^/]+)$")


def price_key(value: float) -> float:
    return round(float(value), 2)


def qty_key(value: float) -> float:
    return round(float(value), 3)


# --------------------------------------------------------------------------------------------------
# the sandbox child


class Recorder:
    """Request log of both sandboxes (see the module docstring). Entries are plain lists for cheap JSON."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.seq = 0

    def middleware(self, system: str) -> Any:
        from aiohttp import web

        @web.middleware
        async def record(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            if request.path.startswith("/_sandbox/"):
                return await handler(request)
            started = time.time()
            body = await request.read() if request.method in ("PUT", "POST") else b""
            response = await handler(request)
            ended = time.time()
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else request.path
            items: list[tuple[str, str, float]] = []
            if response.status == 200 and body:
                with contextlib.suppress(Exception):  # an odd body is simply not a tracked write
                    items = _written(system, request.method, request.path, body, response)
            self.seq += 1
            self.entries.append(
                {
                    "seq": self.seq,
                    "sys": system,
                    "call": f"{request.method} {route}",
                    "status": response.status,
                    "t0": started,
                    "t1": ended,
                    "items": items,
                }
            )
            return response

        return record

    async def log(self, request: Any) -> Any:
        import orjson
        from aiohttp import web

        after = int(request.query.get("after", "0"))
        # The caller has what it read before: drop it, so a long soak does not grow this list.
        self.entries = [e for e in self.entries if e["seq"] > after]
        return web.Response(body=orjson.dumps(self.entries), content_type="application/json")


def _written(system: str, method: str, path: str, body: bytes, response: Any) -> list[tuple[str, str, float]]:
    import orjson

    if system == "cr" and method == "PUT":
        if _CR_PRODUCT.match(path) and b'"price"' in body:
            out = orjson.loads(response.body)
            return [("price", out["sku"], price_key(out["price"]))]
        m = _CR_INVENTORY.match(path)
        if m:
            out = orjson.loads(response.body)
            return [("qty", out["sku"], qty_key(out["on_hand"]))]
    if system == "magento":
        if method == "PUT":
            m = _MAGENTO_PRODUCT.match(path)
            if m:
                product = orjson.loads(body)["product"]
                if product.get("price") is not None:
                    return [("price", product.get("sku") or m.group(1), price_key(product["price"]))]
        elif method == "POST" and _MAGENTO_SOURCE_ITEMS.match(path):
            items = orjson.loads(body)["sourceItems"]
            return [("qty", i["sku"], qty_key(i["quantity"])) for i in items]
    return []


def serve_sandboxes(products: int, seed: int, gateway_url: str) -> None:
    """Child process: both sandboxes from the CRMAGENTO_* environment (the same credentials the gateway and
    workers get), with the recorder; prints their URLs as one JSON line; runs until SIGTERM or stdin closes."""
    import gc

    from aiohttp import web

    from crmagento.sandboxes import configs_from_settings
    from crmcore.logs import configure_logging
    from crmcore.settings import Settings
    from sandbox.cloudretailer.app import create_app as create_cr
    from sandbox.magento.app import create_app as create_magento

    configure_logging("WARNING", "console")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configs = configs_from_settings(settings, gateway_url=gateway_url, products=products, customers=0, seed=seed)

    async def main() -> None:
        recorder = Recorder()
        socks = [socket.create_server((HOST, 0), backlog=1024) for _ in range(2)]
        mport, crport = (s.getsockname()[1] for s in socks)
        started = time.perf_counter()
        magento = create_magento(configs.magento.model_copy(update={"base_url": f"http://{HOST}:{mport}/"}))
        cr = create_cr(configs.cloudretailer)
        seeded = time.perf_counter() - started
        gc.freeze()  # the seeded catalog lives as long as the process (as crmagento.sandboxes does)
        magento.middlewares.append(recorder.middleware("magento"))
        cr.middlewares.append(recorder.middleware("cr"))
        magento.router.add_get(LOG_ROUTE, recorder.log)
        runners = []
        for app, sock in ((magento, socks[0]), (cr, socks[1])):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sock, backlog=1024).start()
            runners.append(runner)
        urls = {"magento": f"http://{HOST}:{mport}", "cr": f"http://{HOST}:{crport}/api/v1", "seed_s": seeded}
        print(json.dumps(urls), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent went away
        await stop.wait()
        for runner in reversed(runners):
            await runner.cleanup()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def rss_mb(pid: int) -> float | None:
    """Resident set size of one process (VmRSS), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (not its children), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU % per process of the stack, of this bench, and of everything else on the machine ("other": the
    shared machine's other work, which explains most outliers) between two readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.last = self._read()

    def _read(self) -> dict[str, float | None]:
        t = os.times()
        return {
            "at": time.monotonic(),
            "host": host_busy_seconds(),
            "bench": t.user + t.system,
            **{name: cpu_seconds(pid) for name, pid in self.pids.items()},
        }

    def percent(self) -> dict[str, float]:
        """Since the previous call (or creation)."""
        now = self._read()
        before, self.last = self.last, now
        wall = float(now["at"] or 0) - float(before["at"] or 0)
        if wall <= 0:
            return {}
        ours = {
            k: float(now[k] or 0) - float(before[k] or 0)
            for k in now
            if k not in ("at", "host") and now[k] is not None and before.get(k) is not None
        }
        out = {k: round(100 * v / wall, 1) for k, v in ours.items()}
        other = float(now["host"] or 0) - float(before["host"] or 0) - sum(ours.values())
        out["other"] = round(max(0.0, 100 * other / wall), 1)
        return out


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def crmagento_bin() -> str:
    return shutil.which("crmagento", path=str(Path(sys.executable).parent)) or "crmagento"


@dataclass
class StackOptions:
    products: int = 1000
    seed: int = 1
    redis_fsync: str = "always"
    log_level: str = "INFO"
    env: dict[str, str] = field(default_factory=dict)  # extra CRMAGENTO_* for gateway and workers


class Stack:
    """Redis, gateway, sandboxes (and workers on demand) as subprocesses in a temp dir; everything this
    started is stopped on exit, in reverse order."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.tmp = Path(tempfile.mkdtemp(prefix="crm-bench-stack-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self._worker_n = 0
        self.redis: Any = None
        self.gateway_url = ""
        self.magento_url = ""
        self.cr_url = ""
        self.admin_token = base64.urlsafe_b64encode(os.urandom(24)).decode()
        self.cr_api_key = base64.urlsafe_b64encode(os.urandom(18)).decode()
        self.magento_token = base64.urlsafe_b64encode(os.urandom(18)).decode()
        self.env: dict[str, str] = {}
        self.http: Any = None
        self.log_after = 0

    # -- start / stop

    async def __aenter__(self) -> Stack:
        import aiohttp

        from gateway.embedded_redis import EmbeddedRedis

        try:
            self.redis = EmbeddedRedis(self.tmp / "redis", fsync=self.options.redis_fsync, port=free_port())
            redis_url = self.redis.start()
            gw_port = free_port()
            self.gateway_url = f"http://{HOST}:{gw_port}"
            # The environment passed on must not carry a developer's CRMAGENTO_* settings into the run.
            base = {k: v for k, v in os.environ.items() if not k.startswith("CRMAGENTO_")}
            self.env = {
                **base,
                "CRMAGENTO_REDIS_URL": redis_url,
                "CRMAGENTO_CR_WEBHOOK_SECRETS": new_secret(),
                "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": new_secret(),
                "CRMAGENTO_ADMIN_TOKENS": self.admin_token,
                "CRMAGENTO_MAGENTO_TOKEN": self.magento_token,
                "CRMAGENTO_CR_API_KEY": self.cr_api_key,
                "CRMAGENTO_CR_STORE_ID": LINKED_STORE,
                "CRMAGENTO_LOG_LEVEL": self.options.log_level,
                **self.options.env,
            }
            gateway = self._popen("gateway", [crmagento_bin(), "serve", "--host", HOST, "--port", str(gw_port)])
            sandboxes = subprocess.Popen(  # noqa: ASYNC220 (start-up only, nothing else runs yet)
                [
                    sys.executable, __file__, "--serve-sandboxes",
                    "--products", str(self.options.products),
                    "--seed", str(self.options.seed),
                    "--gateway-url", self.gateway_url,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(self.tmp / "sandboxes.log").open("wb"),
                env=self.env,
                cwd=self.tmp,
                start_new_session=True,
            )  # fmt: skip
            self.procs["sandboxes"] = sandboxes  # type: ignore[assignment]
            assert sandboxes.stdout is not None
            line = await asyncio.to_thread(sandboxes.stdout.readline)
            if not line:
                raise RuntimeError(f"the sandbox process exited: {self.tail('sandboxes')}")
            info = json.loads(line)
            self.magento_url, self.cr_url = info["magento"], info["cr"]
            self.env["CRMAGENTO_MAGENTO_URL"] = self.magento_url
            self.env["CRMAGENTO_CR_URL"] = self.cr_url
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            await self._wait_http(f"{self.gateway_url}/healthz", gateway, "gateway")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for proc in reversed(self.workers):
            await asyncio.to_thread(stop_process, proc)
        for proc in reversed(list(self.procs.values())):
            await asyncio.to_thread(stop_process, proc)
        if self.http is not None:
            await self.http.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _popen(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # cwd=tmp: a developer's .env in the checkout must not change the run's settings.
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env or self.env,
            cwd=self.tmp,
            start_new_session=True,  # Ctrl-C reaches the bench only, which stops its children in order
        )
        self.procs[name] = proc
        return proc

    async def _wait_http(self, url: str, proc: subprocess.Popen[bytes], name: str, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.tail(name)}")
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                async with self.http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {url} within {within:.0f} s")

    def tail(self, name: str, lines: int = 5) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self, name: str, level: str) -> list[str]:
        """Lines of a process log at `level` (JSON logs: "level": "error")."""
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return []
        needle = f'"level": "{level}"'
        return [ln for ln in path.read_text(errors="replace").splitlines() if needle in ln.replace('":"', '": "')]

    async def start_workers(self, count: int = 1, max_jobs: int | None = None) -> list[subprocess.Popen[bytes]]:
        env = dict(self.env)
        if max_jobs is not None:
            env["CRMAGENTO_WORKER_MAX_JOBS"] = str(max_jobs)
        started = []
        for _ in range(count):
            self._worker_n += 1
            proc = self._popen(f"worker-{self._worker_n}", [crmagento_bin(), "worker"], env=env)
            self.workers.append(proc)
            started.append(proc)
        # Ready = its heartbeat is in Redis (the worker polls the queue from then on).
        deadline = time.monotonic() + 60
        pids = {p.pid for p in started}
        while time.monotonic() < deadline:
            for n, proc in enumerate(started):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}: {self.tail(f'worker-{n + 1}')}")
            listed = {w.get("pid") for w in (await self.status())["workers"] if w["age_seconds"] < 30}
            if pids <= listed:
                return started
            await asyncio.sleep(0.1)
        raise RuntimeError("workers did not report a heartbeat within 60 s")

    async def stop_workers(self) -> None:
        for proc in self.workers:
            await asyncio.to_thread(stop_process, proc)
        self.workers.clear()

    def pids(self) -> dict[str, int]:
        out = {name: p.pid for name, p in self.procs.items() if not name.startswith("worker-")}
        for n, proc in enumerate(self.workers):
            out[f"worker{n + 1 if len(self.workers) > 1 else ''}"] = proc.pid
        if self.redis is not None and self.redis.process is not None:
            out["redis"] = self.redis.process.pid
        return out

    # -- HTTP helpers

    async def admin(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with self.http.request(method, self.gateway_url + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def status(self) -> dict[str, Any]:
        status, body = await self.admin("GET", "/admin/status")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def sandbox(self, system: str, method: str, path: str, **kwargs: Any) -> Any:
        base = self.magento_url if system == "magento" else self.cr_url.removesuffix("/api/v1")
        async with self.http.request(method, base + path, **kwargs) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 400:
                raise RuntimeError(f"{method} {system}{path} -> {resp.status}: {body}")
            return body

    async def set_magento_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        rules = [{"match": "* /rest/*", "latency_ms": latency_ms, "jitter_ms": jitter_ms}] if latency_ms else []
        await self.sandbox("magento", "PUT", "/_sandbox/faults", json=rules)

    async def reset_stats(self) -> None:
        await self.sandbox("magento", "DELETE", "/_sandbox/stats")
        await self.sandbox("cr", "DELETE", "/_sandbox/stats")

    async def stats(self) -> dict[str, dict[str, int]]:
        return {
            "magento": (await self.sandbox("magento", "GET", "/_sandbox/stats"))["calls"],
            "cr": (await self.sandbox("cr", "GET", "/_sandbox/stats"))["calls"],
        }

    async def webhooks_delivered(self) -> int:
        return int((await self.sandbox("cr", "GET", "/_sandbox/health"))["webhooks"]["delivered"])

    async def fetch_log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.sandbox("magento", "GET", f"{LOG_ROUTE}?after={self.log_after}")
        if entries:
            self.log_after = entries[-1]["seq"]
        return entries

    async def wait_idle(self, within: float = 300.0, quiet: float = 1.0) -> None:
        """Until the queue is empty and stays so for `quiet` seconds."""
        deadline = time.monotonic() + within
        since: float | None = None
        while time.monotonic() < deadline:
            depth = (await self.status())["queue_depth"]
            if depth == 0:
                since = since or time.monotonic()
                if time.monotonic() - since >= quiet:
                    return
            else:
                since = None
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the queue did not drain within {within:.0f} s")

    # -- the initial sync

    async def initial_sync(self) -> list[Product]:
        """Full product sync into the empty Magento (no injected latency), then the products a change can
        go to: those Magento holds (the seeded "Shoes" products fail by design and are left out)."""
        await self.fetch_log()  # start the write log here
        status, body = await self.admin("POST", "/admin/resync/products", json={})
        assert status == 202, body
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            _, job = await self.admin("GET", body["href"])
            progress = job["progress"]
            settled = progress["done"] + progress["failed"]
            finished = job["status"] in ("done", "failed") and job["result"] is not None
            if finished and settled >= (progress["total"] or 0):
                break
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError("the initial sync did not finish within 900 s")
        await self.wait_idle()
        written = [item for e in await self.fetch_log() if e["sys"] == "magento" for item in e["items"]]
        in_magento = {sku for kind, sku, _ in written if kind == "price"}
        products = []
        cursor: str | None = None
        headers = {"Authorization": f"Bearer {self.cr_api_key}"}
        while True:
            query = "?limit=500" + (f"&cursor={cursor}" if cursor else "")
            page = await self.sandbox("cr", "GET", f"/api/v1/products{query}", headers=headers)
            products += [Product(p["id"], p["sku"]) for p in page["items"] if p["sku"] in in_magento]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if not products:
            raise RuntimeError("the initial sync put no product in Magento")
        return products


# --------------------------------------------------------------------------------------------------
# changes


@dataclass(frozen=True)
class Product:
    id: str
    sku: str


@dataclass
class Change:
    kind: str  # "price" or "qty"
    product: Product
    value: float
    sent_at: float = 0.0  # driver clock (time.time()) just before the request
    status: int = 0


class ChangeMaker:
    """Price and on-hand changes over `products`, each value used once (see the module docstring)."""

    def __init__(self, products: list[Product], stock_share: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.stock_share = stock_share
        self.counter = itertools.count(1)
        shuffled = {kind: self.rng.sample(products, len(products)) for kind in ("price", "qty")}
        self.cycles = {kind: itertools.cycle(items) for kind, items in shuffled.items()}
        # Values far from the seeded ones (prices 5-250, on-hand 0-60) and growing: never a no-op PUT.
        self.base = time.time_ns() % 1_000_000

    def next(self) -> Change:
        n = next(self.counter)
        kind = "qty" if self.rng.random() < self.stock_share else "price"
        product = next(self.cycles[kind])
        if kind == "price":
            value = price_key(1000 + (self.base + n) % 9_000_000 / 100)
        else:
            value = qty_key(1000 + (self.base + n) % 9_000_000)
        return Change(kind, product, value)

    def batch(self, count: int) -> list[Change]:
        """`count` changes to distinct entities (needs count <= 2 x products for a 50/50 mix)."""
        seen: set[tuple[str, str]] = set()
        out: list[Change] = []
        while len(out) < count:
            change = self.next()
            key = (change.kind, change.product.sku)
            if key not in seen:
                seen.add(key)
                out.append(change)
        return out


async def send_change(stack: Stack, change: Change) -> Change:
    headers = {"Authorization": f"Bearer {stack.cr_api_key}"}
    if change.kind == "price":
        url = f"{stack.cr_url}/products/{change.product.id}"
        body: dict[str, Any] = {"price": change.value}
    else:
        url = f"{stack.cr_url}/inventory/{LINKED_STORE}/{change.product.sku}"
        body = {"on_hand": change.value}
    change.sent_at = time.time()
    try:
        async with stack.http.put(url, json=body, headers=headers) as resp:
            await resp.read()
            change.status = resp.status
    except Exception:  # counted as a failed send; the stream goes on
        change.status = -1
    return change


async def send_all(stack: Stack, changes: Iterable[Change], concurrency: int = 16) -> list[Change]:
    limit = asyncio.Semaphore(concurrency)

    async def one(change: Change) -> Change:
        async with limit:
            return await send_change(stack, change)

    return list(await asyncio.gather(*(one(c) for c in changes)))


async def steady_stream(stack: Stack, maker: ChangeMaker, rate: float, seconds: float) -> list[Change]:
    """`rate` changes per second for `seconds`, each sent at its scheduled time (an open loop: a slow answer
    does not lower the rate). Periodic work (log fetches, RSS samples) runs as separate tasks meanwhile."""
    tasks: list[asyncio.Task[Change]] = []
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send_change(stack, maker.next())))
    return list(await asyncio.gather(*tasks))


async def every(seconds: float, action: Callable[[], Any], stop: asyncio.Event) -> None:
    """Await `action()` every `seconds` until `stop` is set (then once more)."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        await action()


# --------------------------------------------------------------------------------------------------
# matching the logs


@dataclass
class Outcome:
    kind: str
    sku: str
    value: float
    cr_at: float
    written_at: float | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.written_at is None else (self.written_at - self.cr_at) * 1000


class Tracker:
    """Matches Cloud Retailer changes (log entries with items) to the Magento writes carrying their value."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str, float], Outcome] = {}
        self.last_sent: dict[tuple[str, str], tuple[float, float]] = {}  # (kind, sku) -> (cr_at, value)
        self.last_written: dict[tuple[str, str], tuple[float, float]] = {}  # (kind, sku) -> (written_at, value)
        self.early: dict[tuple[str, str, float], float] = {}  # Magento write seen before its CR entry
        self.calls: list[tuple[str, str, float, float]] = []  # (sys, call, t0, t1) when keep_calls
        self.keep_calls = False
        self.magento_errors = 0

    def ingest(self, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            if self.keep_calls:
                self.calls.append((e["sys"], e["call"], e["t0"], e["t1"]))
            if e["sys"] == "magento" and e["status"] >= 400:
                self.magento_errors += 1
            for kind, sku, value in e["items"]:
                key = (kind, sku, value)
                if e["sys"] == "cr":
                    outcome = Outcome(kind, sku, value, e["t1"])
                    outcome.written_at = self.early.pop(key, None)
                    self.outcomes[key] = outcome
                    if self.last_sent.get((kind, sku), (0.0, 0.0))[0] <= e["t1"]:
                        self.last_sent[(kind, sku)] = (e["t1"], value)
                else:
                    if self.last_written.get((kind, sku), (0.0, 0.0))[0] <= e["t1"]:
                        self.last_written[(kind, sku)] = (e["t1"], value)
                    found = self.outcomes.get(key)
                    if found is None:
                        self.early.setdefault(key, e["t1"])
                    elif found.written_at is None:
                        found.written_at = e["t1"]

    def pending(self, since: float = 0.0) -> list[Outcome]:
        """Changes not written yet whose (kind, sku) has not been overtaken by a later change."""
        return [
            o
            for o in self.outcomes.values()
            if o.cr_at >= since and o.written_at is None and self.last_sent[(o.kind, o.sku)][1] == o.value
        ]

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict[str, Any]:
        """Figures for the changes stored in Cloud Retailer within [since, until)."""
        chosen = [o for o in self.outcomes.values() if since <= o.cr_at < until]
        written = [o for o in chosen if o.written_at is not None]
        superseded = [o for o in chosen if o.written_at is None and self.last_sent[(o.kind, o.sku)][1] != o.value]
        lost = [o for o in chosen if o.written_at is None and self.last_sent[(o.kind, o.sku)][1] == o.value]
        # Final state: the last value written for every (kind, sku) must be the last one sent.
        wrong_final = [
            key for key, (_, value) in self.last_sent.items() if self.last_written.get(key, (0.0, None))[1] != value
        ]
        out: dict[str, Any] = {
            "changes": len(chosen),
            "written": len(written),
            "superseded": len(superseded),
            "lost": len(lost),
            "final_state_wrong": len(wrong_final),
            "latency_ms": percentiles([o.latency_ms for o in written if o.latency_ms is not None]),
        }
        for kind in ("price", "qty"):
            mine = [o.latency_ms for o in written if o.kind == kind and o.latency_ms is not None]
            out[f"latency_ms_{kind}"] = percentiles(mine)
        if chosen:
            times = sorted(o.cr_at for o in chosen)
            span = times[-1] - times[0]
            out["rate_per_s"] = round((len(times) - 1) / span, 2) if span > 0 else None
        return out


def worker_calls(stats: dict[str, dict[str, int]]) -> dict[str, int]:
    """Calls the gateway's workers made: all of Magento's, Cloud Retailer's minus the bench's own PUTs."""
    magento = sum(stats["magento"].values())
    cr = sum(n for call, n in stats["cr"].items() if not call.startswith("PUT /api/v1/"))
    return {"magento": magento, "cr": cr, "total": magento + cr}


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        # nearest rank: the value below which q of the samples lie
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))], 1)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


# --------------------------------------------------------------------------------------------------
# output


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def write_json(payload: dict[str, Any], name: str, path: str | None) -> Path:
    out = Path(path) if path else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return out


def display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def print_latency_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"  {'':<18}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}")
    for label, p in rows:
        cells = "".join(f"{'-' if p[k] is None else p[k]:>9}" for k in ("p50", "p95", "p99", "max", "mean"))
        print(f"  {label:<18}{p['n']:>7}{cells}")


@contextlib.asynccontextmanager
async def running_stack(options: StackOptions) -> AsyncIterator[Stack]:
    # SIGTERM (e.g. from bench/suite.py on a timeout) unwinds like Ctrl-C, so the children are stopped.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    async with Stack(options) as stack:
        yield stack


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="child process of the end-to-end benches (not for direct use)")
    parser.add_argument("--serve-sandboxes", action="store_true", required=True)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gateway-url", required=True)
    a = parser.parse_args()
    serve_sandboxes(a.products, a.seed, a.gateway_url)
