"""The benchmark suite (`make bench`): every bench in turn, one summary table, one JSON.

    .venv/bin/python bench/suite.py [--only NAME,...] [--quick] [--soak] [--soak-minutes 10]
                                    [--pass NAME="--flag value ..."] [--timeout-minutes 40]
    make bench ARGS="--quick"            make bench ARGS="--only e2e,throughput"      make bench ARGS=--soak

Benches (each its own script and process, run with suite-sized arguments; each prints its own table and
writes its own JSON, which the suite collects):

    ingest      bench/ingest.py      gateway vs a bare aiohttp handler under wrk, 32 and 128 connections, one pair
    catalog     bench/catalog.py     full catalog sync of 2000 products (Magento 50 ms/call), then a no-op resync
    reconcile   bench/reconcile.py   inventory reconciliation, 100k SKUs, 1% drift, Magento 50 ms/call
    e2e         bench/e2e_latency.py Cloud Retailer change -> Magento written at a steady 50/s for 60 s
    throughput  bench/worker_throughput.py  2000 queued changes drained by 1 and 2 workers, max_jobs 20 and 64
    soak        bench/soak.py        (only with --soak or --only soak) 10 minutes of the steady stream, RSS of
                                     gateway and worker every 10 s: flat or not

`--quick` shrinks every bench (a smoke run of the whole suite in about a minute; figures are not comparable
with full runs). `--pass NAME="..."` appends arguments to one bench's command line (repeatable), e.g.
`--pass e2e="--rate 100"`. A bench that fails or is skipped (ingest without wrk) is reported as such and the
others still run; the exit status is 1 when any bench failed.

The summary table is printed at the end and the whole result (each bench's command, exit status, wall time
and its own JSON) goes to bench/results/suite-<UTC stamp>.json. The machine is shared: figures move by
10-30% between runs when other work runs; compare runs made side by side, not against old numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    summarise: Callable[[dict[str, Any]], Rows]
    # ingest.py has no --json (its owner keeps it unchanged): its newest ingest-*.json is collected instead.
    json_flag: bool = True
    needs: str | None = None  # an executable the bench cannot run without
    default: bool = True  # part of a plain `make bench`


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:g} ms"


def summarise_ingest(data: dict[str, Any]) -> Rows:
    rows: Rows = []
    for m in data.get("medians", []):
        if m["target"] != "gateway":
            continue
        bare = next(
            (b for b in data["medians"] if b["target"] == "bare" and b["connections"] == m["connections"]), None
        )
        bare_rps = f", bare {bare['requests_per_sec']:.0f} req/s" if bare else ""
        rows.append(
            (
                f"{m['connections']} connections",
                f"gateway/bare {m['ratio_gateway_bare']}: gateway {m['requests_per_sec']:.0f} req/s, "
                f"p99 {m['p99_ms']:.1f} ms{bare_rps}; non-2xx {m['non_2xx']}",
            )
        )
    return rows


def summarise_catalog(data: dict[str, Any]) -> Rows:
    rows: Rows = []
    lat = data.get("args", {}).get("latency_ms")
    for r in data.get("rows", []):
        if r["sync"] == "first":
            rows.append(
                (
                    f"full sync, {r['products']} products, {lat:g} ms",
                    f"{r['wall_s']} s = {r['products_per_s']} products/s; {r['calls_per_product']} calls and "
                    f"{r['writes_per_product']} writes/product; {r['failed']} failed (Shoes, by design); "
                    f"peak RSS {r['peak_rss_mb']} MB",
                )
            )
        else:
            rows.append(
                (
                    "no-op resync",
                    f"{r['wall_s']} s; {r['magento_writes']} writes, {r['image_uploads']} uploads",
                )
            )
    return rows


def summarise_reconcile(data: dict[str, Any]) -> Rows:
    return [
        (
            f"{data['skus']} SKUs, {data['drifted']} drifted, {data['latency_ms']:g} ms",
            f"{data['wall_seconds']} s; {data['magento_reads']} reads, {data['magento_writes']} writes x "
            f"{data['items_per_write']} items; peak RSS {data['peak_rss_mb']} MB; "
            f"drift left {data['drift_left_after']}",
        )
    ]


def summarise_e2e(data: dict[str, Any]) -> Rows:
    m = data["measured"]
    cfg = data["config"]
    lat = m["latency_ms"]
    return [
        (
            f"{cfg['rate']:g}/s for {cfg['duration']:g} s, Magento {cfg['magento_latency_ms']:g} ms",
            f"achieved {m.get('rate_per_s')}/s; p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, "
            f"p99 {_ms(lat['p99'])}, max {_ms(lat['max'])}",
        ),
        (
            "price / stock p50, p99",
            f"price {_ms(m['latency_ms_price']['p50'])}, {_ms(m['latency_ms_price']['p99'])}; "
            f"stock {_ms(m['latency_ms_qty']['p50'])}, {_ms(m['latency_ms_qty']['p99'])}",
        ),
        (
            "outcome",
            f"{m['written']} written, {m['superseded']} superseded, {m['lost']} lost, "
            f"{m['final_state_wrong']} final values wrong; {data['calls_per_change']} calls/change",
        ),
    ]


def summarise_throughput(data: dict[str, Any]) -> Rows:
    cfg = data["config"]
    return [
        (
            f"{r['workers']} worker(s) x max_jobs {r['max_jobs']}, {cfg['magento_latency_ms']:g} ms",
            f"{r['jobs_per_s']} jobs/s ({r['jobs_per_s_incl_start']} incl. start); {r['calls_per_job']} calls/job; "
            f"written {r['written']}/{r['jobs']}",
        )
        for r in data["rows"]
    ]


def summarise_soak(data: dict[str, Any]) -> Rows:
    rows: Rows = []
    for name, p in data["processes"].items():
        rows.append(
            (
                f"RSS {name}",
                f"start {p['start_mb']} MB, after warm-up {p['after_warmup_mb']} MB, end {p['end_mb']} MB, "
                f"max {p['max_mb']} MB, slope {p['slope_mb_per_min']} MB/min: {p['verdict']}",
            )
        )
    lat = data["measured"]["latency_ms"]
    rows.append(
        (
            "latency over the soak",
            f"p50 {_ms(lat['p50'])}, p99 {_ms(lat['p99'])}, max {_ms(lat['max'])}; lost {data['measured']['lost']}",
        )
    )
    return rows


BENCHES = [
    Bench(
        "ingest",
        "ingest.py",
        ["--connections", "32,128", "--repeat", "1"],
        ["--connections", "32", "--repeat", "1", "--duration", "3", "--warmup", "1"],
        summarise_ingest,
        json_flag=False,
        needs="wrk",
    ),
    Bench("catalog", "catalog.py", ["--products", "2000"], ["--products", "300"], summarise_catalog),
    Bench("reconcile", "reconcile.py", [], ["--skus", "10000"], summarise_reconcile),
    Bench("e2e", "e2e_latency.py", [], ["--duration", "15", "--warmup", "2", "--products", "400"], summarise_e2e),
    Bench(
        "throughput",
        "worker_throughput.py",
        ["--jobs", "2000", "--workers", "1,2", "--max-jobs", "20,64"],
        ["--jobs", "300", "--workers", "1", "--max-jobs", "20"],
        summarise_throughput,
    ),
    Bench("soak", "soak.py", [], ["--minutes", "1", "--warmup-minutes", "0.25"], summarise_soak, default=False),
]


def run_bench(bench: Bench, args: argparse.Namespace, stamp: str, log_dir: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"name": bench.name, "script": f"bench/{bench.script}"}
    if bench.needs and not shutil.which(bench.needs):
        record.update(status="skipped", reason=f"`{bench.needs}` not found (Debian: apt-get install {bench.needs})")
        print(f"\n=== {bench.name}: SKIPPED, {record['reason']}", flush=True)
        return record
    extra = [a for name, value in args.passes for a in shlex.split(value) if name == bench.name]
    cmd = [sys.executable, str(BENCH / bench.script), *(bench.quick if args.quick else bench.full), *extra]
    if bench.name == "soak" and not args.quick:
        cmd += ["--minutes", f"{args.soak_minutes:g}"]
    json_path = RESULTS / f"suite-{stamp}-{bench.name}.json"
    if bench.json_flag:
        cmd += ["--json", str(json_path)]
    shown = " ".join(shlex.quote(c) for c in [".venv/bin/python", f"bench/{bench.script}", *cmd[2:]])
    record["command"] = shown
    print(f"\n=== {bench.name}: {shown}", flush=True)
    started = time.time()
    log_path = log_dir / f"{bench.name}.log"
    # Own session, so a timeout can stop the bench and everything it started (it stops its own children on
    # SIGTERM); the output goes to the terminal and to a log next to the JSON.
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        assert proc.stdout is not None
        # A watchdog, not a check between lines: a bench that hangs silently must be stopped too.
        expired = threading.Event()

        def stop_bench() -> None:
            expired.set()
            _stop_group(proc)

        limit = args.timeout_minutes + (args.soak_minutes if bench.name == "soak" else 0)
        watchdog = threading.Timer(limit * 60, stop_bench)
        watchdog.start()
        try:
            for line in proc.stdout:
                sys.stdout.write("  " + line)
                sys.stdout.flush()
                log.write(line)
            proc.wait()
        except KeyboardInterrupt:
            _stop_group(proc)
            raise
        finally:
            watchdog.cancel()
        if expired.is_set():
            record["timed_out"] = True
    record["exit_status"] = proc.returncode
    record["seconds"] = round(time.time() - started, 1)
    record["log"] = str(log_path.relative_to(ROOT))
    if bench.json_flag:
        found = json_path if json_path.exists() else None
    else:
        # Someone else may run the same bench meanwhile (a shared machine): take the newest file written since
        # this bench started whose recorded command line is ours.
        fresh = [p for p in RESULTS.glob(f"{bench.name}-*.json") if p.stat().st_mtime >= started - 1]
        ours = [p for p in fresh if _command_of(p).endswith(" ".join(cmd[1:]))]
        found = max(ours, key=lambda p: p.stat().st_mtime) if ours else None
    if found is not None:
        record["json_file"] = str(found.relative_to(ROOT))
        record["result"] = json.loads(found.read_text())
        try:
            record["summary"] = bench.summarise(record["result"])
        except (KeyError, TypeError, ValueError) as exc:  # a bench's JSON changed shape: say so, keep the rest
            record["summary"] = [("summary", f"could not summarise: {exc!r}")]
    if record.get("timed_out"):
        record["status"] = "timed out"
    elif proc.returncode != 0:
        record["status"] = f"FAILED (exit {proc.returncode})"
    elif found is None:
        record["status"] = "FAILED (no JSON written)"
    else:
        record["status"] = "ok"
    return record


def _command_of(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return str(json.loads(path.read_text()).get("command", ""))
    return ""


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the bench's process group (each bench stops its own children on SIGTERM), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB"
    redis_version = ""
    with contextlib.suppress(Exception):
        from gateway.embedded_redis import server_binary

        out = subprocess.run([server_binary(), "--version"], capture_output=True, text=True, check=False).stdout
        redis_version = out.split("v=", 1)[1].split()[0] if "v=" in out else out.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "python": platform.python_version(),
        "redis_server": redis_version,
        "platform": platform.platform(),
        "wrk": shutil.which("wrk") or "missing",
    }


def print_summary(records: list[dict[str, Any]], info: dict[str, Any], wall: float) -> None:
    print("\n" + "=" * 100)
    print(
        f"bench suite summary ({info['cpus']} CPUs {info['cpu_model']}, {info['memory']}, Python {info['python']}, "
        f"Redis {info['redis_server']}; {wall / 60:.1f} min; shared machine: expect 10-30% run-to-run noise)"
    )
    print("=" * 100)
    width = max([len(label) for r in records for label, _ in r.get("summary", [])] + [30])
    for r in records:
        print(f"\n{r['name']} [{r['status']}]" + (f" {r['seconds']} s" if "seconds" in r else ""))
        if r.get("reason"):
            print(f"  {r['reason']}")
        for label, value in r.get("summary", []):
            print(f"  {label:<{width}}  {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [b.name for b in BENCHES]
    p.add_argument("--only", default="", help=f"comma-separated benches to run, from {', '.join(names)}")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the whole suite")
    p.add_argument("--soak", action="store_true", help="add the memory soak (10 minutes by default)")
    p.add_argument("--soak-minutes", type=float, default=10.0, help="length of the soak (default 10)")
    p.add_argument(
        "--pass",
        dest="passes",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help="extra arguments for one bench (repeatable)",
    )
    p.add_argument(
        "--timeout-minutes",
        type=float,
        default=40.0,
        help="longest one bench may run, plus --soak-minutes for the soak (default 40)",
    )
    args = p.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        p.error(f"unknown bench(es) {', '.join(unknown)}; known: {', '.join(names)}")
    parsed = []
    for item in args.passes:
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            p.error(f"--pass wants NAME=ARGS with NAME one of {', '.join(names)}, got {item!r}")
        parsed.append((name, value))
    args.passes = parsed
    if chosen:
        args.selected = [b for b in BENCHES if b.name in chosen]
    else:
        args.selected = [b for b in BENCHES if b.default or (args.soak and b.name == "soak")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / f"suite-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    started = time.time()
    records = []
    print(f"bench suite: {', '.join(b.name for b in args.selected)}{' (quick)' if args.quick else ''}", flush=True)
    try:
        for bench in args.selected:
            records.append(run_bench(bench, args, stamp, log_dir))
    except KeyboardInterrupt:
        print("\ninterrupted: the running bench was stopped; summary of what finished", file=sys.stderr)
    wall = time.time() - started
    print_summary(records, info, wall)
    out = RESULTS / f"suite-{stamp}.json"
    payload = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": " ".join(["bench/suite.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "machine": info,
        "load_avg_at_end": os.getloadavg(),
        "seconds": round(wall, 1),
        "benches": records,
    }
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)} (logs in {log_dir.relative_to(ROOT)}/)")
    return 0 if records and all(r["status"] in ("ok", "skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
