"""The faults, each injected while the stream flows, and the sizes they run at.

- worker-kill: SIGKILL a worker in the middle of its jobs and start a replacement; a live worker takes the dead
  one's entities over once its heartbeat is CRMAGENTO_WORKER_TAKEOVER_SECONDS old, long before arq's own lease
  on those jobs would run out. Reports how long the takeover took.
- redis-restart: SIGKILL Redis (append-only, fsync always) and start it again on the same data; the gateway
  answers 503 meanwhile and the senders retry.
- magento-outage: every call to Magento answers 503 for longer than the whole retry budget (10 minutes at full
  size), then it recovers. The work that needs Magento is parked, not failed, and drained once it answers.
- outage-and-redis-restart: the Magento outage, with Redis SIGKILLed and restarted in the middle of it: the
  parked work and the remote's state live in Redis and must survive the restart.
- cloudretailer-outage: Cloud Retailer's API answers 503 to the workers' reads and writes for half the outage,
  then recovers; the work that needs it is parked and drained the same way.
- rate-limit-storm: 429 with Retry-After on most Magento calls and many Cloud Retailer calls.
- duplicate-shuffle: every webhook delivered twice, in shuffled order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from crmcore import keys
from crmcore.remotes import Remote
from crmcore.settings import Settings
from sandbox.catalog import products as catalog_products
from tests.chaos.processes import Proc
from tests.chaos.stack import CR_API_KEY, MAGENTO_TOKEN, ChaosStack
from tests.chaos.stream import Stream
from tests.chaos.verify import TERMINAL, Verdict, baseline, settle, verify
from workers.worker import arq_timeout


@dataclass(frozen=True)
class Size:
    name: str
    products: int
    rate: float  # stream operations per second
    before_s: float  # stream running before the fault
    after_s: float  # stream running after the fault is over
    outage_s: float  # a remote down (Cloud Retailer for half of it)
    storm_s: float  # the 429 storm, and how long the duplicates are shuffled
    redis_down_s: float  # Redis down
    settle_s: float  # longest wait for the system to come to rest afterwards
    env: dict[str, str] = field(default_factory=dict)  # every scenario's
    scenario_env: dict[str, dict[str, str]] = field(default_factory=dict)  # on top of `env`, per scenario

    def env_for(self, scenario: str) -> dict[str, str]:
        return {**self.env, **self.scenario_env.get(scenario, {})}


OUTAGES = ("magento-outage", "outage-and-redis-restart", "cloudretailer-outage")

# The setup a user reported losing changes with (11 dead letters after an outage): three tries a few seconds
# apart and one HTTP retry, so the retry budget is gone within seconds and an outage outlasts it several times
# over. Parking must not depend on the budget outlasting the outage.
SHORT_BUDGET = {
    "CRMAGENTO_JOB_MAX_ATTEMPTS": "3",
    "CRMAGENTO_JOB_RETRY_BASE_SECONDS": "0.5",
    "CRMAGENTO_JOB_RETRY_MAX_SECONDS": "2",
    "CRMAGENTO_HTTP_RETRIES": "1",
}

# Small: CI inside `make test` (tests/test_chaos.py). Worker timings are scaled down with the faults. The
# 429 storm still fails calls (a storm the probe does not see is each event's own failure), so its retry budget
# has to outlast it; the outages must outlast theirs. The short job timeout keeps arq's lease on a job of a
# worker that died with Redis short (2 x timeout + 10 s: 3 s -> 16 s). worker-kill instead sets it long (30 s ->
# a 70 s lease) with a 5 s takeover, so a rerun within 30 s can only be the takeover.
SMALL = Size(
    name="small",
    products=30,
    rate=8,
    before_s=2,
    after_s=1,
    outage_s=12,
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
    scenario_env={
        "worker-kill": {"CRMAGENTO_JOB_TIMEOUT_SECONDS": "30", "CRMAGENTO_WORKER_TAKEOVER_SECONDS": "5"},
        **{name: SHORT_BUDGET for name in OUTAGES},
    },
)

# Full: `make chaos`. The shipped retry settings (8 tries, 2 s base, 600 s ceiling, 4 HTTP retries: about
# 4 minutes of budget), which a 10-minute outage outlasts; the shipped takeover time (15 s). Only the job
# timeout is lowered from 120 s to 30 s, which still leaves arq's lease on a killed worker's job at 70 s.
FULL = Size(
    name="full",
    products=500,
    rate=15,
    before_s=30,
    after_s=30,
    outage_s=600,
    storm_s=60,
    redis_down_s=10,
    settle_s=420,
    env={"CRMAGENTO_JOB_TIMEOUT_SECONDS": "30"},
)

SIZES = {s.name: s for s in (SMALL, FULL)}

# How soon a remote that answers again must have no parked work left. Its probe backs off to one try a
# minute, so at full size most of this can pass before the probe sees it back.
DRAIN_LIMIT_S = 60.0
# How long the drain is watched for: past the limit, so a slow drain is reported with its figure.
DRAIN_WATCH_S = 120.0
TAKEOVER_LIMIT_S = 30.0
# Below arq's 70 s lease of worker-kill's jobs, so what the watch sees cannot be arq running them again.
TAKEOVER_WATCH_S = 60.0
_SETTINGS_DEFAULTS = Settings.model_fields


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
# Adds the checks a scenario makes of its own figures (the `fault` of the outcome) to the common verdict.
Judge = Callable[[dict[str, Any], Verdict], None]


def _setting(stack: ChaosStack, name: str) -> int:
    assert stack.procs is not None
    value = stack.procs.env.get(f"CRMAGENTO_{name.upper()}")
    return int(value) if value is not None else int(_SETTINGS_DEFAULTS[name].default)


def _wall(t: float) -> str:
    """A wall-clock time as the process logs print it, to find the moment in them."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


