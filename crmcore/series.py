"""The per-minute series an operator's dashboard and alerts read: is Magento current, and does the sync keep up.

One Redis hash per minute (`keys.series_minute(epoch minute)`), written on the paths that already run:

    r                 events the accept script queued (gateway ingest and worker feed alike), all domains
    a:{domain}        events settled done or skipped (the dispatcher's settle point)
    f:{domain}        events settled failed (a retry follows) or dead
    l:{domain}:{i}    applied events whose lag (settle time - `received_ms`) fell in bucket i of LAG_BOUNDS_MS
    q                 the queue depth, sampled once a minute by the housekeeping job

Bounded by time, not by trimming: every writer sets EXPIREAT to the minute's end plus KEEP_SECONDS (a day and
an hour), so at most ~1500 minute hashes exist and a write stamped older than that is gone at once. Fixed
buckets (not samples) make a window's percentiles a sum: p50/p99 over any run of minutes is exact up to the
bucket width (a factor of sqrt 2). `keys.NEWEST_APPLIED` keeps, per domain, when a change was last applied.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from crmcore import keys

MINUTE_MS = 60_000
DAY_MINUTES = 1440
KEEP_SECONDS = (DAY_MINUTES + 60) * 60
DOMAINS = ("products", "stock", "categories", "customers", "orders")
# An entity name's kind (crmcore/events.py `EventData.KIND`) -> its domain; the accept script counts all as one.
KIND_DOMAIN = {
    "product": "products",
    "style": "products",  # a style is the parent of products: the catalog's freshness is one figure
    "inventory": "stock",
    "category": "categories",
    "customer": "customers",
    "order": "orders",
}
# Upper bounds (inclusive) from 50 ms to 1 h in steps of sqrt 2; a lag above the last one is the overflow bucket.
LAG_BOUNDS_MS: tuple[int, ...] = (*(round(50 * 2 ** (i / 2)) for i in range(33)), 3_600_000)
APPLIED = frozenset({"done", "skipped"})
FAILED = frozenset({"failed", "dead"})

# The accept script's share, appended to ACCEPT_LUA (crmcore/entityqueue.py): one HINCRBY per batch, and the
# expiry only when the minute's counter is new (the HINCRBY answered the batch's own count). pcall: the events
# are written by now, and a series key of another type must not turn their acceptance into an error.
ACCEPT_LUA_TAIL = """
local series_key = '%(series)s' .. math.floor(tonumber(now_ms) / %(minute_ms)d)
if redis.pcall('HINCRBY', series_key, 'r', queued) == queued then
  redis.call('EXPIREAT', series_key, (math.floor(tonumber(now_ms) / %(minute_ms)d) + 1) * 60 + %(keep)d)
end
""" % {"series": keys.LUA["series"], "minute_ms": MINUTE_MS, "keep": KEEP_SECONDS}


def minute_of(ms: int) -> int:
    return ms // MINUTE_MS


def expires_at(minute: int) -> int:
    """Epoch seconds when the minute's hash goes: its end plus KEEP_SECONDS."""
    return (minute + 1) * 60 + KEEP_SECONDS


def domain_of(entity: str) -> str | None:
    """The domain of an entity name `{source}:{kind}:...`, None for a kind outside the five."""
    parts = entity.split(":", 2)
    return KIND_DOMAIN.get(parts[1]) if len(parts) > 1 else None


def lag_bucket(lag_ms: float) -> int:
    return bisect_left(LAG_BOUNDS_MS, lag_ms)


def count_settled(pipe: Pipeline, records: Iterable[Mapping[bytes, bytes]], status: str, *, now_ms: int) -> None:
    """Queue on `pipe` the counts of event records (raw, as HGETALL gave them) settled with `status` now. A
    status that is not final (processing, parked) counts nothing."""
    applied = status in APPLIED
    if not applied and status not in FAILED:
        return
    counts: Counter[str] = Counter()
    for raw in records:
        domain = domain_of(raw.get(b"entity", b"").decode())
        if domain is None:
            continue
        counts[f"{'a' if applied else 'f'}:{domain}"] += 1
        received = raw.get(b"received_ms")
        if applied and received:
            counts[f"l:{domain}:{lag_bucket(now_ms - int(received))}"] += 1
    if not counts:
        return
    minute = minute_of(now_ms)
    key = keys.series_minute(minute)
    for name, n in counts.items():
        pipe.hincrby(key, name, n)
    pipe.expireat(key, expires_at(minute))
    if applied:
        # GT: two workers settling at once, or a late settle, never move the time back.
        newest = {name.split(":")[1]: now_ms for name in counts if name.startswith("a:")}
        pipe.zadd(keys.NEWEST_APPLIED, newest, gt=True)


