"""Inventory reconciliation at scale: N SKUs in both sandboxes, a share of them drifted, Magento slow.

    .venv/bin/python bench/reconcile.py [--skus N] [--links 1|2] [--drift FRACTION] [--held FRACTION]
                                        [--latency-ms MS] [--batch-size B] [--concurrency C]
                                        [--redis embedded|redis://HOST:PORT/DB]

Both sandboxes run in a child process, seeded from the shared catalog: Cloud Retailer with N products and
their on-hand, Magento with the same N products and their source items (as after an earlier sync). With
`--links 2` the shop location S-1 also feeds the source `main_street` (CRMAGENTO_STOCK_LINKS
"W-1:default,S-1:main_street"), whose source items the child seeds from S-1's on-hand. The bench then changes
the on-hand of DRIFT x N SKUs at each linked location in Cloud Retailer (no gateway listens: these are the lost
webhooks). HELD x N other SKUs (chosen with the same seed) get 1-3 units held back at the first link's source
for orders not yet sales: the ledger is filled through `Ledger.hold` with made-up order ids (one order per
SKU; no such order exists in Magento, so the run's ledger refresh keeps them), and their Magento source items
are set to on-hand minus held, as Magento's own shipments would have left them: in step, so not drift. It then puts a
latency fault rule on every Magento route, clears Magento's call stats, and runs one
reconciliation in this process, through the same code the worker runs (`run_reconciliation`).

It prints the wall time, the SKUs with units held, Magento reads and writes (from the sandbox's
/_sandbox/stats), items per write and this process's peak RSS, then checks the targets: writes only for the
drifted SKUs of every link (none for those only holding units), under 60 s,
RSS under 200 MB; and that a dry run afterwards finds no drift left. Exit status 1 when a target is missed.
The figures also go to bench/results/reconcile-<timestamp>.json.

The Redis (run lock and report) is an embedded one in a temp dir by default; an external URL must name a
dedicated database, which is FLUSHDB'd (never FLUSHALL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CR_API_KEY = "bench-cloudretailer-api-key-0001"
MAGENTO_TOKEN = "sandboxaccesstoken00000000000001"  # the sandbox's default integration access token
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 200.0
REPORTED = ("status", "mode", "compared", "drift_found", "drift_fixed", "held_skus", "cr_reads")
# The links of `--links N`, the first the default (the one the sandboxes' earlier sync already fed).
LINKS = (("W-1", "default"), ("S-1", "main_street"))


# --- the child: both sandboxes ----------------------------------------------------------------------------


def seed_shop_source(magento: Any, cr: Any) -> None:
    """The shop's source as an earlier sync left it: S-1's on-hand in `main_street`'s source items."""
    from sandbox.cloudretailer.keys import STATE as CR_STATE
    from sandbox.magento.routing import STATE as MAGENTO_STATE
    from workers.sync.inventory.stock import in_stock

    location, source = LINKS[1]
    state = magento[MAGENTO_STATE]
    for level in cr[CR_STATE].stock[location].rows.values():
        state.put_source_item(level.sku, source, level.on_hand, in_stock(level.on_hand))