# --- worker-kill ------------------------------------------------------------------------------------------


async def worker_kill(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """SIGKILL a worker in the middle of its jobs, start a replacement, and time the takeover.

    To be sure the kill lands mid-job: Magento is made slow (600 ms a call) so jobs last, a worker whose fresh
    heartbeat reports running jobs is frozen with SIGSTOP, and what it runs is read from its own record of
    claimed entities (the one the takeover reads), kept only where the entity still names that job and arq
    still holds the job's lease. If it holds some it is SIGKILLed with them right away (frozen far less than
    the takeover time, so nobody takes it over before it dies); if it was between jobs it is thawed and
    another pick is made (at most 5).

    Then, per orphaned job, the seconds from the kill until the entity's job no longer names it (taken over:
    only the takeover can do that within arq's lease) and until the entity is idle or the events the job held
    are done or skipped."""
    assert stack.procs is not None
    timeout = _setting(stack, "job_timeout_seconds")
    takeover_after = _setting(stack, "worker_takeover_seconds")
    # arq's lease on a job: its function timeout + 10 s (workers/worker.py arq_timeout).
    lease = arq_timeout(timeout) + 10
    attempts: list[dict[str, Any]] = []
    orphaned: dict[str, str] = {}
    held: dict[str, list[str]] = {}
    frozen_at = killed_at = 0.0
    for _ in range(5):
        await stack.faults("magento", [{"latency_ms": 600}])
        victim, worker_id, running = await _busy_worker(stack)
        stack.procs.freeze(victim)
        frozen_at = time.monotonic()
        orphaned, held = await _running_on(stack, worker_id)
        attempts.append({"pid": victim.pid, "jobs_running": running, "jobs_orphaned": len(orphaned)})
        if orphaned:
            stack.procs.kill(victim)
            killed_at = time.monotonic()
            await stack.faults("magento", [])
            break
        stack.procs.thaw(victim)
        await stack.faults("magento", [])
        await asyncio.sleep(0.5)
    await stack.procs.start_worker()
    if not orphaned:
        raise AssertionError(f"no frozen worker held a job: {attempts}")
    killed_wall = time.time()
    per_job = await _watch_takeover(stack, orphaned, held, killed_at)
    taken = [j["taken_over_s"] for j in per_job.values() if j["taken_over_s"] is not None]
    done = [j["done_s"] for j in per_job.values() if j["done_s"] is not None]
    return {
        "attempts": attempts,
        "killed_at": _wall(killed_wall),
        "killed_with_jobs": sorted(orphaned.values()),
        "frozen_for_s": round(killed_at - frozen_at, 2),
        "takeover_after_s": takeover_after,
        "lease_seconds": lease,
        "takeover_seconds": max(taken) if len(taken) == len(per_job) else None,
        "done_seconds": max(done) if len(done) == len(per_job) else None,
        "not_taken_over": sorted(job for job, j in per_job.items() if j["taken_over_s"] is None),
        "jobs": per_job,
    }


async def _busy_worker(stack: ChaosStack, within: float = 30.0) -> tuple[Proc, str, int]:
    """A worker of ours whose fresh heartbeat reports running jobs: (process, worker id, jobs running)."""
    assert stack.procs is not None
    mine = {p.pid: p for p in stack.procs.workers if p.alive()}
    deadline = time.monotonic() + within
    while True:
        _, snap = await stack.admin("GET", "/admin/status")
        for w in snap["workers"]:
            if w["pid"] in mine and w["jobs_running"] > 0 and w["age_seconds"] < 0.6:
                return mine[w["pid"]], str(w["id"]), int(w["jobs_running"])
        if time.monotonic() > deadline:
            raise AssertionError("no worker reported a running job")
        await asyncio.sleep(0.05)


async def _running_on(stack: ChaosStack, worker_id: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """What a (frozen) worker is in the middle of: ({entity: job}, {entity: the event refs its job holds})."""
    claimed = {k.decode(): v.decode() for k, v in (await stack.kv.hgetall(keys.worker_jobs(worker_id))).items()}
    leased = await stack.leased_jobs()
    orphaned: dict[str, str] = {}
    held: dict[str, list[str]] = {}
    for entity, job in claimed.items():
        current, state = await stack.kv.hmget(keys.entity(entity), "job", "state")
        if current == job.encode() and state == b"running" and f"arq:in-progress:{job}" in leased:
            orphaned[entity] = job
            held[entity] = [r.decode() for r in await stack.kv.lrange(keys.inflight(entity), 0, -1)]
    return orphaned, held


async def _watch_takeover(
    stack: ChaosStack, orphaned: dict[str, str], held: dict[str, list[str]], killed_at: float
) -> dict[str, dict[str, float | None]]:
    """Per orphaned job: seconds after the kill until it was taken over, and until its work was finished."""
    out: dict[str, dict[str, float | None]] = {job: {"taken_over_s": None, "done_s": None} for job in orphaned.values()}
    while time.monotonic() - killed_at < TAKEOVER_WATCH_S:
        for entity, job in orphaned.items():
            seen = out[job]
            if seen["done_s"] is not None:
                continue
            now = round(time.monotonic() - killed_at, 2)
            current = await stack.kv.hget(keys.entity(entity), "job")
            if seen["taken_over_s"] is None and current != job.encode():
                seen["taken_over_s"] = now
            if seen["taken_over_s"] is not None and (current is None or await _finished(stack, held[entity])):
                seen["done_s"] = now
        if all(j["done_s"] is not None for j in out.values()):
            break
        await asyncio.sleep(0.1)
    return out


async def _finished(stack: ChaosStack, refs: list[str]) -> bool:
    for ref in refs:
        # An event record without a status has not been touched since it was accepted (crmcore/eventlog.py).
        status = await stack.kv.hget(keys.event(ref), "status")
        if (status or b"queued").decode() not in TERMINAL:
            return False
    return True


def judge_takeover(info: dict[str, Any], v: Verdict) -> None:
    took, lease = info.get("takeover_seconds"), info.get("lease_seconds")
    problems = [f"{job} not taken over within {TAKEOVER_WATCH_S:.0f} s" for job in info.get("not_taken_over", [])]
    if took is None and not problems:
        problems.append("no takeover was measured")
    if took is not None and took > TAKEOVER_LIMIT_S:
        problems.append(f"taken over {took} s after the kill")
    if took is not None and lease is not None and took >= lease:
        problems.append(f"taken over {took} s after the kill, not before arq's lease ({lease} s)")
    jobs = len(info.get("killed_with_jobs", []))
    v.add(
        f"taken over within {TAKEOVER_LIMIT_S:.0f} s, before arq's lease",
        problems,
        f"{jobs} orphaned job(s) taken over {took} s after the kill (done {info.get('done_seconds')} s; "
        f"takeover time {info.get('takeover_after_s')} s, arq's lease {lease} s)",
    )


# --- redis-restart ----------------------------------------------------------------------------------------


async def redis_restart(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """Magento made slow (300 ms a call) for two seconds so work is queued and in flight, then Redis is
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


# --- the outages ------------------------------------------------------------------------------------------

ALL_503 = [{"error_rate": 1, "error_status": 503}]
# The stream itself changes Cloud Retailer with PUTs (products, on-hand), and Cloud Retailer being down for
# the workers must not stop the business that makes the changes. The workers read with GET and write with
# POST only (sales, customers, categories), so those are what the outage refuses.
CR_WORKER_CALLS_503 = [{"match": f"{m} /api/v1/*", "error_rate": 1, "error_status": 503} for m in ("GET", "POST")]


@dataclass
class RemoteWatch:
    """What GET /admin/status said about one remote, sampled about once a second during its outage."""

    remote: Remote
    samples: int = 0
    unavailable: int = 0  # samples that saw the remote unavailable
    missed: int = 0  # samples the gateway could not answer (Redis down)
    parked: int = 0  # the last sample's parked entities
    peak_parked: int = 0
    peak_parked_events: int = 0

    async def follow(self, stack: ChaosStack, until: float) -> None:
        """Sample every second until `until` (monotonic), and once at least."""
        while True:
            state = await remote_status(stack, self.remote)
            self.samples += 1
            if state is None:
                self.missed += 1
            else:
                self.unavailable += state["state"] == "unavailable"
                self.parked = int(state["parked"])
                self.peak_parked = max(self.peak_parked, self.parked)
                self.peak_parked_events = max(self.peak_parked_events, int(state["parked_events"]))
            left = until - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(1.0, left))


async def remote_status(stack: ChaosStack, remote: Remote) -> dict[str, Any] | None:
    """`remotes.{remote}` of GET /admin/status, or None when the gateway cannot say (its Redis is down)."""
    try:
        status, snap = await stack.admin("GET", "/admin/status", timeout=aiohttp.ClientTimeout(total=5))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return snap["remotes"][remote.value] if status == 200 else None


async def until_drained(stack: ChaosStack, remote: Remote, cleared: float) -> tuple[float | None, float | None]:
    """Seconds after `cleared` until the remote is up, and until it is up with nothing parked (None: not within
    DRAIN_WATCH_S)."""
    up_s: float | None = None
    while (elapsed := time.monotonic() - cleared) < DRAIN_WATCH_S:
        state = await remote_status(stack, remote)
        if state is not None and state["state"] == "up":
            up_s = round(elapsed, 1) if up_s is None else up_s
            if state["parked"] == 0:
                return up_s, round(elapsed, 1)
        await asyncio.sleep(0.25)
    return up_s, None


Midway = Callable[[RemoteWatch], Awaitable[dict[str, Any]]]


async def outage(
    stack: ChaosStack, remote: Remote, rules: list[dict[str, Any]], seconds: float, midway: Midway | None = None
) -> dict[str, Any]:
    """`remote` answers by `rules` for `seconds` (`midway` runs a third of the way in), then recovers; the
    figures: the peak parked backlog, when the fault was cleared, and how long the drain took after that."""
    watch = RemoteWatch(remote)
    started = time.monotonic()
    await stack.faults(remote.value, rules)
    extra: dict[str, Any] = {}
    if midway is not None:
        await watch.follow(stack, started + seconds / 3)
        extra = await midway(watch)
    await watch.follow(stack, started + seconds)
    await stack.faults(remote.value, [])
    cleared, cleared_wall = time.monotonic(), time.time()
    up_s, drain_s = await until_drained(stack, remote, cleared)
    return {
        "remote": remote.value,
        "outage_s": round(cleared - started, 1),
        "rules": rules,
        "cleared_at": _wall(cleared_wall),
        "unavailable_samples": f"{watch.unavailable}/{watch.samples}",
        "unavailable_seen": watch.unavailable > 0,
        "status_unanswered": watch.missed,
        "peak_parked": watch.peak_parked,
        "peak_parked_events": watch.peak_parked_events,
        "up_after_s": up_s,
        "drain_seconds": drain_s,
        **extra,
    }


async def magento_outage(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """Every Magento call answers 503 for `outage_s`, then Magento recovers."""
    return await outage(stack, Remote.MAGENTO, ALL_503, size.outage_s)


async def outage_and_redis_restart(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """The Magento outage, with Redis SIGKILLed a third of the way in, kept down for `redis_down_s` and started
    again on its append-only file; then Magento recovers."""

    async def restart(watch: RemoteWatch) -> dict[str, Any]:
        parked_at_kill = watch.parked
        stack.redis.kill()
        await asyncio.sleep(size.redis_down_s)
        await stack.redis.start()
        deadline = time.monotonic() + 15
        after = await remote_status(stack, Remote.MAGENTO)
        while after is None and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            after = await remote_status(stack, Remote.MAGENTO)
        return {
            "redis_down_s": size.redis_down_s,
            "parked_at_kill": parked_at_kill,
            "after_restart": None if after is None else {"state": after["state"], "parked": after["parked"]},
        }

    return await outage(stack, Remote.MAGENTO, ALL_503, size.outage_s, restart)


async def cloudretailer_outage(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """Cloud Retailer answers 503 to every GET and POST of its API for half of `outage_s`, then recovers."""
    return await outage(stack, Remote.CLOUDRETAILER, CR_WORKER_CALLS_503, size.outage_s / 2)


def outage_judge(remote: Remote) -> Judge:
    def judge(info: dict[str, Any], v: Verdict) -> None:
        peak = info.get("peak_parked", 0)
        samples = info.get("unavailable_samples")
        v.add(
            f"the outage was seen: {remote.value} was unavailable with work parked",
            [] if info.get("unavailable_seen") and peak else [f"unavailable in {samples} samples, peak parked {peak}"],
            f"unavailable in {samples} samples, peak {peak} entities parked ({info.get('peak_parked_events')} events)",
        )
        drain = info.get("drain_seconds")
        v.add(
            f"drained within {DRAIN_LIMIT_S:.0f} s of {remote.label} coming back",
            [] if drain is not None and drain <= DRAIN_LIMIT_S else [f"parked work left {drain} s after the fault"],
            f"nothing parked {drain} s after the fault ended (up again after {info.get('up_after_s')} s)",
        )
        dead = [f"{v.counts.get(k, 0)} {k}" for k in ("dead_lettered", "dead_letters_open") if v.counts.get(k, 0)]
        v.add("parked, not dead-lettered: 0 dead letters", dead, "0")

    return judge


def judge_outage_and_restart(info: dict[str, Any], v: Verdict) -> None:
    outage_judge(Remote.MAGENTO)(info, v)
    # With `appendfsync always`, what was parked before the kill is still parked after it, and the remote is
    # still known to be down (a state reset to `up` would send every parked job at a dead Magento).
    before, after = info.get("parked_at_kill", 0), info.get("after_restart")
    problems = []
    if after is None:
        problems.append("the gateway did not answer after the restart")
    elif after["state"] != "unavailable" or after["parked"] < before:
        problems.append(f"{before} parked before the kill; after the restart {after}")
    v.add("the parked backlog and Magento's state survived the Redis restart", problems, f"{before} -> {after}")


async def rate_limit_storm(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """429 + Retry-After: 60% of Magento calls and 30% of Cloud Retailer calls for `storm_s`."""
    magento = {"rate_limit_rate": 0.6, "retry_after_seconds": 1}
    cr = {"rate_limit_rate": 0.3, "retry_after_seconds": 1}
    await stack.faults("magento", [magento])
    await stack.faults("cloudretailer", [cr])
    await asyncio.sleep(size.storm_s)
    await stack.faults("magento", [])
    await stack.faults("cloudretailer", [])
    return {"storm_s": size.storm_s, "magento": magento, "cloudretailer": cr}


async def duplicate_shuffle(stack: ChaosStack, size: Size, stream: Stream) -> dict[str, Any]:
    """The relay switched to shuffle mode from the start (see `run_scenario`); the fault is the stream."""
    await asyncio.sleep(size.storm_s)
    return {"window_s": 0.5, "copies": 2, "held_back": "1/5 of each window's copies"}


SCENARIOS: dict[str, Fault] = {
    "worker-kill": worker_kill,
    "redis-restart": redis_restart,
    "magento-outage": magento_outage,
    "outage-and-redis-restart": outage_and_redis_restart,
    "cloudretailer-outage": cloudretailer_outage,
    "rate-limit-storm": rate_limit_storm,
    "duplicate-shuffle": duplicate_shuffle,
}
JUDGES: dict[str, Judge] = {
    "worker-kill": judge_takeover,
    "magento-outage": outage_judge(Remote.MAGENTO),
    "outage-and-redis-restart": judge_outage_and_restart,
    "cloudretailer-outage": outage_judge(Remote.CLOUDRETAILER),
}


# --- running one ------------------------------------------------------------------------------------------


async def run_scenario(name: str, size: Size, run_dir: Path) -> Outcome:
    fault = SCENARIOS[name]
    started = time.monotonic()
    specs = catalog_products(size.products)
    async with ChaosStack(run_dir, products=size.products, workers=2, env=size.env_for(name)) as stack:
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
        judge = JUDGES.get(name)
        if judge is not None:
            judge(info, verdict)
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
