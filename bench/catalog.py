"""Catalog full sync against the sandbox Magento with injected latency, then a second full sync with nothing
changed.

    .venv/bin/python bench/catalog.py [--products 10000] [--latency-ms 50] [--workers-jobs 64]
                                      [--magento-concurrency 32] [--redis URL] [--styles]

Everything runs in this one process on the real code paths: an embedded Redis (or --redis, a dedicated db
that is FLUSHDB'd), both sandboxes, the gateway and one worker with the shipped catalog rules. The sandbox
Magento answers every /rest call after `--latency-ms`. Prints, for the first sync and the no-op resync:
wall time, products/s, Magento calls and writes per product, image uploads, and the peak RSS of the whole
process (sandboxes included, so it overstates the worker's). Writes JSON to bench/results/.

`--styles` seeds apparel and footwear as styles (half the catalog: 20,000 products are 10,000 variants in
2,000 styles of five, and 10,000 plain products) and reports per variant too; footwear's "Shoes" attribute set,
absent from the sandbox Magento by design, is switched to "Clothing" first so every style can be built.

Targets: a second full sync with nothing changed makes 0 Magento writes and 0 image uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crmcore.logs import configure_logging  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from sandbox.cloudretailer.keys import STATE as CR_STATE  # noqa: E402
from tests.support.stack import Stack, full_stack  # noqa: E402
from workers import sync  # noqa: E402
from workers.registry import Registry  # noqa: E402

WRITE_METHODS = ("POST ", "PUT ", "DELETE ")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def magento_stats(stack: Stack, reset: bool = False) -> dict[str, int]:
    method = stack.magento_api.delete if reset else stack.magento_api.get
    async with method(f"{stack.magento_url}/_sandbox/stats") as resp:
        return (await resp.json())["calls"]


def catalog_shape(stack: Stack) -> dict[str, int]:
    """How many styles, variants and plain products the sandbox Cloud Retailer holds."""
    state = stack.cr_server.app[CR_STATE]
    variants = sum(1 for p in state.products.rows.values() if getattr(p, "style_id", None))
    return {"styles": len(state.styles), "variants": variants, "plain": len(state.products) - variants}


def buildable(stack: Stack) -> None:
    """Footwear's "Shoes" set is missing from the sandbox Magento on purpose (a failure case); a bench of the
    styles path wants every style built, so those records use "Clothing" here."""
    state = stack.cr_server.app[CR_STATE]
    for record in [*state.products.rows.values(), *state.styles.rows.values()]:
        for entry in record.attribute_sets:
            if entry["name"] == "Shoes":
                entry["name"] = "Clothing"


async def run_sync(stack: Stack, label: str, products: int, shape: dict[str, int]) -> dict[str, Any]:
    await magento_stats(stack, reset=True)
    started = time.perf_counter()
    status, body = await stack.admin("POST", "/admin/resync/products", json={})
    assert status == 202, body
    last = -1
    while True:
        _, job = await stack.admin("GET", body["href"])
        progress = job["progress"]
        settled = progress["done"] + progress["failed"]
        if job["status"] in ("done", "failed") and job["result"] is not None and settled >= (progress["total"] or 0):
            break
        if settled != last and settled % 500 < 50:
            print(f"  {label}: {settled}/{progress['total']} settled", file=sys.stderr)
            last = settled
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - started
    calls = await magento_stats(stack)
    total = sum(calls.values())
    writes = sum(v for k, v in calls.items() if k.startswith(WRITE_METHODS))
    uploads = sum(v for k, v in calls.items() if k.startswith("POST ") and k.endswith("/media"))
    variants = shape.get("variants") or 0
    per_variant = (
        {"calls_per_variant": round(total / variants, 2), "writes_per_variant": round(writes / variants, 2)}
        if variants
        else {}
    )
    return {
        "sync": label,
        "products": products,
        **shape,
        "synced": progress["done"],
        "failed": progress["failed"],
        "wall_s": round(wall, 2),
        "products_per_s": round(products / wall, 1),
        "magento_calls": total,
        "calls_per_product": round(total / products, 2),
        "magento_writes": writes,
        "writes_per_product": round(writes / products, 2),
        **per_variant,
        "image_uploads": uploads,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    configure_logging("WARNING", "console")  # unconfigured structlog would print every debug line
    with tempfile.TemporaryDirectory(prefix="crm-bench-catalog-") as tmp:
        embedded = None
        url = args.redis
        if url is None:
            embedded = EmbeddedRedis(Path(tmp), fsync="everysec")
            url = embedded.start()
        try:
            registry = Registry()
            sync.catalog.register(registry)
            latency = [{"match": "* /rest/*", "latency_ms": args.latency_ms}]
            async with full_stack(
                url,
                products=args.products,
                customers=0,
                magento_config={"faults": latency},
                worker_max_jobs=args.worker_jobs,
                magento_concurrency=args.magento_concurrency,
                cr_concurrency=args.magento_concurrency,
                styles=args.styles,
                log_level="WARNING",
                job_timeout_seconds=600,
            ) as stack:
                if args.styles:
                    buildable(stack)
                shape = catalog_shape(stack)
                await stack.start_worker(registry)
                rows = [await run_sync(stack, "first", args.products, shape)]
                rows.append(await run_sync(stack, "no-op", args.products, shape))
                return rows
        finally:
            if embedded is not None:
                embedded.stop()


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    print("  ".join(f"{c:>18}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]!s:>18}" for c in cols))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--worker-jobs", type=int, default=64, help="CRMAGENTO_WORKER_MAX_JOBS of the worker")
    parser.add_argument("--magento-concurrency", type=int, default=32)
    parser.add_argument("--styles", action="store_true", help="seed apparel and footwear as styles")
    parser.add_argument("--redis", default=None, help="redis://host:port/db (FLUSHDB'd); default: embedded")
    parser.add_argument("--json", default=None, help="write the JSON here (default bench/results/catalog-<stamp>.json)")
    args = parser.parse_args()
    rows = asyncio.run(main(args))
    print_table(rows)
    noop = rows[1]
    verdict = "MET" if noop["magento_writes"] == 0 and noop["image_uploads"] == 0 else "NOT MET"
    print(f"target (no-op resync: 0 writes, 0 uploads): {verdict}")
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out = Path(args.json) if args.json else ROOT / "bench" / "results" / f"catalog-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"wrote {out}")