async def sample_queue_depth(redis: Redis, queue_name: str, *, now_ms: int) -> int:
    """Store the queue's depth as the current minute's `q` (a later sample in the same minute replaces it)."""
    depth = int(await redis.zcard(queue_name))
    minute = minute_of(now_ms)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(keys.series_minute(minute), "q", depth)
        pipe.expireat(keys.series_minute(minute), expires_at(minute))
        await pipe.execute()
    return depth


# --- reading ------------------------------------------------------------------------------------------------


_BUCKETS = len(LAG_BOUNDS_MS) + 1
# A day's read decodes ~1440 hashes on the gateway's event loop: in chunks, so webhooks get the loop in between.
_READ_CHUNK = 120


@dataclass
class Minute:
    """What one minute, or a sum of minutes, counted. `lag` is sparse: domain -> bucket index -> count."""

    received: int = 0
    queue_depth: int | None = None
    applied: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lag: dict[str, dict[int, int]] = field(default_factory=dict)

    def add(self, other: Minute) -> None:
        self.received += other.received
        self.applied.update(other.applied)
        self.failed.update(other.failed)
        for domain, sparse in other.lag.items():
            mine = self.lag.setdefault(domain, {})
            for i, n in sparse.items():
                mine[i] = mine.get(i, 0) + n

    def lag_buckets(self, domain: str | None = None) -> list[int]:
        """The lag histogram (one count per LAG_BOUNDS_MS bucket and the overflow) of one domain, or of all."""
        summed = [0] * _BUCKETS
        for name, sparse in self.lag.items():
            if domain is None or name == domain:
                for i, n in sparse.items():
                    summed[i] += n
        return summed


def decode_minute(raw: Mapping[bytes, bytes]) -> Minute:
    """Works on the bytes as HGETALL gives them (a day is ~75k fields: decoding each name would double the
    read); a field this module does not write is left out."""
    minute = Minute()
    for name, value in raw.items():
        head, _, rest = name.partition(b":")
        if head == b"l":
            domain, _, index = rest.rpartition(b":")
            if index.isdigit() and int(index) < _BUCKETS:
                minute.lag.setdefault(domain.decode(), {})[int(index)] = int(value)
        elif head == b"a":
            minute.applied[rest.decode()] = int(value)
        elif head == b"f":
            minute.failed[rest.decode()] = int(value)
        elif head == b"r":
            minute.received = int(value)
        elif head == b"q":
            minute.queue_depth = int(value)
    return minute


async def read_minutes(redis: Redis, last: int, count: int) -> list[tuple[int, Minute]]:
    """The `count` minutes ending with minute `last` (included), oldest first; a minute nothing wrote is empty."""
    out: list[tuple[int, Minute]] = []
    first = last - count + 1
    for start in range(first, last + 1, _READ_CHUNK):
        minutes = range(start, min(start + _READ_CHUNK, last + 1))
        async with redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(keys.series_minute(minute))
            raws = await pipe.execute()
        out.extend((minute, decode_minute(raw)) for minute, raw in zip(minutes, raws, strict=True))
    return out


def total(minutes: Iterable[Minute]) -> Minute:
    summed = Minute()
    for minute in minutes:
        summed.add(minute)
    return summed


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) of a LAG_BOUNDS_MS histogram in ms, linear within its bucket as Prometheus's
    histogram_quantile does; None for an empty one. The overflow bucket answers the last bound (1 h)."""
    count = sum(buckets)
    if count == 0:
        return None
    rank = q * count
    below = 0
    for i, n in enumerate(buckets):
        if n and below + n >= rank:
            if i == len(LAG_BOUNDS_MS):
                return float(LAG_BOUNDS_MS[-1])
            lower = LAG_BOUNDS_MS[i - 1] if i else 0
            return round(lower + (LAG_BOUNDS_MS[i] - lower) * (rank - below) / n, 1)
        below += n
    return float(LAG_BOUNDS_MS[-1])


async def newest_applied(redis: Redis) -> dict[str, int]:
    """domain -> epoch ms of the newest change applied there (domains that never had one are absent)."""
    raw = await redis.zrange(keys.NEWEST_APPLIED, 0, -1, withscores=True)
    return {k.decode(): int(v) for k, v in raw}
