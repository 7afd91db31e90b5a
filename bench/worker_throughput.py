"""Worker throughput: a queue of real changes, then worker(s) started against it; jobs/s until it is drained.

    .venv/bin/python bench/worker_throughput.py [--jobs 2000] [--workers 1[,2]] [--max-jobs 20[,64]]
                                                [--magento-latency-ms 20] [--stock-share 0.5]
                                                [--worker-env CRMAGENTO_X=Y ...] [--json PATH]

The real product as separate processes (bench/stream.py `Stack`): embedded Redis, `crmagento serve`, both
sandboxes in a child process, and `crmagento worker` processes started per configuration. First one worker
runs the initial full sync into the empty Magento (no injected latency) and stops. Then, for every
combination of `--workers` and `--max-jobs` (CRMAGENTO_WORKER_MAX_JOBS):

1. `--jobs` changes to distinct entities (a new price, or a new on-hand at the linked store, each on its own
   SKU so none coalesces with another) are made through the Cloud Retailer sandbox's API while no worker runs;
   its signed webhooks are accepted by the gateway, so the queue holds exactly `--jobs` jobs;
2. every Magento call gets `--magento-latency-ms`; the sandboxes' call counters are reset;
3. the worker processes start; the run ends when Magento holds every new value and the queue is empty.

Jobs/s = jobs / (last Magento write - first job's first Cloud Retailer read); "incl. start" counts from the
moment the worker processes were spawned (Python start-up and connecting included). Calls per job are the
workers' calls to both sandboxes (from /_sandbox/stats) over the jobs. CPU % per process over the drain shows
what saturates on this 2-core machine. JSON to bench/results/worker-throughput-<stamp>.json or --json.
Exit status 1 when a change was not written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream import (
    ChangeMaker,
    Stack,
    StackOptions,
    Tracker,
    cpu_seconds,
    display,
    host_busy_seconds,
    machine,
    running_stack,
    send_all,
    worker_calls,
    write_json,
)

JOB_READS = ("GET /api/v1/products/{product_id}", "GET /api/v1/inventory/{store_id}/{sku}")


async def prequeue(stack: Stack, maker: ChangeMaker, jobs: int) -> tuple[Tracker, float]:
    """Make `jobs` changes with no worker running; return once the gateway has queued all of them."""
    tracker = Tracker()
    tracker.keep_calls = True
    tracker.ingest(await stack.fetch_log())  # drop what came before
    tracker = Tracker()
    tracker.keep_calls = True
    delivered = await stack.webhooks_delivered()
    started = time.perf_counter()
    sent = await send_all(stack, maker.batch(jobs), concurrency=16)
    bad = [c for c in sent if c.status != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} Cloud Retailer changes failed (first status {bad[0].status})")
    deadline = time.monotonic() + 120
    while await stack.webhooks_delivered() < delivered + jobs:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not accept every webhook within 120 s")
        await asyncio.sleep(0.1)
    seconds = time.perf_counter() - started
    depth = (await stack.status())["queue_depth"]
    if depth != jobs:
        print(f"  note: queue depth {depth} after {jobs} changes (expected equal)", flush=True)
    tracker.ingest(await stack.fetch_log())
    return tracker, seconds


async def one_config(
    stack: Stack, maker: ChangeMaker, args: argparse.Namespace, workers: int, max_jobs: int
) -> dict[str, Any]:
    await stack.set_magento_latency(0)
    tracker, queue_s = await prequeue(stack, maker, args.jobs)
    jobs_before = (await stack.status())["jobs"]
    await stack.set_magento_latency(args.magento_latency_ms)
    await stack.reset_stats()
    pids = stack.pids()
    cpu_before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    host_before, own_before = host_busy_seconds(), sum(os.times()[:2])
    spawned = time.time()
    started = await stack.start_workers(workers, max_jobs)
    worker_cpu_from = spawned
    deadline = time.monotonic() + args.timeout
    while True:
        tracker.ingest(await stack.fetch_log())
        if not tracker.pending() and (await stack.status())["queue_depth"] == 0:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    drained = time.time()
    cpu = {name: (cpu_seconds(pid) or 0.0) - cpu_before[name] for name, pid in pids.items()}
    for n, proc in enumerate(started):
        cpu[f"worker{n + 1}" if workers > 1 else "worker"] = cpu_seconds(proc.pid) or 0.0
    cpu["bench"] = sum(os.times()[:2]) - own_before
    # What the rest of the shared machine used meanwhile: a busy neighbour lowers jobs/s.
    cpu["other"] = max(0.0, host_busy_seconds() - host_before - sum(cpu.values()))
    stats = await stack.stats()
    jobs_after = (await stack.status())["jobs"]
    await stack.stop_workers()

    summary = tracker.summary()
    written = [o.written_at for o in tracker.outcomes.values() if o.written_at is not None]
    first_read = min((t0 for _, call, t0, _ in tracker.calls if call in JOB_READS and t0 >= spawned), default=None)
    last_write = max(written) if written else None
    window = (last_write - first_read) if (first_read and last_write) else None
    calls = worker_calls(stats)
    m_calls = stats["magento"]
    product_puts = sum(n for k, n in m_calls.items() if k.startswith("PUT ") and k.endswith("/products/{sku}"))
    source_posts = sum(n for k, n in m_calls.items() if k.startswith("POST ") and k.endswith("/source-items"))
    qty_jobs = sum(1 for o in tracker.outcomes.values() if o.kind == "qty")
    wall = drained - worker_cpu_from
    return {
        "workers": workers,
        "max_jobs": max_jobs,
        "jobs": args.jobs,
        "written": summary["written"],
        "lost": summary["lost"],
        "jobs_per_s": round(args.jobs / window, 1) if window else None,
        "jobs_per_s_incl_start": round(args.jobs / (last_write - spawned), 1) if last_write else None,
        "drain_s": round(window, 2) if window else None,
        "start_s": round(first_read - spawned, 2) if first_read else None,
        "calls_per_job": round(calls["total"] / args.jobs, 2),
        "magento_calls_per_job": round(calls["magento"] / args.jobs, 2),
        "cr_calls_per_job": round(calls["cr"] / args.jobs, 2),
        "product_puts": product_puts,
        "source_item_posts": source_posts,
        "items_per_source_post": round(qty_jobs / source_posts, 1) if source_posts else None,
        "job_outcomes": {k: v - jobs_before.get(k, 0) for k, v in jobs_after.items() if v != jobs_before.get(k, 0)},
        "cpu_percent": {name: round(100 * s / wall, 1) for name, s in sorted(cpu.items())} if wall > 0 else {},
        "prequeue_s": round(queue_s, 2),
        "calls": stats,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(item.split("=", 1) for item in args.worker_env)
    options = StackOptions(products=args.products, seed=args.seed, redis_fsync=args.redis_fsync, env=env)
    rows = []
    async with running_stack(options) as stack:
        await stack.start_workers(1)
        t0 = time.perf_counter()
        products = await stack.initial_sync()
        sync_s = time.perf_counter() - t0
        await stack.stop_workers()
        per_kind = min(args.stock_share, 1 - args.stock_share) if 0 < args.stock_share < 1 else 1.0
        if args.jobs * per_kind > len(products) * 0.95:
            raise SystemExit(
                f"--jobs {args.jobs} needs more distinct SKUs than the {len(products)} products in Magento: "
                f"raise --products"
            )
        print(f"initial sync: {len(products)} products in Magento after {sync_s:.1f} s", flush=True)
        maker = ChangeMaker(products, args.stock_share, args.seed)
        for workers in args.worker_counts:
            for max_jobs in args.max_jobs_list:
                print(f"{workers} worker(s), max_jobs {max_jobs}: queueing {args.jobs} changes ...", flush=True)
                row = await one_config(stack, maker, args, workers, max_jobs)
                rows.append(row)
                print(
                    f"  {row['jobs_per_s']} jobs/s ({row['jobs_per_s_incl_start']} incl. start), "
                    f"{row['calls_per_job']} calls/job, written {row['written']}/{row['jobs']}",
                    flush=True,
                )
        errors = [ln for name in list(stack.procs) for ln in stack.log_lines(name, "error")]
    return {
        "bench": "worker_throughput",
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "worker_counts", "max_jobs_list")},
        "machine": machine(),
        "initial_sync": {"products_in_magento": len(products), "seconds": round(sync_s, 1)},
        "rows": rows,
        "error_log_lines": errors[-10:],
    }


def report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    print()
    print(
        f"worker throughput: {cfg['jobs']} queued changes ({cfg['stock_share']:.0%} stock), "
        f"Magento latency {cfg['magento_latency_ms']:g} ms"
    )
    head = f"  {'workers':>7} {'max_jobs':>8} {'jobs/s':>8} {'incl.start':>10} {'drain s':>8} {'calls/job':>9}"
    print(head + f" {'items/POST':>10} {'written':>9}  cpu %")
    for r in result["rows"]:
        cpu = " ".join(f"{k} {v:g}" for k, v in r["cpu_percent"].items())
        print(
            f"  {r['workers']:>7} {r['max_jobs']:>8} {r['jobs_per_s']!s:>8} {r['jobs_per_s_incl_start']!s:>10}"
            f" {r['drain_s']!s:>8} {r['calls_per_job']:>9} {r['items_per_source_post']!s:>10}"
            f" {r['written']:>4}/{r['jobs']:<4}  {cpu}"
        )
    for line in result["error_log_lines"]:
        print("  log: " + line[:300])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2000, help="changes queued before the workers start (default 2000)")
    p.add_argument("--workers", default="1", help="comma-separated worker process counts (default 1)")
    p.add_argument("--max-jobs", default="20", help="comma-separated CRMAGENTO_WORKER_MAX_JOBS values (default 20)")
    p.add_argument("--magento-latency-ms", type=float, default=20.0, help="added to every Magento call (default 20)")
    p.add_argument("--stock-share", type=float, default=0.5, help="share of on-hand changes (default 0.5)")
    p.add_argument("--products", type=int, default=0, help="products in Cloud Retailer (default: sized from --jobs)")
    p.add_argument("--worker-env", action="append", default=[], metavar="CRMAGENTO_X=Y", help="extra worker setting")
    p.add_argument("--redis-fsync", choices=("always", "everysec"), default="always")
    p.add_argument("--timeout", type=float, default=600.0, help="longest drain per configuration (s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=None, help="write the JSON here (default bench/results/worker-throughput-*.json)")
    args = p.parse_args(argv)
    args.worker_counts = [int(v) for v in args.workers.split(",") if v.strip()]
    args.max_jobs_list = [int(v) for v in args.max_jobs.split(",") if v.strip()]
    if args.jobs < 1 or not args.worker_counts or not args.max_jobs_list:
        p.error("--jobs must be >= 1; --workers and --max-jobs need at least one value")
    for item in args.worker_env:
        if "=" not in item or not item.startswith("CRMAGENTO_"):
            p.error(f"--worker-env wants CRMAGENTO_NAME=VALUE, got {item!r}")
    if not args.products:
        # 80% of the seeded products reach Magento ("Shoes" fail by design); each kind needs its own SKUs.
        args.products = max(200, int(args.jobs * max(args.stock_share, 1 - args.stock_share) / 0.8 * 1.15) + 50)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    report(result)
    out = write_json(result, "worker-throughput", args.json)
    print(f"  wrote {display(out)}")
    return 1 if any(r["lost"] or r["written"] != r["jobs"] for r in result["rows"]) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
