"""What the system looks like right now, read from Redis: for /admin/status, /readyz and /metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import keys, remotes, series
from crmcore.clock import iso_ms
from crmcore.settings import StockLink

# Heartbeats older than this are dropped from the listing (the worker is gone).
_FORGET_WORKER_S = 86_400


# The window of the per-domain figures in the snapshot (and of the lag and age metrics).
DOMAIN_WINDOW_MINUTES = 15


async def domains(redis: Redis, now_ms: int) -> dict[str, dict[str, Any]]:
    """Per domain: when Magento last got a change, and how fast changes got there over the last 15 minutes."""
    minutes = await series.read_minutes(redis, series.minute_of(now_ms), DOMAIN_WINDOW_MINUTES)
    window = series.total(m for _, m in minutes)
    newest = await series.newest_applied(redis)
    out: dict[str, dict[str, Any]] = {}
    for domain in series.DOMAINS:
        buckets = window.lag_buckets(domain)
        applied_ms = newest.get(domain)
        out[domain] = {
            "newest_applied_at": iso_ms(applied_ms) if applied_ms else None,
            "age_seconds": round(max(0, now_ms - applied_ms) / 1000, 1) if applied_ms else None,
            "lag_p50_ms": series.percentile(buckets, 0.5),
            "lag_p99_ms": series.percentile(buckets, 0.99),
            "applied_15m": window.applied[domain],
            "failed_15m": window.failed[domain],
        }
    return out


RECONCILE_REPORT = "reconcile-inventory"


def stock_links(links: Sequence[StockLink], reports: dict[str, Any]) -> list[dict[str, Any]]:
    """The stock links in force (the first is the default), each with what the last inventory reconciliation
    found and wrote at its source (None for a link that run did not cover)."""
    report = reports.get(RECONCILE_REPORT)
    lines = report.get("links") if isinstance(report, dict) else None
    by_source = {line.get("source_code"): line for line in lines or [] if isinstance(line, dict)}
    if isinstance(report, dict) and not lines and report.get("source_code"):
        by_source[report["source_code"]] = report  # a report written before links were reported one by one
    out = []
    for n, link in enumerate(links):
        line = by_source.get(link.source_code)
        if line is not None and line.get("store_id") not in (None, link.location_id):
            line = None  # that run fed this source from another location: not this link's figures
        out.append(
            {
                "location_id": link.location_id,
                "source_code": link.source_code,
                "default": n == 0,
                "last_reconcile": report.get("finished") if line is not None and isinstance(report, dict) else None,
                **{name: line.get(name) if line is not None else None for name in LINK_FIGURES},
            }
        )
    return out


LINK_FIGURES = ("cr_skus", "compared", "drift_found", "drift_fixed", "held_skus")


async def snapshot(
    redis: Redis,
    queue_name: str,
    *,
    parked_events: bool = True,
    with_domains: bool = True,
    links: Sequence[StockLink] | None = None,
) -> dict[str, Any]:
    """`parked_events=False` leaves out the count of events in parked entities (a script over every parked
    entity), `with_domains=False` the per-domain figures (16 reads): /readyz, which a load balancer calls every
    few seconds, needs neither. `links`: the stock links to list (with their last reconciliation's figures)."""
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now - _FORGET_WORKER_S)
        pipe.zcard(queue_name)
        pipe.zrange(keys.WORKERS, 0, -1, withscores=True)
        pipe.zcard(keys.DEADLETTERS)
        pipe.zcard(keys.RECENT_EVENTS)
        pipe.hgetall(keys.JOB_STATS)
        pipe.hgetall(keys.REPORTS)
        remotes.queue_reads(pipe)
        _, depth, workers, dead, recent, stats, reports, *remote_reads = await pipe.execute()
    states = remotes.decode_reads(remote_reads)
    parked = await remotes.parked_events(redis, states) if parked_events else dict.fromkeys(states, 0)
    async with redis.pipeline(transaction=False) as pipe:
        for wid, _ in workers:
            pipe.hgetall(keys.worker(wid.decode()))
        infos = await pipe.execute()
    listed = []
    for (wid, seen), info in zip(workers, infos, strict=True):
        details = {k.decode(): v.decode() for k, v in info.items()}
        listed.append(
            {
                "id": wid.decode(),
                "last_seen": iso_ms(seen * 1000),
                "age_seconds": round(now - seen, 1),
                "host": details.get("host"),
                "pid": int(details["pid"]) if details.get("pid") else None,
                "jobs_running": int(details.get("jobs_running") or 0),
            }
        )
    per_domain = await domains(redis, int(now * 1000)) if with_domains else {}
    decoded = {k.decode(): orjson.loads(v) for k, v in sorted(reports.items())}
    out = {
        "queue_depth": depth,
        "workers": listed,
        "dead_letters": dead,
        "recent_events": recent,
        "jobs": {k.decode(): int(v) for k, v in stats.items()},
        "reports": decoded,
        "remotes": {
            remote.value: {**state.as_dict(), "parked_events": parked[remote]} for remote, state in states.items()
        },
        "domains": per_domain,
    }
    if links is not None:
        out["stock_links"] = stock_links(links, decoded)
    return out


def freshest_worker_age(snap: dict[str, Any]) -> float | None:
    ages = [w["age_seconds"] for w in snap["workers"]]
    return min(ages) if ages else None
