"""Ingest throughput: the real gateway against a bare aiohttp server, driven by wrk with signed webhooks.

    .venv/bin/python bench/ingest.py [--duration S] [--connections C[,C...]] [--threads T] [--repeat N]
                                     [--redis embedded|embedded-always|redis://HOST:PORT/DB]
                                     [--gateway-env CRMAGENTO_X=Y ...] [--profile]
                                     [--pin] [--loop asyncio|uvloop] [--patch NAME,...]   (experiments)

One run starts a Redis (an EmbeddedRedis with appendfsync everysec in a temp dir by default; `embedded-always`
for appendfsync always; or an external URL naming a dedicated db other than 0, which is FLUSHDB'd: never
FLUSHALL), the gateway (`crmagento serve`, log level WARNING) and bench/bare_server.py (same event loop
and runner set-up), then for every connection count: wrk against the bare server, then wrk against the
gateway, with the same duration, connections and threads.

The gateway gets unique, freshly signed events (one webhook-id each, Standard Webhooks HMAC-SHA256 like
gateway/signatures.py `sign()`), product.updated / inventory.updated / customer.updated over many entities.
They are pre-built as raw HTTP requests and replayed by bench/ingest.lua, so wrk does no per-request work;
the set is sized from the bare server's rate so the gateway run does not wrap around (a wrap would replay
ids and turn 202 into 200 "duplicate"; the table flags it).

Prints a table (target, requests/s, p50, p99, non-2xx, gateway/bare against the bare run just before) plus,
per gateway run, the gateway's own counters (GET /metrics), Redis INFO commandstats deltas (evalsha calls =
batches, so events per batch and Lua time per event; with an external Redis they include other clients'
commands), and the CPU used by the server, Redis, wrk and everything else on the machine ("other": a high
value means something else disturbed the run). `--repeat N` runs N bare+gateway pairs per connection count
and adds medians (the paired ratio's median and range): use it on a shared or noisy machine. Everything is
also written to bench/results/ingest-<timestamp>.json. Exit status 1 when the gateway answered any request
with non-2xx or a socket error.

`--profile` samples both servers with py-spy during their measured runs (raw collapsed stacks, loadable in
speedscope or flamegraph.pl, next to the JSON; summarised by category on stdout); py-spy costs the target
CPU, so do not compare profiled figures with unprofiled ones. `--loop uvloop` runs BOTH servers on uvloop
(needs `pip install uvloop`) and `--patch` runs the gateway through bench/gateway_variants.py with
monkeypatches that model proposed optimisations or measure a part: experiments only, never a claim about
the real gateway. `--pin` puts each server under test alone on CPU 0 and wrk and Redis on the other CPUs
(taskset), so neither side's figures depend on where the kernel happens to place the load.

The target: gateway/bare >= 0.5 with gateway p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis

from gateway.embedded_redis import EmbeddedRedis
from gateway.signatures import sign

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LUA = BENCH / "ingest.lua"
BARE_SERVER = BENCH / "bare_server.py"
HOST = "127.0.0.1"
PATH = "/webhooks/cloudretailer"
TARGET_RATIO = 0.5
TARGET_P99_MS = 20.0

# Entity spread of the generated events.
PRODUCTS = 50_000
STORES = 8
CUSTOMERS = 200_000


# --------------------------------------------------------------------------------------------------
# processes


class Processes:
    """Every process the run starts, stopped in reverse order on any exit."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._embedded: list[EmbeddedRedis] = []

    def popen(self, name: str, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C reaches only this script, which then stops the children in order.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._procs.append((name, proc))
        return proc

    def embedded(self, server: EmbeddedRedis) -> None:
        self._embedded.append(server)

    def stop_all(self) -> None:
        for _name, proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        for server in reversed(self._embedded):
            with contextlib.suppress(Exception):
                server.stop()
        self._embedded.clear()


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
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


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback URL we built)
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def host_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine, all CPUs, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


# --------------------------------------------------------------------------------------------------
# redis


@dataclass
class RedisForRun:
    url: str
    kind: str
    client: redis.Redis
    pid: int | None = None


def start_redis(spec: str, tmp: Path, procs: Processes) -> RedisForRun:
    if spec in ("embedded", "embedded-always"):
        fsync = "always" if spec == "embedded-always" else "everysec"
        server = EmbeddedRedis(tmp / "redis", fsync=fsync, port=free_port())
        procs.embedded(server)
        url = server.start()
        assert server.process is not None
        return RedisForRun(url, f"embedded appendfsync={fsync}", redis.Redis.from_url(url), server.process.pid)
    client = redis.Redis.from_url(spec, socket_timeout=10)
    db = int(client.connection_pool.connection_kwargs.get("db", 0) or 0)
    if db == 0:
        raise SystemExit(
            "an external Redis needs a dedicated db other than 0 in the URL (e.g. redis://127.0.0.1:6379/13): "
            "the benchmark FLUSHDBs it"
        )
    client.ping()
    return RedisForRun(spec, f"external db {db}", client)


