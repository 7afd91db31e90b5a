"""The five faults of issue #9, each injected while the stream flows, and the sizes they run at.

- worker-kill: (a) SIGKILL a worker while it runs jobs and start a replacement; the dead worker's jobs run
  again once arq's lease on them expires.
- redis-restart: (b) SIGKILL Redis (append-only, fsync always) and start it again on the same data; the
  gateway answers 503 meanwhile and the senders retry.
- magento-outage: (c) every call to Magento answers 503 for a while (2 minutes at full size), then it recovers.
- rate-limit-storm: (d) 429 with Retry-After on most Magento calls and many Cloud Retailer calls.
- duplicate-shuffle: (e) every webhook delivered twice, in shuffled order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.catalog import products as catalog_products
from tests.chaos.processes import Proc
from tests.chaos.stack import CR_API_KEY, MAGENTO_TOKEN, ChaosStack
from tests.chaos.stream import Stream
from tests.chaos.verify import Verdict, baseline, settle, verify
from workers.worker import arq_timeout


@dataclass(frozen=True)
class Size:
    name: str
    products: int
    rate: float  # stream operations per second
    before_s: float  # stream running before the fault
    after_s: float  # stream running after the fault is over
    outage_s: float  # (c) Magento down
    storm_s: float  # (d) 429 storm, and how long (e) shuffles
    redis_down_s: float  # (b) Redis down
    settle_s: float  # longest wait for the system to come to rest afterwards
    env: dict[str, str] = field(default_factory=dict)


# Small: CI inside `make test` (tests/test_chaos.py). Worker timings are scaled down with the faults, keeping
# the production ratio that matters: the retry budget (8 tries, backoff doubling to its ceiling) outlasts the
# outage. The job timeout sets arq's lease on a dead worker's job (2 x timeout + 10 s): 3 s -> 16 s.
SMALL = Size(
    name="small",
    products=30,
    rate=8,
    before_s=2,
    after_s=1,
    outage_s=5,
    storm_s=4,
    redis_down_s=2,
    settle_s=60,
    env={
        "CRMAGENTO_JOB_TIMEOUT_SECONDS": "3",
        "CRMAGENTO_JOB_RETRY_BASE_SECONDS": "0.5",
        "CRMAGENTO_JOB_RETRY_MAX_SECONDS": "4",
        "CRMAGENTO_JOB_MAX_ATTEMPTS": "8",
        "CRMAGENTO_HTTP_RETRIES": "2",
        "CRMAGENTO_RETRY_AFTER_SECONDS": "1",
        "CRMAGENTO_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
    },
)

# Full: `make chaos`. The shipped retry settings (8 tries, 2 s base, 600 s ceiling, 4 HTTP retries); only
# the job timeout is lowered from 120 s to 30 s, so a killed worker's jobs wait 70 s instead of 160 s.
FULL = Size(
    name="full",
    products=500,
    rate=15,
    before_s=30,
    after_s=30,
    outage_s=120,
    storm_s=60,
    redis_down_s=10,
    settle_s=420,
    env={"CRMAGENTO_JOB_TIMEOUT_SECONDS": "30"},
)

SIZES = {s.name: s for s in (SMALL, FULL)}


@dataclass
class Outcome:
    scenario: str
    size: str
    ok: bool
    seconds: float
    settle_seconds: float
    fault: dict[str, Any]
    verdict: Verdict
    run_dir: str


Fault = Callable[[ChaosStack, Size, Stream], Awaitable[dict[str, Any]]]


# --- the faults -------------------------------------------------------------------------------------------


async def worker_kill(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """(a) SIGKILL a worker in the middle of a job, start a replacement.

    To be sure the kill lands mid-job (a heartbeat saying "running" may be half a second old): Magento is made
    slow (600 ms a call) so jobs last, a worker whose heartbeat reports running jobs is frozen with SIGSTOP,
    Magento is made fast again, and once every job of the live workers has ended (a few seconds; the job
    timeout bounds them) the leases still held are the frozen worker's. If it holds some, it is SIGKILLed with
    them; if it was between jobs, it is thawed and another pick is made (at most 5)."""
    assert stack.procs is not None
    attempts: list[dict[str, Any]] = []
    orphaned: set[str] = set()
    timeout = int(stack.procs.env.get("CRMAGENTO_JOB_TIMEOUT_SECONDS", "120"))
    for _ in range(5):
        await stack.faults("magento", [{"latency_ms": 600}])
        victim, running = await _busy_worker(stack)
        stack.procs.freeze(victim)
        leased = await stack.leased_jobs()
        await stack.faults("magento", [])
        await asyncio.sleep(min(timeout, 3) + 1)
        orphaned = leased & await stack.leased_jobs()
        attempts.append({"pid": victim.pid, "jobs_running": running, "leases_held": len(orphaned)})
        if orphaned:
            stack.procs.kill(victim)
            break
        stack.procs.thaw(victim)
    await stack.procs.start_worker()
    if not orphaned:
        raise AssertionError(f"no frozen worker held a job: {attempts}")
    return {
        "attempts": attempts,
        "killed_with_jobs": sorted(j.removeprefix("arq:in-progress:") for j in orphaned),
        # arq's lease on a job: its function timeout + 10 s (workers/worker.py arq_timeout).
        "lease_seconds": arq_timeout(timeout) + 10,
    }


async def _busy_worker(stack: ChaosStack, within: float = 30.0) -> tuple[Proc, int]:
    """A worker of ours whose fresh heartbeat reports running jobs."""
    assert stack.procs is not None
    mine = {p.pid: p for p in stack.procs.workers if p.alive()}
    deadline = time.monotonic() + within
    while True:
        _, snap = await stack.admin("GET", "/admin/status")
        for w in snap["workers"]:
            if w["pid"] in mine and w["jobs_running"] > 0 and w["age_seconds"] < 0.6:
                return mine[w["pid"]], int(w["jobs_running"])
        if time.monotonic() > deadline:
            raise AssertionError("no worker reported a running job")
        await asyncio.sleep(0.05)


async def redis_restart(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """(b) Magento made slow (300 ms a call) for two seconds so work is queued and in flight, then Redis is
    SIGKILLed mid-stream, kept down, and started again on the same append-only file."""
    assert stack.relay is not None and stack.procs is not None
    await stack.faults("magento", [{"latency_ms": 300}])
    await asyncio.sleep(2)
    leased = await stack.leased_jobs()
    queued = await stack.kv.zcard(stack.procs.env.get("CRMAGENTO_QUEUE_NAME", "crmagento:queue"))
    acknowledged = len(stack.relay.acknowledged)
    stack.redis.kill()
    await stack.faults("magento", [])
    await asyncio.sleep(size.redis_down_s)
    await stack.redis.start()
    return {
        "down_s": size.redis_down_s,
        "acknowledged_before_kill": acknowledged,
        "jobs_in_queue_at_kill": queued,
        "jobs_running_at_kill": len(leased),
        "appendfsync": "always",
    }


async def magento_outage(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """(c) every Magento call answers 503 for `outage_s`, then Magento recovers."""
    await stack.faults("magento", [{"error_rate": 1, "error_status": 503}])
    await asyncio.sleep(size.outage_s)
    await stack.faults("magento", [])
    return {"outage_s": size.outage_s, "error_status": 503}


async def rate_limit_storm(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """(d) 429 + Retry-After: 60% of Magento calls and 30% of Cloud Retailer calls for `storm_s`."""
    magento = {"rate_limit_rate": 0.6, "retry_after_seconds": 1}
    cr = {"rate_limit_rate": 0.3, "retry_after_seconds": 1}
    await stack.faults("magento", [magento])
    await stack.faults("cloudretailer", [cr])
    await asyncio.sleep(size.storm_s)
    await stack.faults("magento", [])
    await stack.faults("cloudretailer", [])
    return {"storm_s": size.storm_s, "magento": magento, "cloudretailer": cr}


async def duplicate_shuffle(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """(e) the relay switched to shuffle mode from the start (see `run_scenario`); the fault is the stream."""
    await asyncio.sleep(size.storm_s)
    return {"window_s": 0.5, "copies": 2, "held_back": "1/5 of each window's copies"}


SCENARIOS: dict[str, Fault] = {
    "worker-kill": worker_kill,
    "redis-restart": redis_restart,
    "magento-outage": magento_outage,
    "rate-limit-storm": rate_limit_storm,
    "duplicate-shuffle": duplicate_shuffle,
}


# --- running one ------------------------------------------------------------------------------------------


async def run_scenario(name: str, size: Size, run_dir: Path) -> Outcome:
    fault = SCENARIOS[name]
    started = time.monotonic()
    specs = catalog_products(size.products)
    async with ChaosStack(run_dir, products=size.products, workers=2, env=size.env) as stack:
        assert stack.relay is not None
        await stack.warm_up()
        await settle(stack, size.settle_s)
        base = await baseline(stack)
        if name == "duplicate-shuffle":
            stack.relay.mode = "shuffle"
        stream = Stream(
            cr_url=stack.cr_url,
            cr_key=CR_API_KEY,
            magento_url=stack.magento_url,
            magento_token=MAGENTO_TOKEN,
            products=specs,
            rate=size.rate,
        )
        planned: list[str] = []
        async with stream:
            stop = asyncio.Event()
            flowing = asyncio.create_task(stream.run(stop))
            await asyncio.sleep(size.before_s)
            try:
                info = await fault(stack, size, stream)
            except AssertionError as exc:  # the fault could not be injected as planned: still verify the rest
                info, planned = {"error": str(exc)}, [str(exc)]
                await stack.faults("magento", [])
                await stack.faults("cloudretailer", [])
            await asyncio.sleep(size.after_s)
            stop.set()
            await flowing
            await stream.finish_orders(within=size.settle_s)
        settle_s, still = await settle(stack, size.settle_s)
        verdict = await verify(stack, stream, base)
        verdict.add("the fault was injected as planned", planned, "yes")
        verdict.add("settled before the deadline", still, f"{settle_s:.1f} s")
    return Outcome(
        scenario=name,
        size=size.name,
        ok=verdict.ok,
        seconds=round(time.monotonic() - started, 1),
        settle_seconds=round(settle_s, 1),
        fault=info,
        verdict=verdict,
        run_dir=str(run_dir),
    )
