"""End-to-end latency: a Cloud Retailer change (its webhook sent) -> the value written in Magento, at a steady rate.

    .venv/bin/python bench/e2e_latency.py [--rate 50] [--duration 60] [--warmup 5] [--products 1000]
                                          [--magento-latency-ms 50] [--stock-share 0.5] [--max-jobs 20]
                                          [--redis-fsync always|everysec] [--env CRMAGENTO_X=Y ...] [--json PATH]

The real product as separate processes (bench/stream.py `Stack`): an embedded Redis, `crmagento serve`, one
`crmagento worker` (`--max-jobs` = CRMAGENTO_WORKER_MAX_JOBS) and both sandboxes in a child process. Cloud
Retailer holds `--products` products; Magento starts empty and the initial full sync fills it (without
injected latency), then every Magento call gets `--magento-latency-ms` and the stream starts: `--rate`
changes per second, open loop, for `--warmup` + `--duration` seconds, each a new price (`PUT
/api/v1/products/{id}`) or a new on-hand at the linked store (`PUT /api/v1/inventory/W-1/{sku}`) made through
the Cloud Retailer sandbox's API, which sends the signed webhook to the gateway like the real one.

Latency per change = the moment Magento stored the value (the PUT of the product, or the source-items POST
carrying the quantity) minus the moment Cloud Retailer stored the change and handed its webhook to the sender,
both taken inside the sandbox process (one clock, no polling; see bench/stream.py). A stock change waits for
the inventory batcher (CRMAGENTO_INVENTORY_BATCH_WAIT_SECONDS, 50 ms) by design, so the two kinds are also
reported apart. Changes made during the warm-up are not counted.

Prints achieved rate, p50/p95/p99/max, and what was written, superseded (a later change to the same SKU got
there first: correct, not a loss) or lost, and checks the final state (every SKU's last value is what Magento
holds). JSON to bench/results/e2e-latency-<stamp>.json or --json. Exit status 1 when a change was lost or a
final value is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream import (
    ChangeMaker,
    CpuMeter,
    StackOptions,
    Tracker,
    display,
    every,
    machine,
    print_latency_table,
    running_stack,
    steady_stream,
    worker_calls,
    write_json,
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(item.split("=", 1) for item in args.env)
    options = StackOptions(products=args.products, seed=args.seed, redis_fsync=args.redis_fsync, env=env)
    async with running_stack(options) as stack:
        await stack.start_workers(1, args.max_jobs)
        t0 = time.perf_counter()
        products = await stack.initial_sync()
        sync_s = time.perf_counter() - t0
        print(f"initial sync: {len(products)} products in Magento after {sync_s:.1f} s", flush=True)
        await stack.set_magento_latency(args.magento_latency_ms, args.magento_jitter_ms)
        await stack.reset_stats()
        dead_before = (await stack.status())["dead_letters"]
        tracker = Tracker()
        maker = ChangeMaker(products, args.stock_share, args.seed)
        stop = asyncio.Event()

        async def fetch() -> None:
            tracker.ingest(await stack.fetch_log())

        fetcher = asyncio.create_task(every(2.0, fetch, stop))
        meter = CpuMeter(stack.pids())
        started = time.time()
        measured_from = started + args.warmup
        print(
            f"streaming {args.rate:g} changes/s for {args.warmup:g} s warm-up + {args.duration:g} s "
            f"(Magento latency {args.magento_latency_ms:g} ms)",
            flush=True,
        )
        changes = await steady_stream(stack, maker, args.rate, args.warmup + args.duration)
        ended = time.time()
        cpu = meter.percent()
        # Drain: until nothing is pending (or the grace period is over: what is left is lost).
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            await fetch()
            if not tracker.pending():
                break
            await asyncio.sleep(0.5)
        stop.set()
        await fetcher
        await fetch()
        summary = tracker.summary(since=measured_from)
        whole = tracker.summary()
        stats = await stack.stats()
        queue = await stack.status()
        errors = stack.log_lines("worker-1", "error") + stack.log_lines("gateway", "error")
    calls = worker_calls(stats)
    failed_sends = sum(1 for c in changes if c.status != 200)
    measured = [c for c in changes if c.sent_at >= measured_from]
    return {
        "bench": "e2e_latency",
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "initial_sync": {"products_in_magento": len(products), "seconds": round(sync_s, 1)},
        "sent": len(changes),
        "sent_measured": len(measured),
        "send_failures": failed_sends,
        "offered_rate_per_s": round(len(measured) / args.duration, 2) if args.duration else None,
        "stream_seconds": round(ended - started, 1),
        "measured": summary,
        "whole_run": {k: whole[k] for k in ("changes", "written", "superseded", "lost", "final_state_wrong")},
        "magento_calls": calls["magento"],
        "cr_calls": calls["cr"],
        "calls_per_change": round(calls["total"] / len(changes), 2) if changes else None,
        "calls": stats,
        "magento_errors": tracker.magento_errors,
        # The initial sync dead-letters the seeded "Shoes" products by design; these are the stream's.
        "dead_letters": queue["dead_letters"] - dead_before,
        "jobs": queue["jobs"],
        "cpu_percent_during_stream": cpu,
        "error_log_lines": errors[-10:],
    }


def report(result: dict[str, Any]) -> None:
    m = result["measured"]
    cfg = result["config"]
    print()
    print(
        f"end-to-end latency, Cloud Retailer webhook sent -> Magento written "
        f"({cfg['rate']:g}/s offered, {cfg['duration']:g} s measured, Magento latency {cfg['magento_latency_ms']:g} ms,"
        f" CRMAGENTO_WORKER_MAX_JOBS {cfg['max_jobs']})"
    )
    print(f"  achieved rate {m.get('rate_per_s')} changes/s; {m['changes']} changes measured")
    print_latency_table([("all", m["latency_ms"]), ("price", m["latency_ms_price"]), ("stock", m["latency_ms_qty"])])
    print(
        f"  written {m['written']}, superseded {m['superseded']}, lost {m['lost']}, "
        f"final values wrong {m['final_state_wrong']}, send failures {result['send_failures']}, "
        f"dead letters {result['dead_letters']}"
    )
    print(
        f"  calls per change {result['calls_per_change']} (Magento {result['magento_calls']}, "
        f"Cloud Retailer {result['cr_calls']}); Magento errors {result['magento_errors']}"
    )
    cpu = result["cpu_percent_during_stream"]
    print("  CPU % during the stream: " + ", ".join(f"{k} {v:g}" for k, v in cpu.items()))
    for line in result["error_log_lines"]:
        print("  log: " + line[:300])


def failed(result: dict[str, Any]) -> bool:
    m = result["measured"]
    return bool(
        m["lost"] or result["whole_run"]["final_state_wrong"] or result["send_failures"] or result["dead_letters"]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds streamed before measuring (default 5)")
    p.add_argument("--products", type=int, default=1000, help="products in Cloud Retailer (default 1000)")
    p.add_argument("--magento-latency-ms", type=float, default=50.0, help="added to every Magento call (default 50)")
    p.add_argument("--magento-jitter-ms", type=float, default=0.0, help="uniform extra latency (default 0)")
    p.add_argument("--stock-share", type=float, default=0.5, help="share of on-hand changes (default 0.5)")
    p.add_argument("--max-jobs", type=int, default=20, help="CRMAGENTO_WORKER_MAX_JOBS (default 20, as shipped)")
    p.add_argument("--redis-fsync", choices=("always", "everysec"), default="always")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for the last writes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--env", action="append", default=[], metavar="CRMAGENTO_X=Y", help="extra gateway and worker setting"
    )
    p.add_argument("--json", default=None, help="write the JSON here (default bench/results/e2e-latency-<stamp>.json)")
    args = p.parse_args(argv)
    for item in args.env:
        if "=" not in item or not item.startswith("CRMAGENTO_"):
            p.error(f"--env wants CRMAGENTO_NAME=VALUE, got {item!r}")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or not 0 <= args.stock_share <= 1:
        p.error("--rate and --duration must be > 0, --warmup >= 0, --stock-share within 0..1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    report(result)
    out = write_json(result, "e2e-latency", args.json)
    print(f"  wrote {display(out)}")
    return 1 if failed(result) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