def redis_snapshot(client: redis.Redis) -> dict[str, Any]:
    cmd = client.info("commandstats")
    cpu = client.info("cpu")
    mem = client.info("memory")
    persistence = client.info("persistence")
    return {
        "commands": {k.removeprefix("cmdstat_"): v for k, v in cmd.items()},
        "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        "used_memory": int(mem["used_memory"]),
        "aof_rewrites": int(persistence.get("aof_rewrites", 0) or 0),
        "aof_rewrite_in_progress": int(persistence.get("aof_rewrite_in_progress", 0) or 0),
    }


def redis_delta(before: dict[str, Any], after: dict[str, Any], wall: float) -> dict[str, Any]:
    commands = {}
    for name, stats in after["commands"].items():
        prev = before["commands"].get(name, {"calls": 0, "usec": 0})
        calls = int(stats["calls"]) - int(prev["calls"])
        if calls > 0:
            usec = int(stats["usec"]) - int(prev["usec"])
            commands[name] = {"calls": calls, "usec": usec, "usec_per_call": round(usec / calls, 2)}
    return {
        "commands": dict(sorted(commands.items(), key=lambda kv: -kv[1]["usec"])),
        "cpu_percent": round(100 * (after["cpu"] - before["cpu"]) / wall, 1),
        "used_memory_mb": round(after["used_memory"] / 2**20, 1),
        "aof_rewrites": after["aof_rewrites"] - before["aof_rewrites"],
    }


# --------------------------------------------------------------------------------------------------
# requests


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _event(rng: random.Random) -> tuple[str, dict[str, Any]]:
    r = rng.random()
    if r < 0.60:
        p = rng.randrange(PRODUCTS)
        data = {"sku": f"SKU-{p:06d}", "store_id": f"store-{rng.randrange(STORES):02d}", "on_hand": rng.randrange(500)}
        return "inventory.updated", data
    if r < 0.95:
        p = rng.randrange(PRODUCTS)
        return "product.updated", {"product_id": f"prd_{p:06d}", "sku": f"SKU-{p:06d}"}
    return "customer.updated", {"customer_id": f"cus_{rng.randrange(CUSTOMERS):07d}"}


