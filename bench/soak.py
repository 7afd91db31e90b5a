"""Memory soak: the steady stream of real changes for minutes; RSS of the gateway and the worker stays flat.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 50] [--sample-seconds 10] [--warmup-minutes 1]
                                   [--products 1000] [--magento-latency-ms 50] [--max-jobs 20]
                                   [--flat-mb 20] [--flat-percent 10] [--env CRMAGENTO_X=Y ...] [--json PATH]
    make bench ARGS=--soak        (the suite with the soak added)

The same processes and stream as bench/e2e_latency.py (bench/stream.py): embedded Redis, `crmagento serve`,
one `crmagento worker`, both sandboxes in a child process; after the initial sync, `--rate` price and on-hand
changes per second through the Cloud Retailer sandbox's API for `--minutes`. Every `--sample-seconds` the
VmRSS of each process is read from /proc/<pid>/status.

Verdict per process (gateway and worker; Redis and the sandboxes are shown for information: Redis keeps every
event's record for CRMAGENTO_EVENT_LOG_TTL_SECONDS, 7 days, so its memory grows with traffic by design, and the
sandboxes keep what they were sent): "flat" when the last sample is within `--flat-mb` MB or `--flat-percent` %
(whichever is larger) of the first sample after `--warmup-minutes` (imports, caches and connection pools fill
during the first minute). The slope is a least-squares fit over the samples after the warm-up, in MB/min.
Latency per minute is reported too (a slow leak often shows there first). JSON to
bench/results/soak-<stamp>.json or --json. Exit status 1 when the gateway or the worker is not flat, or a
change was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import tracemalloc
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
    rss_mb,
    running_stack,
    steady_stream,
    write_json,
)

JUDGED = ("gateway", "worker")
MEMTRACE = Path(__file__).resolve().parent / "memtrace"


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return None
    return round(60 * sum((t - mx) * (v - my) for t, v in points) / var, 3)


def judge(samples: list[dict[str, Any]], name: str, args: argparse.Namespace) -> dict[str, Any]:
    series = [(s["t"], s["rss_mb"][name]) for s in samples if s["rss_mb"].get(name) is not None]
    if not series:
        return {"verdict": "no samples"}
    warm = [(t, v) for t, v in series if t >= args.warmup_minutes * 60] or series[-1:]
    base, end = warm[0][1], series[-1][1]
    allowed = max(args.flat_mb, base * args.flat_percent / 100)
    growth = end - base
    out = {
        "start_mb": round(series[0][1], 1),
        "after_warmup_mb": round(base, 1),
        "end_mb": round(end, 1),
        "max_mb": round(max(v for _, v in series), 1),
        "growth_after_warmup_mb": round(growth, 1),
        "allowed_mb": round(allowed, 1),
        "slope_mb_per_min": slope_per_minute(warm),
    }
    if name in JUDGED:
        out["verdict"] = "flat" if growth <= allowed else "GROWING"
    else:
        out["verdict"] = "info only"
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(item.split("=", 1) for item in args.env)
    trace_dir: Path | None = None
    if args.tracemalloc:
        # Diagnostic only: tracemalloc costs the traced processes CPU, so its figures are not the soak's.
        trace_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"crm-soak-tracemalloc-{os.getpid()}"
        trace_dir.mkdir(parents=True, exist_ok=True)
        env |= {
            "PYTHONPATH": str(MEMTRACE),
            "CRM_BENCH_TRACEMALLOC_DIR": str(trace_dir),
        }
    options = StackOptions(products=args.products, seed=args.seed, redis_fsync=args.redis_fsync, env=env)
    samples: list[dict[str, Any]] = []
    snaps: dict[str, list[Path]] = {}
    async with running_stack(options) as stack:
        await stack.start_workers(1, args.max_jobs)
        products = await stack.initial_sync()
        print(f"initial sync: {len(products)} products in Magento", flush=True)
        await stack.set_magento_latency(args.magento_latency_ms)
        dead_before = (await stack.status())["dead_letters"]
        tracker = Tracker()
        maker = ChangeMaker(products, args.stock_share, args.seed)
        pids = stack.pids()
        started = time.time()
        stop = asyncio.Event()
        meter = CpuMeter(pids)

        async def sample() -> None:
            t = round(time.time() - started, 1)
            entry: dict[str, Any] = {"t": t, "rss_mb": {name: rss_mb(pid) for name, pid in pids.items()}}
            if len(samples) > 0:
                entry["cpu_percent"] = meter.percent()
            samples.append(entry)
            if len(samples) == 1 or int(t) % 60 < args.sample_seconds or stop.is_set():
                cells = "  ".join(f"{k} {v:.1f}" for k, v in entry["rss_mb"].items() if v is not None)
                print(f"  t={t:>6.0f} s  RSS MB: {cells}", flush=True)

        async def fetch() -> None:
            tracker.ingest(await stack.fetch_log())

        async def snapshot() -> None:
            """SIGUSR1 to the gateway and the worker: each writes a tracemalloc snapshot (--tracemalloc)."""
            assert trace_dir is not None
            for name in JUDGED:
                before = set(trace_dir.glob(f"{pids[name]}-*.snap"))
                os.kill(pids[name], signal.SIGUSR1)
                for _ in range(600):  # dumping takes a while in a big heap
                    await asyncio.sleep(0.1)
                    new = set(trace_dir.glob(f"{pids[name]}-*.snap")) - before
                    if new:
                        await asyncio.sleep(1.0)  # let the writer finish the file
                        snaps.setdefault(name, []).append(new.pop())
                        break

        async def snapshot_after_warmup() -> None:
            await asyncio.sleep(args.warmup_minutes * 60)
            await snapshot()

        warm_snap = asyncio.create_task(snapshot_after_warmup()) if trace_dir is not None else None
        await sample()
        sampler = asyncio.create_task(every(args.sample_seconds, sample, stop))
        fetcher = asyncio.create_task(every(2.0, fetch, stop))
        print(
            f"streaming {args.rate:g} changes/s for {args.minutes:g} min "
            f"(Magento latency {args.magento_latency_ms:g} ms), RSS every {args.sample_seconds:g} s",
            flush=True,
        )
        changes = await steady_stream(stack, maker, args.rate, args.minutes * 60)
        if warm_snap is not None:
            await warm_snap
            await snapshot()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await fetch()
            if not tracker.pending():
                break
            await asyncio.sleep(0.5)
        stop.set()
        await sampler
        await fetcher
        status = await stack.status()
        errors = stack.log_lines("worker-1", "error") + stack.log_lines("gateway", "error")
        redis_info = await stack.sandbox("magento", "GET", "/_sandbox/health")

    growth = memory_growth(snaps) if trace_dir is not None else None
    per_minute = []
    for minute in range(int(args.minutes + 0.999)):
        s = tracker.summary(since=started + minute * 60, until=started + (minute + 1) * 60)
        in_minute = [
            x["cpu_percent"] for x in samples if "cpu_percent" in x and minute * 60 < x["t"] <= (minute + 1) * 60
        ]
        other = round(sum(c["other"] for c in in_minute) / len(in_minute), 1) if in_minute else None
        per_minute.append(
            {"minute": minute + 1, "changes": s["changes"], "lost": s["lost"], "other_cpu_percent": other}
            | s["latency_ms"]
        )
    measured = tracker.summary(since=started + args.warmup_minutes * 60)
    return {
        "bench": "soak",
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "pids": pids,
        "processes": {name: judge(samples, name, args) for name in pids},
        "samples": samples,
        "sent": len(changes),
        "send_failures": sum(1 for c in changes if c.status != 200),
        "measured": measured,
        "whole_run": tracker.summary(),
        "per_minute": per_minute,
        "dead_letters": status["dead_letters"] - dead_before,
        "jobs": status["jobs"],
        "magento_holds": {k: redis_info.get(k) for k in ("products", "source_items")},
        "error_log_lines": errors[-10:],
        "tracemalloc_growth": growth,
    }


def memory_growth(snaps: dict[str, list[Path]], top: int = 12) -> dict[str, Any]:
    """Per process, the source lines whose live allocations grew most between the two snapshots."""
    out: dict[str, Any] = {}
    root = str(MEMTRACE.parents[1]) + "/"
    for name, paths in snaps.items():
        if len(paths) < 2:
            out[name] = "fewer than two snapshots"
            continue
        first, last = (tracemalloc.Snapshot.load(str(p)) for p in paths[:2])
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
        first, last = first.filter_traces(ignore), last.filter_traces(ignore)
        stats = last.compare_to(first, "traceback")[:top]
        out[name] = [
            {
                "size_diff_kb": round(st.size_diff / 1024, 1),
                "count_diff": st.count_diff,
                "traceback": [f"{f.filename.removeprefix(root)}:{f.lineno}" for f in st.traceback][-6:],
            }
            for st in stats
        ]
        for p in paths:
            p.unlink(missing_ok=True)
    return out


def report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    print()
    print(
        f"memory soak: {cfg['rate']:g} changes/s for {cfg['minutes']:g} min, RSS every {cfg['sample_seconds']:g} s, "
        f"warm-up {cfg['warmup_minutes']:g} min"
    )
    print(f"  {'process':<10}{'start':>9}{'warm':>9}{'end':>9}{'max':>9}{'growth':>9}{'MB/min':>9}  verdict")
    for name, p in result["processes"].items():
        if "start_mb" not in p:
            print(f"  {name:<10}  {p['verdict']}")
            continue
        print(
            f"  {name:<10}{p['start_mb']:>9}{p['after_warmup_mb']:>9}{p['end_mb']:>9}{p['max_mb']:>9}"
            f"{p['growth_after_warmup_mb']:>9}{p['slope_mb_per_min']!s:>9}  {p['verdict']}"
            + (f" (allowed {p['allowed_mb']} MB)" if p["verdict"] != "info only" else "")
        )
    m = result["measured"]
    print(f"\n  latency after the warm-up (achieved {m.get('rate_per_s')} changes/s):")
    print_latency_table([("all", m["latency_ms"]), ("price", m["latency_ms_price"]), ("stock", m["latency_ms_qty"])])
    print("  per minute (latency ms; CPU % used by other work on the machine):")
    for r in result["per_minute"]:
        latency = f"p50 {r['p50']}, p99 {r['p99']}, max {r['max']}"
        print(f"    minute {r['minute']:>3}: {latency}; other CPU {r['other_cpu_percent']}%")
    if result.get("tracemalloc_growth"):
        print("\n  tracemalloc (diagnostic run): live allocations that grew most after the warm-up")
        for name, stats in result["tracemalloc_growth"].items():
            print(f"    {name}:")
            for st in stats if isinstance(stats, list) else []:
                where = " < ".join(st["traceback"][::-1])
                print(f"      {st['size_diff_kb']:+} KiB in {st['count_diff']:+} blocks  <- {where}")
    w = result["whole_run"]
    print(
        f"  written {w['written']}, superseded {w['superseded']}, lost {w['lost']}, final values wrong "
        f"{w['final_state_wrong']}, send failures {result['send_failures']}, dead letters {result['dead_letters']}"
    )
    for line in result["error_log_lines"]:
        print("  log: " + line[:300])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the stream (default 10)")
    p.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    p.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling interval (default 10)")
    p.add_argument("--warmup-minutes", type=float, default=1.0, help="minutes before the baseline sample (default 1)")
    p.add_argument("--products", type=int, default=1000)
    p.add_argument("--magento-latency-ms", type=float, default=50.0)
    p.add_argument("--stock-share", type=float, default=0.5)
    p.add_argument("--max-jobs", type=int, default=20, help="CRMAGENTO_WORKER_MAX_JOBS (default 20)")
    p.add_argument("--flat-mb", type=float, default=20.0, help="growth allowed after the warm-up, MB (default 20)")
    p.add_argument("--flat-percent", type=float, default=10.0, help="or this share of the baseline (default 10)")
    p.add_argument("--redis-fsync", choices=("always", "everysec"), default="always")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--env", action="append", default=[], metavar="CRMAGENTO_X=Y", help="extra gateway and worker setting"
    )
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnostic: trace allocations in gateway and worker and show what grew after the warm-up; it slows "
        "them several times, so use a low --rate (e.g. 10) and ignore the latency and RSS figures of that run",
    )
    p.add_argument("--json", default=None, help="write the JSON here (default bench/results/soak-<stamp>.json)")
    args = p.parse_args(argv)
    for item in args.env:
        if "=" not in item or not item.startswith("CRMAGENTO_"):
            p.error(f"--env wants CRMAGENTO_NAME=VALUE, got {item!r}")
    if args.minutes <= 0 or args.rate <= 0 or args.sample_seconds <= 0:
        p.error("--minutes, --rate and --sample-seconds must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    report(result)
    out = write_json(result, "soak", args.json)
    print(f"  wrote {display(out)}")
    growing = any(result["processes"].get(n, {}).get("verdict") == "GROWING" for n in JUDGED)
    return 1 if growing or result["measured"]["lost"] or result["whole_run"]["final_state_wrong"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
