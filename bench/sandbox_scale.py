"""Sandbox scale: both sandboxes holding N products (default 100000), seeded, then paged through.

    .venv/bin/python bench/sandbox_scale.py [--products N] [--customers C] [--seed S] [--page-size P]
                                            [--via inprocess|cli]

`inprocess` (default) starts them with crmagento.sandboxes.sandboxes_running, the function `crmagento sandbox`
uses, and reads this process's VmRSS/VmHWM from /proc/self/status; the paging client then shares the process
(and the GIL) with both servers, so its times are upper bounds. `cli` runs `crmagento sandbox` as a
subprocess and reads that process's /proc/PID/status instead (seed times from its "Ready" line, 0.1 s
resolution).

Cloud Retailer holds N products (images, attributes, categories, two stock rows each) and C customers; Magento
is pre-loaded with the same N products (`--magento-products N`, as if the gateway's initial sync had run), so
both catalogs are full size. Measured: seed time per sandbox, RSS after seeding, and the time to read every
product: Cloud Retailer `GET /api/v1/products?limit=P` following `next_cursor`, Magento
`GET /rest/all/V1/products?searchCriteria[pageSize]=P&searchCriteria[currentPage]=k` until `total_count`.
Every SKU must come back exactly once. A table on stdout; JSON to bench/results/sandbox-scale-<stamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the project's packages come from the checkout

from crmagento.sandboxes import DEFAULT_CR_API_KEY, configs_from_settings, sandboxes_running  # noqa: E402
from crmcore.settings import Settings  # noqa: E402
from sandbox.magento.config import MagentoSandboxConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@dataclass
class PageRun:
    api: str
    pages: int = 0
    items: int = 0
    seconds: float = 0.0
    page_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ms = sorted(self.page_ms)
        return {
            "api": self.api,
            "pages": self.pages,
            "items": self.items,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items / self.seconds) if self.seconds else None,
            "page_ms_p50": round(statistics.median(ms), 2) if ms else None,
            "page_ms_max": round(ms[-1], 2) if ms else None,
            "first_page_ms": round(self.page_ms[0], 2) if ms else None,
        }


@dataclass
class Target:
    """Where the two sandboxes are and what starting them cost."""

    magento: str  # http://H:P
    cloudretailer: str  # http://H:Q/api/v1
    cr_key: str
    magento_token: str
    seed_seconds: dict[str, float]
    start_seconds: float
    rss_before_mb: float | None
    rss_after_mb: float | None
    hwm_mb: float | None


def proc_status_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) in MB, from /proc (no psutil needed)."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) / 1024
    return out


def settings() -> Settings:
    # The sandboxes' own defaults, whatever the environment or a .env holds: a benchmark must not depend on them.
    return Settings.model_construct()


@contextlib.asynccontextmanager
async def in_process(args: argparse.Namespace) -> AsyncIterator[Target]:
    configs = configs_from_settings(
        settings(),
        gateway_url=None,  # reads only: no webhooks
        products=args.products,
        customers=args.customers,
        seed=args.seed,
        magento_products=args.products,
    )
    before = proc_status_mb()
    started = time.perf_counter()
    async with sandboxes_running(configs) as running:
        took = time.perf_counter() - started
        after = proc_status_mb()
        yield Target(
            running.magento_url,
            running.cloudretailer_url,
            configs.cloudretailer.api_key.get_secret_value(),
            configs.magento.effective_bearer(),
            dict(running.seed_seconds),
            took,
            before.get("VmRSS"),
            after.get("VmRSS"),
            after.get("VmHWM"),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def via_cli(args: argparse.Namespace) -> AsyncIterator[Target]:
    exe = Path(sys.executable).with_name("crmagento")
    mport, crport = _free_port(), _free_port()
    argv = [str(exe), "sandbox", "--magento-port", str(mport), "--cr-port", str(crport)]
    argv += ["--gateway-url", "http://127.0.0.1:9", "--products", str(args.products), "--seed", str(args.seed)]
    argv += ["--customers", str(args.customers), "--magento-products", str(args.products)]
    # Only PATH and HOME: the sandbox defaults apply, whatever this shell exports.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        ready = ""
        while not ready:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise SystemExit(f"crmagento sandbox exited ({await process.wait()}) before it was ready")
            if line.startswith("Ready"):
                ready = line
        took = time.perf_counter() - started
        seeded = {name: float(s) for name, s in re.findall(r"(\w+) ([\d.]+) s", ready)}
        status = proc_status_mb(process.pid)
        yield Target(
            f"http://127.0.0.1:{mport}",
            f"http://127.0.0.1:{crport}/api/v1",
            DEFAULT_CR_API_KEY,
            MagentoSandboxConfig().effective_bearer(),
            seeded,
            took,
            None,
            status.get("VmRSS"),
            status.get("VmHWM"),
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def page_cloudretailer(http: aiohttp.ClientSession, target: Target, size: int) -> tuple[PageRun, set[str]]:
    run, skus = PageRun("cloudretailer"), set()
    headers = {"Authorization": f"Bearer {target.cr_key}"}
    cursor: str | None = None
    started = time.perf_counter()
    while True:
        params = {"limit": str(size)} | ({"cursor": cursor} if cursor else {})
        began = time.perf_counter()
        async with http.get(f"{target.cloudretailer}/products", params=params, headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            body = orjson.loads(await resp.read())
        run.page_ms.append((time.perf_counter() - began) * 1000)
        run.pages += 1
        run.items += len(body["items"])
        skus.update(p["sku"] for p in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    run.seconds = time.perf_counter() - started
    return run, skus


async def page_magento(http: aiohttp.ClientSession, target: Target, size: int) -> tuple[PageRun, set[str]]:
    run, skus = PageRun("magento"), set()
    headers = {"Authorization": f"Bearer {target.magento_token}"}
    page, total = 1, None
    started = time.perf_counter()
    while total is None or (page - 1) * size < total:
        # Brackets percent-encoded by hand, and the URL marked encoded, so what is sent is exactly this.
        query = f"searchCriteria%5BpageSize%5D={size}&searchCriteria%5BcurrentPage%5D={page}"
        url = URL(f"{target.magento}/rest/all/V1/products?{query}", encoded=True)
        began = time.perf_counter()
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            body = orjson.loads(await resp.read())
        run.page_ms.append((time.perf_counter() - began) * 1000)
        total = body["total_count"]  # stop on total_count: a page past the end repeats the last one
        run.pages += 1
        run.items += len(body["items"])
        skus.update(p["sku"] for p in body["items"])
        page += 1
    run.seconds = time.perf_counter() - started
    return run, skus


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    starter = in_process if args.via == "inprocess" else via_cli
    async with starter(args) as target, aiohttp.ClientSession() as http:
        cr, cr_skus = await page_cloudretailer(http, target, args.page_size)
        magento, magento_skus = await page_magento(http, target, args.page_size)
    for run, skus in ((cr, cr_skus), (magento, magento_skus)):
        if run.items != args.products or len(skus) != args.products:
            raise SystemExit(f"{run.api}: {run.items} items, {len(skus)} distinct SKUs; expected {args.products}")
    return {"target": target, "runs": [cr.summary(), magento.summary()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=500, help="CR limit and Magento pageSize (CR max 1000)")
    parser.add_argument("--via", choices=("inprocess", "cli"), default="inprocess")
    args = parser.parse_args()

    result = asyncio.run(bench(args))
    target: Target = result["target"]
    seeds = target.seed_seconds
    print(f"\nsandbox scale: {args.products} products, {args.customers} customers, seed {args.seed}, via {args.via}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs\n")
    print(f"start (bind, seed both, listen): {target.start_seconds:.2f} s")
    cr_seed, magento_seed = seeds.get("cloudretailer", 0), seeds.get("magento", 0)
    print(f"  seed Cloud Retailer: {cr_seed:.2f} s   seed Magento: {magento_seed:.2f} s")
    rss = f"RSS after seeding: {target.rss_after_mb:.0f} MB" if target.rss_after_mb else "RSS: n/a"
    if target.rss_before_mb:
        rss += f" (before {target.rss_before_mb:.0f} MB, +{target.rss_after_mb - target.rss_before_mb:.0f} MB)"
    if target.hwm_mb:
        rss += f", peak {target.hwm_mb:.0f} MB"
    print(rss + "\n")
    header = f"{'API':<14}{'page size':>10}{'pages':>8}{'products':>10}{'total s':>9}{'products/s':>12}"
    header += f"{'ms/page p50':>13}{'max':>8}"
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        print(
            f"{run['api']:<14}{args.page_size:>10}{run['pages']:>8}{run['items']:>10}{run['seconds']:>9.2f}"
            f"{run['items_per_second']:>12}{run['page_ms_p50']:>13.1f}{run['page_ms_max']:>8.0f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"sandbox-scale-{stamp}.json"
    payload = {
        "bench": "sandbox_scale",
        "at": stamp,
        "args": vars(args),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "start": {k: v for k, v in asdict(target).items() if k not in ("cr_key", "magento_token")},
        "paging": result["runs"],
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