def write_requests(prefix: Path, count: int, threads: int, secret: str, tag: str, seed: int) -> dict[str, int]:
    """Write `count` signed requests round-robin into prefix.0 .. prefix.{threads-1} for bench/ingest.lua.
    Every request has its own webhook-id (tag + number) and is signed with the current time."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    rng = random.Random(seed)
    ts = int(time.time())
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    chunks: list[list[bytes]] = [[] for _ in range(threads)]
    types: dict[str, int] = {}
    for i in range(count):
        event_type, data = _event(rng)
        types[event_type] = types.get(event_type, 0) + 1
        body = orjson.dumps({"type": event_type, "timestamp": stamp, "data": data})
        msg_id = f"msg_{tag}{i:08d}"
        digest = hmac.digest(key, b"%s.%d.%s" % (msg_id.encode(), ts, body), "sha256")
        raw = (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"webhook-id: %s\r\nwebhook-timestamp: %d\r\nwebhook-signature: v1,%s\r\n\r\n%s"
        ) % (PATH.encode(), HOST.encode(), len(body), msg_id.encode(), ts, base64.b64encode(digest), body)
        if i == 0:  # the inline signer must agree with the gateway's own
            expected = sign(secret, msg_id, ts, body).encode()
            assert b"webhook-signature: " + expected + b"\r\n" in raw, "bench signer disagrees with sign()"
        chunks[i % threads].append(b"%d\n%s" % (len(raw), raw))
    for k, chunk in enumerate(chunks):
        Path(f"{prefix}.{k}").write_bytes(b"".join(chunk))
    return types


# --------------------------------------------------------------------------------------------------
# wrk


# CPUs for the load side (wrk, Redis) when --pin puts the server under test alone on CPU 0; None: no pinning.
LOAD_CPUS: str | None = None


def pin(pid: int, cpus: str) -> None:
    """Every thread of `pid` onto `cpus` (taskset's list syntax)."""
    subprocess.run(["taskset", "-a", "-c", "-p", cpus, str(pid)], check=True, capture_output=True)


def run_wrk(url: str, prefix: Path, connections: int, threads: int, duration: float) -> dict[str, Any]:
    cmd = [
        shutil.which("wrk") or "/usr/bin/wrk",
        "-t", str(threads),
        "-c", str(connections),
        "-d", f"{duration:g}s",
        "--timeout", "10s",
        "--latency",
        "-s", str(LUA),
        url,
        "--", str(prefix),
    ]  # fmt: skip
    if LOAD_CPUS is not None:
        cmd = ["taskset", "-c", LOAD_CPUS, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_RESULT line:\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    match = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    result["wrk_requests_per_sec"] = float(match.group(1)) if match else None
    result["wrk_output"] = proc.stdout.replace(line + "\n", "")
    return result


def summarise_wrk(result: dict[str, Any]) -> dict[str, Any]:
    statuses = {int(k): v for k, v in result["statuses"].items()}
    lat = result["latency_us"]
    errors = result["errors"]
    return {
        "requests": result["requests"],
        "requests_per_sec": round(result["requests"] / (result["duration_us"] / 1e6), 1),
        "p50_ms": lat["p50"] / 1000,
        "p75_ms": lat["p75"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "max_ms": lat["max"] / 1000,
        "mean_ms": round(lat["mean"] / 1000, 3),
        "statuses": dict(sorted(statuses.items())),
        "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300),
        "non_202": sum(v for k, v in statuses.items() if k != 202),
        "socket_errors": {k: v for k, v in errors.items() if k != "status" and v},
        "wrapped": result["wraps"] > 0,
        "requests_loaded": result["loaded"],
    }


# --------------------------------------------------------------------------------------------------
# gateway metrics

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")


def scrape_metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:  # noqa: S310 (loopback URL we built)
        text = resp.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m["name"].startswith(("crmagento_webhooks_total", "crmagento_ingest_seconds")):
            samples[f"{m['name']}{{{m['labels'] or ''}}}"] = float(m["value"])
    return samples


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    diff = {k: v - before.get(k, 0.0) for k, v in after.items()}
    outcomes: dict[str, int] = {}
    for k, v in diff.items():
        if k.startswith("crmagento_webhooks_total{") and v:
            outcome = re.search(r'outcome="([^"]*)"', k)
            event_type = re.search(r'type="([^"]*)"', k)
            label = f"{outcome[1] if outcome else '?'}:{event_type[1] if event_type else '?'}"
            outcomes[label] = int(v)
    count = diff.get('crmagento_ingest_seconds_count{source="cloudretailer"}', 0.0)
    total = diff.get('crmagento_ingest_seconds_sum{source="cloudretailer"}', 0.0)
    buckets = {}
    for k, v in diff.items():
        if k.startswith("crmagento_ingest_seconds_bucket{") and 'source="cloudretailer"' in k:
            le = re.search(r'le="([^"]*)"', k)
            if le and le[1] in ("0.005", "0.01", "0.02", "0.05"):
                buckets[f"<= {float(le[1]) * 1000:g} ms"] = round(100 * v / count, 2) if count else None
    return {
        "webhooks": dict(sorted(outcomes.items())),
        "handler_mean_ms": round(1000 * total / count, 3) if count else None,
        "handler_percent_within": buckets,
    }


# --------------------------------------------------------------------------------------------------
# profiling


def start_profiler(pid: int, out: Path, duration: float, procs: Processes) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("  (py-spy not found: .venv/bin/pip install py-spy; skipping the profile)")
        return None
    args = [py_spy, "record", "--pid", str(pid), "--rate", "250", "--idle", "--format", "raw"]
    args += ["--duration", str(max(1, int(duration))), "--output", str(out)]
    return procs.popen("py-spy", args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# First rule whose marker occurs anywhere on a sample's stack names its category (so order matters).
PROFILE_CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("idle (epoll wait)", ("EpollSelector.select",)),
    ("in uvloop's C loop (idle + loop work)", ("LEAF:Runner.run", "LEAF:run_until_complete")),
    ("flusher: accept script call via redis-py", ("Ingestor._flush",)),
    ("handler: signature check", ("Verifier.verify",)),
    (
        "handler: pydantic validate + dump, entity",
        ("model_validate", "model_dump", "validate_json", "EventData.entity"),
    ),
    ("handler: submit (future)", ("Ingestor.submit",)),
    ("handler: metrics", ("prometheus_client/", "Metrics.webhook")),
    ("handler: read body", ("BaseRequest.read",)),
    ("handler: build JSON response", ("json_response",)),
    ("handler: the rest", ("receive (",)),
    ("middlewares and guards", ("web_middlewares.py", "gateway/guards.py")),
    ("aiohttp: write response", ("finish_response",)),
    ("aiohttp: parse, route, other", ("aiohttp/",)),
    ("asyncio: loop, transports, callbacks", ("asyncio/",)),
    ("other", ("",)),
]


def summarise_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Collapsed stacks -> share of samples per category, per frame on top (self) and per frame anywhere on
    the stack (inclusive; frames on every stack, the start-up chain, are left out)."""
    total = 0
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    categories = dict.fromkeys((name for name, _ in PROFILE_CATEGORIES), 0)
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        total += count
        raw_frames = stack.split(";")
        category = next(name for name, markers in PROFILE_CATEGORIES if _matches(markers, stack, raw_frames[-1]))
        categories[category] += count
        frames = [_short_frame(f) for f in raw_frames]
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        items = sorted(((k, c) for k, c in counts.items() if c < 0.99 * total), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * c / total, 1)) for name, c in items]

    return {
        "samples": total,
        "categories": {k: round(100 * v / total, 1) for k, v in categories.items() if v},
        "self": ranked(self_counts),
        "inclusive": ranked(incl_counts),
    }


def _matches(markers: tuple[str, ...], stack: str, leaf: str) -> bool:
    return any(leaf.startswith(m[5:]) if m.startswith("LEAF:") else m in stack for m in markers)


def _short_frame(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    m = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    where = m[2]
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    elif str(ROOT) in where:
        where = where.split(str(ROOT) + "/", 1)[1]
    else:
        where = Path(where).name
    return f"{m[1]} ({where})"


# --------------------------------------------------------------------------------------------------
# the run


@dataclass
class Target:
    name: str
    base: str
    proc: subprocess.Popen[bytes]


@dataclass
class Row:
    target: str
    connections: int
    wrk: dict[str, Any]
    cpu_percent: dict[str, float] = field(default_factory=dict)
    gateway: dict[str, Any] | None = None
    redis: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    events: int | None = None
    rep: int = 0


def measure(
    target: Target,
    prefix: Path,
    connections: int,
    args: argparse.Namespace,
    rd: RedisForRun | None,
    profile_out: Path | None,
    procs: Processes,
) -> Row:
    metrics_before = scrape_metrics(target.base) if rd else None
    redis_before = redis_snapshot(rd.client) if rd else None
    cpu_before = proc_cpu_seconds(target.proc.pid)
    wrk_before = children_cpu_seconds()
    host_before = host_cpu_seconds()
    profiler = start_profiler(target.proc.pid, profile_out, args.duration, procs) if profile_out else None
    started = time.monotonic()
    result = run_wrk(target.base + PATH, prefix, connections, args.threads, args.duration)
    wall = time.monotonic() - started
    host_after = host_cpu_seconds()
    cpu = {
        "server": round(100 * (proc_cpu_seconds(target.proc.pid) - cpu_before) / wall, 1),
        "wrk": round(100 * (children_cpu_seconds() - wrk_before) / wall, 1),
        "host_busy": round(100 * (host_after[0] - host_before[0]) / wall, 1),
        "steal": round(100 * (host_after[1] - host_before[1]) / wall, 1),
    }
    row = Row(target.name, connections, summarise_wrk(result), cpu)
    if rd and redis_before is not None and metrics_before is not None:
        row.redis = redis_delta(redis_before, redis_snapshot(rd.client), wall)
        row.cpu_percent["redis"] = row.redis["cpu_percent"]
        row.gateway = metrics_delta(metrics_before, scrape_metrics(target.base))
    # Everything else the machine did meanwhile (kernel softirq for loopback, other processes): a high value
    # means the figures are disturbed.
    ours = cpu["server"] + cpu["wrk"] + row.cpu_percent.get("redis", 0.0)
    row.cpu_percent["other"] = round(max(0.0, cpu["host_busy"] - ours), 1)
    if profiler is not None and profile_out is not None:
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            _stop(profiler)
        if profile_out.exists():
            row.profile = {"file": str(profile_out), **summarise_profile(profile_out)}
    return row


def batch_stats(row: Row) -> dict[str, Any]:
    assert row.redis is not None and row.gateway is not None
    queued = sum(v for k, v in row.gateway["webhooks"].items() if k.startswith("queued:"))
    cmds = row.redis["commands"]
    evalsha = cmds.get("evalsha", {"calls": 0, "usec": 0})
    evals = cmds.get("eval", {"calls": 0, "usec": 0})
    batches = evalsha["calls"] + evals["calls"]
    usec = evalsha["usec"] + evals["usec"]
    wall = row.wrk["requests"] / row.wrk["requests_per_sec"] if row.wrk["requests_per_sec"] else 0
    return {
        "queued_events": queued,
        "batches": batches,
        "events_per_batch": round(queued / batches, 1) if batches else None,
        "lua_usec_per_batch": round(usec / batches, 1) if batches else None,
        "lua_usec_per_event": round(usec / queued, 2) if queued else None,
        "lua_busy_percent": round(100 * usec / 1e6 / wall, 1) if wall else None,
    }


def print_table(rows: list[Row]) -> list[dict[str, Any]]:
    bare = {(r.connections, r.rep): r for r in rows if r.target == "bare"}
    out = []
    header = (
        f"{'target':<8} {'conns':>5} {'rep':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'gw/bare':>7}"
    )
    header += f" {'srv us/req':>10}  {'cpu% srv/redis/wrk/other':>25}  notes"
    print(header)
    print("-" * len(header))
    for r in rows:
        w = r.wrk
        ratio = None
        paired = bare.get((r.connections, r.rep))
        if r.target == "gateway" and paired and paired.wrk["requests_per_sec"]:
            ratio = round(w["requests_per_sec"] / paired.wrk["requests_per_sec"], 3)
        notes = []
        if r.target == "gateway" and w["non_202"]:
            notes.append("non-202: " + ", ".join(f"{k}x{v}" for k, v in w["statuses"].items() if k != 202))
        if w["socket_errors"]:
            notes.append(f"socket errors {w['socket_errors']}")
        if r.target == "gateway" and w["wrapped"]:
            notes.append("WRAPPED: ids replayed")
        if r.cpu_percent.get("steal", 0) >= 5:
            notes.append(f"steal {r.cpu_percent['steal']}%")
        if r.profile:
            notes.append("profiled")
        cpu = "/".join(
            f"{r.cpu_percent[k]:.0f}" if k in r.cpu_percent else "-" for k in ("server", "redis", "wrk", "other")
        )
        ratio_s = f"{ratio:.3f}" if ratio is not None else ""
        # CPU the server spent per answered request: less sensitive to other load than requests/s.
        us_per_req = 1e4 * r.cpu_percent["server"] / w["requests_per_sec"] if w["requests_per_sec"] else 0.0
        r.cpu_percent["server_us_per_request"] = round(us_per_req, 1)
        print(
            f"{r.target:<8} {r.connections:>5} {r.rep + 1:>3} {w['requests_per_sec']:>8.0f} {w['p50_ms']:>7.2f}"
            f" {w['p99_ms']:>7.2f} {w['non_2xx']:>7} {ratio_s:>7} {us_per_req:>10.0f}  {cpu:>25}  {'; '.join(notes)}"
        )
        out.append(
            {
                "target": r.target,
                "connections": r.connections,
                "repeat": r.rep + 1,
                "ratio_gateway_bare": ratio,
                "cpu_percent": r.cpu_percent,
                **{k: v for k, v in w.items() if k != "wrk_output"},
            }
        )
    return out


def summarise_medians(table: list[dict[str, Any]], max_other: float) -> list[dict[str, Any]]:
    """Median over the repeats of each (target, connections); the ratio is the median of the paired ratios.
    A pair (bare + gateway of one repeat) during which other processes used more than `max_other` % CPU is
    left out, unless every pair of that connection count was disturbed."""
    disturbed = {(t["connections"], t["repeat"]) for t in table if t["cpu_percent"].get("other", 0.0) > max_other}
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for t in table:
        groups.setdefault((t["target"], t["connections"]), []).append(t)
    summary = []
    for (target, conns), all_items in groups.items():
        items = [t for t in all_items if (conns, t["repeat"]) not in disturbed] or all_items
        ratios = [t["ratio_gateway_bare"] for t in items if t["ratio_gateway_bare"] is not None]
        summary.append(
            {
                "target": target,
                "connections": conns,
                "runs": len(all_items),
                "runs_used": len(items),
                "requests_per_sec": round(statistics.median(t["requests_per_sec"] for t in items), 1),
                "p50_ms": round(statistics.median(t["p50_ms"] for t in items), 3),
                "p99_ms": round(statistics.median(t["p99_ms"] for t in items), 3),
                "server_us_per_request": round(
                    statistics.median(t["cpu_percent"]["server_us_per_request"] for t in items), 1
                ),
                "non_2xx": sum(t["non_2xx"] for t in all_items),
                "ratio_gateway_bare": round(statistics.median(ratios), 3) if ratios else None,
                "ratio_range": [min(ratios), max(ratios)] if ratios else None,
            }
        )
    return summary


def print_medians(summary: list[dict[str, Any]], max_other: float) -> None:
    print(f"\nmedians over repeats (pairs with other CPU > {max_other:g}% left out while an undisturbed one exists)")
    print(f"{'target':<8} {'conns':>5} {'used':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}", end="")
    print(f" {'non-2xx':>7} {'gw/bare':>7} {'srv us/req':>10}  ratio range")
    for m in summary:
        ratio = f"{m['ratio_gateway_bare']:.3f}" if m["ratio_gateway_bare"] is not None else ""
        spread = f"{m['ratio_range'][0]:.3f}..{m['ratio_range'][1]:.3f}" if m["ratio_range"] else ""
        used = f"{m['runs_used']}/{m['runs']}"
        print(
            f"{m['target']:<8} {m['connections']:>5} {used:>5} {m['requests_per_sec']:>8.0f} {m['p50_ms']:>7.2f}"
            f" {m['p99_ms']:>7.2f} {m['non_2xx']:>7} {ratio:>7} {m['server_us_per_request']:>10.0f}  {spread}"
        )


def print_details(rows: list[Row]) -> None:
    for r in rows:
        if r.target != "gateway" or r.gateway is None or r.redis is None:
            continue
        print(f"\ngateway, {r.connections} connections, repeat {r.rep + 1} ({r.events} unique signed events loaded)")
        print(f"  webhooks (outcome:type): {r.gateway['webhooks']}")
        print(
            f"  handler time (server side): mean {r.gateway['handler_mean_ms']} ms, "
            f"share within {r.gateway['handler_percent_within']}"
        )
        b = batch_stats(r)
        print(
            f"  batches: {b['batches']} EVALSHA for {b['queued_events']} queued events = "
            f"{b['events_per_batch']} events/batch; Lua {b['lua_usec_per_batch']} us/batch, "
            f"{b['lua_usec_per_event']} us/event, Redis busy in the script {b['lua_busy_percent']}% of the run"
        )
        top = list(r.redis["commands"].items())[:8]
        print("  redis commandstats (delta, by total usec): ")
        for name, s in top:
            print(f"    {name:<18} calls={s['calls']:<9} usec={s['usec']:<11} usec/call={s['usec_per_call']}")
        print(
            f"  redis: cpu {r.redis['cpu_percent']}%, used memory {r.redis['used_memory_mb']} MB, "
            f"AOF rewrites during the run: {r.redis['aof_rewrites']}"
        )


def print_profiles(rows: list[Row]) -> None:
    profiled = [r for r in rows if r.profile]
    if not profiled:
        return
    print("\nprofiles (py-spy, share of samples; idle included; C code counts in its Python caller):")
    names = [name for name, _ in PROFILE_CATEGORIES]
    heads = [f"{r.target} c{r.connections}" for r in profiled]
    print(f"  {'category':<46}" + "".join(f"{h:>14}" for h in heads))
    for name in names:
        values = [r.profile["categories"].get(name) for r in profiled if r.profile]
        if any(values):
            print(f"  {name:<46}" + "".join(f"{(f'{v:.1f}%' if v else '-'):>14}" for v in values))
    for r in profiled:
        assert r.profile is not None
        print(f"\n  {r.target}, {r.connections} connections ({r.profile['samples']} samples, {r.profile['file']})")
        print("    inclusive (frame anywhere on the stack):")
        for name, pct in r.profile["inclusive"][:14]:
            print(f"      {pct:5.1f}%  {name}")
        print("    self (frame on top of the stack):")
        for name, pct in r.profile["self"][:12]:
            print(f"      {pct:5.1f}%  {name}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="whole seconds of wrk per target and connection count")
    p.add_argument(
        "--connections",
        default="32,128",
        help="comma-separated connection counts (default 32,128)",
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the machine has 2 cores)")
    p.add_argument(
        "--redis",
        default="embedded",
        help="embedded (appendfsync everysec, default), embedded-always, or redis://HOST:PORT/DB (DB != 0)",
    )
    p.add_argument("--warmup", type=int, default=2, help="whole seconds of wrk against each target first (0: none)")
    p.add_argument("--events", type=int, default=0, help="signed events per gateway run (default: sized from bare)")
    p.add_argument("--max-events", type=int, default=600_000, help="cap of the automatic sizing")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="CRMAGENTO_X=Y",
        help="extra environment for the gateway (repeatable), e.g. CRMAGENTO_INGEST_BATCH_MAX=1024",
    )
    p.add_argument("--profile", action="store_true", help="py-spy both servers during their measured runs")
    p.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of BOTH servers (default asyncio, as `crmagento serve`; uvloop is an experiment)",
    )
    p.add_argument(
        "--patch",
        default="",
        help="experiment: comma-separated bench/gateway_variants.py patches applied to the gateway",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the event mix")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="bare+gateway pairs per connection count; the summary shows medians (use 3+ on a shared machine)",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the server under test (bare or gateway) to CPU 0 and wrk and Redis to the other CPUs",
    )
    p.add_argument(
        "--max-other",
        type=float,
        default=15.0,
        help="CPU %% used by other processes above which a pair counts as disturbed (default 15)",
    )
    args = p.parse_args(argv)
    args.connection_counts = [int(c) for c in str(args.connections).split(",") if c.strip()]
    if any(c < args.threads for c in args.connection_counts):
        p.error("every connection count must be at least --threads")
    if args.duration < 1 or args.warmup < 0 or args.repeat < 1:
        p.error("--duration and --repeat must be at least 1, --warmup at least 0")
    if args.duration > 120:
        p.error("--duration above 120 s: signed timestamps would near the gateway's 300 s tolerance")
    for item in args.gateway_env:
        if "=" not in item or not item.startswith("CRMAGENTO_"):
            p.error(f"--gateway-env wants CRMAGENTO_NAME=VALUE, got {item!r}")
    return args


def versions(rd: RedisForRun) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "redis_server": str(rd.client.info("server").get("redis_version")),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0],
        "cpus": str(os.cpu_count()),
        "aiohttp_extensions": str(_aiohttp_c_parser()),
    }


def _aiohttp_c_parser() -> bool:
    from aiohttp import http_parser

    return http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser"


def gateway_command(args: argparse.Namespace, port: int) -> list[str]:
    serve = ["serve", "--host", HOST, "--port", str(port)]
    if args.loop == "asyncio" and not args.patch:
        return [shutil.which("crmagento", path=str(Path(sys.executable).parent)) or "crmagento", *serve]
    return [sys.executable, str(BENCH / "gateway_variants.py"), "--loop", args.loop, "--patch", args.patch, *serve]


@contextlib.contextmanager
def run_context() -> Iterator[tuple[Processes, Path]]:
    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        yield procs, tmp
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with run_context() as (procs, tmp):
        rd = start_redis(args.redis, tmp, procs)
        rd.client.flushdb()
        print(f"redis: {rd.kind} at {rd.url}")

        secret = new_secret()
        bare_port, gw_port = free_port(), free_port()
        bare = Target(
            "bare",
            f"http://{HOST}:{bare_port}",
            procs.popen(
                "bare",
                [sys.executable, str(BARE_SERVER), "--host", HOST, "--port", str(bare_port), "--loop", args.loop],
                cwd=tmp,
            ),
        )
        env = {
            **os.environ,
            "CRMAGENTO_REDIS_URL": rd.url,
            "CRMAGENTO_CR_WEBHOOK_SECRETS": secret,
            "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": new_secret(),
            "CRMAGENTO_ADMIN_TOKENS": base64.urlsafe_b64encode(os.urandom(24)).decode(),
            "CRMAGENTO_LOG_LEVEL": "WARNING",
        }
        env.update(dict(item.split("=", 1) for item in args.gateway_env))
        gw_log = (tmp / "gateway.log").open("wb")
        gateway = Target(
            "gateway",
            f"http://{HOST}:{gw_port}",
            # cwd=tmp: a developer's .env in the repo must not change the gateway's settings.
            procs.popen(
                "gateway",
                gateway_command(args, gw_port),
                env=env,
                cwd=tmp,
                stdout=gw_log,
                stderr=subprocess.STDOUT,
            ),
        )
        wait_healthy(f"{bare.base}/healthz", bare.proc, "bare server")
        wait_healthy(f"{gateway.base}/healthz", gateway.proc, "gateway")
        if args.pin:
            global LOAD_CPUS
            LOAD_CPUS = f"1-{(os.cpu_count() or 2) - 1}"
            pin(bare.proc.pid, "0")
            pin(gateway.proc.pid, "0")
            if rd.pid is not None:
                pin(rd.pid, LOAD_CPUS)
            print(f"pinned: servers on CPU 0, wrk and Redis on CPUs {LOAD_CPUS}")
        print(f"bare server pid {bare.proc.pid} on {bare.base}; gateway pid {gateway.proc.pid} on {gateway.base}")

        bare_prefix = tmp / "bare-requests"
        write_requests(bare_prefix, 50_000, args.threads, secret, "bare", args.seed)
        if args.warmup > 0:
            warm_prefix = tmp / "warm-requests"
            write_requests(warm_prefix, 20_000, args.threads, secret, "warm", args.seed + 1)
            print(f"warm-up: {args.warmup:g} s per target")
            run_wrk(bare.base + PATH, bare_prefix, args.connection_counts[0], args.threads, args.warmup)
            run_wrk(gateway.base + PATH, warm_prefix, args.connection_counts[0], args.threads, args.warmup)

        runs = [(conns, rep) for conns in args.connection_counts for rep in range(args.repeat)]
        for n, (conns, rep) in enumerate(runs):
            print(
                f"\n== {conns} connections, {args.threads} wrk thread(s), {args.duration:g} s per target"
                + (f", repeat {rep + 1}/{args.repeat}" if args.repeat > 1 else "")
            )
            suffix = f"c{conns}" + (f"-r{rep + 1}" if args.repeat > 1 else "")
            profile_bare = RESULTS / f"profile-{stamp}-bare-{suffix}.txt" if args.profile else None
            row = measure(bare, bare_prefix, conns, args, None, profile_bare, procs)
            row.rep = rep
            rows.append(row)
            print(f"  bare:    {row.wrk['requests_per_sec']:.0f} req/s, p99 {row.wrk['p99_ms']:.2f} ms")

            events = args.events or int(
                min(args.max_events, max(20_000, row.wrk["requests_per_sec"] * args.duration * 1.3))
            )
            gw_prefix = tmp / f"gw-requests-{conns}"
            t0 = time.monotonic()
            types = write_requests(gw_prefix, events, args.threads, secret, f"c{conns}r{n}x", args.seed + 10 + n)
            print(f"  signed {events} unique events in {time.monotonic() - t0:.1f} s: {types}")
            rd.client.flushdb()
            profile_out = RESULTS / f"profile-{stamp}-gateway-{suffix}.txt" if args.profile else None
            row = measure(gateway, gw_prefix, conns, args, rd, profile_out, procs)
            row.events = events
            row.rep = rep
            rows.append(row)
            print(f"  gateway: {row.wrk['requests_per_sec']:.0f} req/s, p99 {row.wrk['p99_ms']:.2f} ms")
            for k in range(args.threads):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{gw_prefix}.{k}").unlink()
            if gateway.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {gateway.proc.returncode}")

        info = versions(rd)
        if rd.kind.startswith("external"):
            rd.client.flushdb()
        # Stopped before its log is read, so what it prints on the way out (a --patch gc-stats report) is kept.
        _stop(gateway.proc)
        gw_log.close()
        gateway_log = (tmp / "gateway.log").read_text(errors="replace")

    variant = f", EXPERIMENT patches: {args.patch}" if args.patch else ""
    print(f"\nresults ({args.loop} event loop, redis {rd.kind}, {info['cpus']} CPUs{variant})\n")
    table = print_table(rows)
    medians = summarise_medians(table, args.max_other)
    if args.repeat > 1:
        print_medians(medians, args.max_other)
    print_details(rows)
    print_profiles(rows)
    verdicts = []
    for t in medians:
        if t["target"] == "gateway" and t["ratio_gateway_bare"] is not None:
            ok = t["ratio_gateway_bare"] >= TARGET_RATIO and t["p99_ms"] < TARGET_P99_MS
            verdicts.append(ok)
            print(
                f"\ntarget (ratio >= {TARGET_RATIO}, p99 < {TARGET_P99_MS:g} ms) at {t['connections']} connections: "
                f"{'MET' if ok else 'NOT MET'} (ratio {t['ratio_gateway_bare']}, p99 {t['p99_ms']} ms)",
                end="",
            )
    print()
    log_lines = [ln for ln in gateway_log.splitlines() if ln.strip()]
    if log_lines:
        print(f"\ngateway log ({len(log_lines)} lines, last 5):")
        for ln in log_lines[-5:]:
            print("  " + ln[:300])

    out = RESULTS / f"ingest-{stamp}.json"
    payload = {
        "started_at": started_at.isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "duration_s": args.duration,
            "connections": args.connection_counts,
            "threads": args.threads,
            "redis": rd.kind,
            "warmup_s": args.warmup,
            "gateway_env": args.gateway_env,
            "profile": args.profile,
            "event_loop": args.loop,
            "experiment_patches": args.patch,
            "repeat": args.repeat,
            "max_other_cpu_percent": args.max_other,
            "pinned": args.pin,
        },
        "versions": info,
        "targets": {"ratio_min": TARGET_RATIO, "gateway_p99_ms_max": TARGET_P99_MS},
        "table": table,
        "medians": medians,
        "gateway_runs": [
            {
                "connections": r.connections,
                "repeat": r.rep + 1,
                "events_loaded": r.events,
                "cpu_percent": r.cpu_percent,
                "metrics": r.gateway,
                "batches": batch_stats(r),
                "redis": r.redis,
                "profile": r.profile,
            }
            for r in rows
            if r.target == "gateway" and r.gateway is not None
        ],
        "bare_runs": [
            {"connections": r.connections, "repeat": r.rep + 1, "cpu_percent": r.cpu_percent, "profile": r.profile}
            for r in rows
            if r.target == "bare"
        ],
        "gateway_log_tail": log_lines[-20:],
    }
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {out.relative_to(ROOT)}")
    failed = sum(t["non_2xx"] + sum(t["socket_errors"].values()) for t in table if t["target"] == "gateway")
    if failed:
        print(f"\nthe gateway answered {failed} requests with non-2xx or socket errors: see the notes above")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