def serve_sandboxes(skus: int, seed: int, links: int) -> None:
    """Child process: seed and serve both sandboxes on free loopback ports, print their URLs as one JSON
    line, run until SIGTERM or stdin closes."""
    from aiohttp import web
    from pydantic import SecretStr

    from sandbox.cloudretailer.app import create_app as create_cr
    from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
    from sandbox.magento.app import create_app as create_magento
    from sandbox.magento.config import MagentoSandboxConfig

    async def main() -> None:
        started = time.perf_counter()
        magento = create_magento(MagentoSandboxConfig(products=skus, seed=seed))
        seeded_magento = time.perf_counter() - started
        cr = create_cr(
            CloudRetailerSandboxConfig(
                api_key=SecretStr(CR_API_KEY), products=skus, customers=0, seed=seed, styles=False
            )
        )
        if links > 1:
            seed_shop_source(magento, cr)
        seeded_cr = time.perf_counter() - started - seeded_magento
        import gc

        gc.freeze()  # the seeded catalog lives as long as the process: keep it out of the collector's scans
        urls = {}
        runners = []
        for name, app in (("magento", magento), ("cloudretailer", cr)):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls[name] = f"http://127.0.0.1:{port}"
            runners.append(runner)
        print(json.dumps({**urls, "seed_seconds": {"magento": seeded_magento, "cloudretailer": seeded_cr}}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent went away
        await stop.wait()
        for runner in runners:
            await runner.cleanup()

    asyncio.run(main())


class SandboxProcess:
    def __init__(self, skus: int, seed: int, links: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-sandboxes",
                *("--skus", str(skus), "--seed", str(seed), "--links", str(links)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process exited before it was ready")
        info = json.loads(line)
        self.magento_url: str = info["magento"]
        self.cr_url: str = info["cloudretailer"] + "/api/v1"
        self.seed_seconds: dict[str, float] = info["seed_seconds"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the parent: drift, one reconciliation, figures ----------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


async def bench(args: argparse.Namespace, sandboxes: SandboxProcess, redis_url: str) -> dict[str, Any]:
    import aiohttp
    from pydantic import SecretStr

    from crmcore.logs import configure_logging
    from crmcore.redis_conn import create_redis
    from crmcore.settings import Settings
    from sandbox.catalog import LINKED_STORE_ID, sku
    from workers.registry import HandlerContext
    from workers.services import Services
    from workers.sync.inventory.reconcile import run_reconciliation

    configure_logging("WARNING", "console")
    rng = random.Random(args.seed)
    links = LINKS[: args.links]
    # Each link's own drifted SKUs, drawn apart: the first link's also decide which SKUs hold units.
    drifted_at = {loc: sorted(rng.sample(range(1, args.skus + 1), round(args.skus * args.drift))) for loc, _ in links}
    drifted = drifted_at[links[0][0]]
    drift_count = sum(len(v) for v in drifted_at.values())
    cr_headers = {"Authorization": f"Bearer {CR_API_KEY}"}
    magento_control = sandboxes.magento_url + "/_sandbox"

    async with aiohttp.ClientSession() as http:
        # The drift: new counts in Cloud Retailer that Magento never heard of.
        limit = asyncio.Semaphore(32)

        async def drift(location: str, i: int) -> None:
            async with limit:
                url = f"{sandboxes.cr_url}/inventory/{location}/{sku(i)}"
                async with http.put(url, json={"on_hand": 1000 + i}, headers=cr_headers) as resp:
                    assert resp.status == 200, await resp.text()

        started = time.perf_counter()
        await asyncio.gather(*(drift(loc, i) for loc, skus in drifted_at.items() for i in skus))
        drift_seconds = time.perf_counter() - started
        held_units = await hold_back(http, sandboxes, rng, drifted, args)
        rules = [{"match": "*", "latency_ms": args.latency_ms}] if args.latency_ms else []
        async with http.put(magento_control + "/faults", json=rules) as resp:
            assert resp.status == 200
        async with http.delete(magento_control + "/stats") as resp:
            assert resp.status == 200

        redis = create_redis(redis_url)
        await redis.flushdb()
        await fill_ledger(redis, held_units)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            redis_url=SecretStr(redis_url),
            magento_url=sandboxes.magento_url,
            magento_token=SecretStr(MAGENTO_TOKEN),
            cr_url=sandboxes.cr_url,
            cr_api_key=SecretStr(CR_API_KEY),
            cr_store_id=LINKED_STORE_ID,
            stock_links=",".join(f"{loc}:{source}" for loc, source in links),
            inventory_batch_size=args.batch_size,
            magento_concurrency=args.concurrency,
            log_level="WARNING",
        )
        services = Services.from_settings(settings)
        ctx = HandlerContext(redis=redis, settings=settings, job_id="bench", attempt=1, services=services)
        rss_before = current_rss_mb()
        started = time.perf_counter()
        report = await run_reconciliation(ctx, dry_run=False, trigger="bench")
        wall = time.perf_counter() - started
        peak_rss = rss_mb()

        async with http.get(magento_control + "/stats") as resp:
            stats = await resp.json()
        # Did it converge? A dry run without the latency must find nothing left.
        async with http.delete(magento_control + "/faults") as resp:
            assert resp.status == 200
        check = await run_reconciliation(ctx, dry_run=True, trigger="bench-check")
        await services.close()
        await redis.aclose()

    calls = stats["calls"]
    reads = sum(n for key, n in calls.items() if key.startswith("GET "))
    writes = sum(n for key, n in calls.items() if key.split(" ", 1)[0] in ("POST", "PUT", "DELETE"))
    source_item_writes = sum(n for key, n in calls.items() if key.startswith("POST ") and "source-items" in key)
    expected_writes = sum(-(-len(skus) // args.batch_size) for skus in drifted_at.values())
    return {
        "skus": args.skus,
        "links": len(links),
        "drifted": drift_count,
        "held_skus": len(held_units),
        "latency_ms": args.latency_ms,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "wall_seconds": round(wall, 2),
        "magento_reads": reads,
        "magento_writes": writes,
        "source_items_posts": source_item_writes,
        "items_written": report["items_written"],
        "items_per_write": round(report["items_written"] / writes, 2) if writes else 0.0,
        "expected_writes": expected_writes,
        "peak_rss_mb": round(peak_rss, 1),
        "rss_before_run_mb": round(rss_before, 1),
        "report": {
            k: report[k] for k in ("status", "mode", "compared", "drift_found", "drift_fixed", "held_skus", "cr_reads")
        },
        "per_link": [
            {k: line[k] for k in ("store_id", "source_code", "drift_found", "drift_fixed", "held_skus")}
            for line in report["links"]
        ],
        "missing": [report["missing_in_magento"]["count"], report["missing_in_cr"]["count"]],
        "drift_left_after": check["drift_found"],
        "drift_setup_seconds": round(drift_seconds, 2),
        "seed_seconds": {k: round(v, 2) for k, v in sandboxes.seed_seconds.items()},
        "calls": calls,
    }


async def hold_back(
    http: Any, sandboxes: SandboxProcess, rng: random.Random, drifted: list[int], args: argparse.Namespace
) -> dict[str, float]:
    """SKU -> units held for the SKUs picked to have some; their Magento source items already count them out
    (on-hand minus held), as after shipments the stock sync has seen."""
    from sandbox.catalog import LINKED_STORE_ID, sku
    from workers.sync.inventory.stock import in_stock, target_quantity

    taken = set(drifted)
    pool = [i for i in range(1, args.skus + 1) if i not in taken]
    picked = sorted(rng.sample(pool, min(len(pool), round(args.skus * args.held))))
    held = {sku(i): float(rng.randint(1, 3)) for i in picked}
    cr_headers = {"Authorization": f"Bearer {CR_API_KEY}"}
    limit = asyncio.Semaphore(32)

    async def item(code: str) -> dict[str, Any]:
        async with limit, http.get(f"{sandboxes.cr_url}/inventory/{LINKED_STORE_ID}/{code}", headers=cr_headers) as r:
            assert r.status == 200, await r.text()
            quantity = target_quantity((await r.json())["on_hand"], held[code])
        return {"sku": code, "source_code": "default", "quantity": quantity, "status": in_stock(quantity)}

    items = await asyncio.gather(*(item(code) for code in held))
    url = f"{sandboxes.magento_url}/rest/all/V1/inventory/source-items"
    for i in range(0, len(items), 500):
        body = {"sourceItems": items[i : i + 500]}
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {MAGENTO_TOKEN}"}) as r:
            assert r.status == 200, await r.text()
    return held


async def fill_ledger(redis: Any, held: dict[str, float]) -> None:
    from workers.sync.inventory.setup import held_place
    from workers.sync.inventory.stock import Mode
    from workers.sync.orders.ledger import Ledger

    ledger = Ledger(redis)
    place = held_place(Mode.MSI, "default")
    for n, (code, units) in enumerate(sorted(held.items()), start=1):
        await ledger.hold(900_000_000 + n, f"BENCH-{n}", {(place, code): units})


def verdict(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    return [
        (
            "writes only for the drifted SKUs",
            result["items_written"] == result["drifted"]
            and result["report"]["drift_found"] == result["drifted"]
            and result["magento_writes"] == result["expected_writes"],
            f"{result['items_written']} items in {result['magento_writes']} writes "
            f"(drifted {result['drifted']}, expected {result['expected_writes']} writes)",
        ),
        (
            "every SKU with units held is held back (not drift: Magento already counts them out)",
            result["report"]["held_skus"] == result["held_skus"],
            f"{result['report']['held_skus']} of {result['held_skus']}",
        ),
        ("wall time < 60 s", result["wall_seconds"] < TARGET_SECONDS, f"{result['wall_seconds']} s"),
        ("peak RSS < 200 MB", result["peak_rss_mb"] < TARGET_RSS_MB, f"{result['peak_rss_mb']} MB"),
        ("no drift left", result["drift_left_after"] == 0, f"{result['drift_left_after']} SKUs"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--links", type=int, default=1, choices=(1, 2), help="stock links (2: W-1 and S-1)")
    parser.add_argument("--drift", type=float, default=0.01, help="share of SKUs whose on-hand changes, per link")
    parser.add_argument("--held", type=float, default=0.01, help="share of SKUs with units held for orders")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="latency of every Magento call")
    parser.add_argument("--batch-size", type=int, default=20, help="CRMAGENTO_INVENTORY_BATCH_SIZE")
    parser.add_argument("--concurrency", type=int, default=8, help="CRMAGENTO_MAGENTO_CONCURRENCY")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis", default="embedded", help="embedded, or a redis:// URL naming a spare database")
    parser.add_argument("--json", default=None, help="JSON output (default bench/results/reconcile-<stamp>.json)")
    parser.add_argument("--serve-sandboxes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandboxes:
        serve_sandboxes(args.skus, args.seed, args.links)
        return 0

    print(f"seeding both sandboxes with {args.skus} SKUs ...", flush=True)
    sandboxes = SandboxProcess(args.skus, args.seed, args.links)
    embedded = None
    try:
        if args.redis == "embedded":
            from gateway.embedded_redis import EmbeddedRedis

            embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-reconcile-")) / "redis", fsync="everysec")
            redis_url = embedded.start()
        else:
            if args.redis.rstrip("/").endswith(("/0", ":6379")):
                print("--redis must name a dedicated database other than 0 (it is flushed)", file=sys.stderr)
                return 2
            redis_url = args.redis
        result = asyncio.run(bench(args, sandboxes, redis_url))
    finally:
        sandboxes.stop()
        if embedded is not None:
            embedded.stop()

    print()
    print(
        f"SKUs {result['skus']} on {result['links']} link(s), drifted {result['drifted']}, "
        f"Magento latency {result['latency_ms']} ms, "
        f"batch {result['batch_size']}, concurrency {result['concurrency']}"
    )
    print(f"  wall time          {result['wall_seconds']:>10} s")
    print(f"  SKUs with held     {result['held_skus']:>10}")
    print(f"  Magento reads      {result['magento_reads']:>10}")
    print(f"  Magento writes     {result['magento_writes']:>10}")
    print(f"  items per write    {result['items_per_write']:>10}")
    print(f"  peak RSS           {result['peak_rss_mb']:>10} MB  (before the run {result['rss_before_run_mb']} MB)")
    print(f"  report             {result['report']}")
    for line in result["per_link"]:
        print(f"  link               {line}")
    print(f"  seeding            {result['seed_seconds']} s; drift set up in {result['drift_setup_seconds']} s")
    failed = False
    for name, ok, detail in verdict(result):
        failed |= not ok
        print(f"  [{'ok' if ok else 'MISS'}] {name}: {detail}")
    out = Path(args.json) if args.json else RESULTS / f"reconcile-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
