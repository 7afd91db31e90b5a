"""Whether Magento and Cloud Retailer can be worked with right now: a state per remote, shared by every
worker and read by the gateway's status, metrics and dashboard.

A remote that is down is a state of that remote, not a failure of each event. While a remote is not `up`,
the jobs that need it are parked (their events stay queued, no attempt is spent), one worker probes it,
and when it answers the parked entities are released again by themselves (workers/availability/).

    up             the remote answers (also what a remote without a record is)
    unavailable    connection refused or reset, timeouts, 502/503/504, a 429 storm, a non-JSON page
    misconfigured  it answers, but a setting is wrong (credentials, base path, store, website, source)

Keys (crmcore/keys.py):
    remote(r)                    hash: state, since_ms, error, setting, checked_ms, next_probe_ms,
                                 backoff_ms, up_since_ms, outages
    remote_parked(r)             zset: entity -> drain rank (dependency order, then park time)
    remote_probe_lock(r)         lease: the one worker probing it now
    remote_drain_lock(r)         lease: the one worker releasing its parked entities
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from crmcore import keys
from crmcore.clock import iso_ms


class Remote(StrEnum):
    """The two remote systems; the values are the event sources' and the clients' `system` names."""

    MAGENTO = "magento"
    CLOUDRETAILER = "cloudretailer"

    @property
    def label(self) -> str:
        return "Magento" if self is Remote.MAGENTO else "Cloud Retailer"


# What a sync rule needs unless it says less: every rule reads one system and writes the other.
BOTH_REMOTES = (Remote.CLOUDRETAILER, Remote.MAGENTO)


class RemoteStateName(StrEnum):
    UP = "up"
    UNAVAILABLE = "unavailable"
    MISCONFIGURED = "misconfigured"


# Probing backs off from 1 s, doubling to 40 s: a remote that comes back just after a probe is seen within
# 40 s, which leaves the drain 20 s of the promise that a backlog is applied within 60 s of the remote's
# return. The backoff starts again at 1 s only once the remote has stayed up for STABLE_UP_MS, so a remote that
# flaps is probed less and less often instead of thrashing.
PROBE_FIRST_MS = 1_000
PROBE_MAX_MS = 40_000
STABLE_UP_MS = 60_000

# Drain rank of an entity kind: what others depend on is released first (a product's categories before
# the product, a customer before their order, a product before its stock).
DRAIN_RANKS = {"category": 0, "customer": 1, "product": 2, "inventory": 3, "order": 4}
_RANK_SPAN = 10**13  # above any millisecond timestamp until the year 2286


def drain_rank(entity: str, parked_ms: int) -> int:
    """Score of an entity in a parked set: dependency rank first, then the order it was parked in."""
    try:
        kind = keys.entity_parts(entity).kind
    except ValueError:
        kind = ""
    return DRAIN_RANKS.get(kind, len(DRAIN_RANKS)) * _RANK_SPAN + parked_ms


def rank_of(score: float) -> int:
    return int(score) // _RANK_SPAN


@dataclass(frozen=True, slots=True)
class RemoteState:
    remote: Remote
    state: RemoteStateName = RemoteStateName.UP
    since_ms: int | None = None
    error: str = ""
    setting: str = ""  # the setting a misconfiguration is about (its name, never its value)
    checked_ms: int | None = None
    next_probe_ms: int | None = None
    outages: int = 0
    parked: int = 0

    @property
    def up(self) -> bool:
        return self.state is RemoteStateName.UP

    def describe(self) -> str:
        """`up`, `unavailable since 2026-12-03T14:02:11.123Z (Magento 503 ...)` or `misconfigured: reason`."""
        if self.up:
            return "up"
        if self.state is RemoteStateName.MISCONFIGURED:
            return f"misconfigured: {self.error}"
        since = iso_ms(self.since_ms) if self.since_ms else "?"
        return f"unavailable since {since} ({self.error})" if self.error else f"unavailable since {since}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "since": iso_ms(self.since_ms) if self.since_ms else None,
            "error": self.error or None,
            "setting": self.setting or None,
            "checked": iso_ms(self.checked_ms) if self.checked_ms else None,
            "next_probe": iso_ms(self.next_probe_ms) if self.next_probe_ms and not self.up else None,
            "outages": self.outages,
            "parked": self.parked,
            "summary": self.describe(),
        }


def decode_state(remote: Remote, raw: dict[bytes, bytes], parked: int = 0) -> RemoteState:
    fields = {k.decode(): v.decode() for k, v in raw.items()}

    def num(name: str) -> int | None:
        value = fields.get(name)
        return int(value) if value else None

    try:
        state = RemoteStateName(fields.get("state") or "up")
    except ValueError:
        state = RemoteStateName.UP
    return RemoteState(
        remote=remote,
        state=state,
        since_ms=num("since_ms"),
        error=fields.get("error", ""),
        setting=fields.get("setting", ""),
        checked_ms=num("checked_ms"),
        next_probe_ms=num("next_probe_ms"),
        outages=num("outages") or 0,
        parked=parked,
    )


def queue_reads(pipe: Pipeline) -> None:
    """Add the reads of every remote's state and parked count to a pipeline (see `decode_reads`)."""
    for remote in Remote:
        pipe.hgetall(keys.remote(remote))
        pipe.zcard(keys.remote_parked(remote))


def decode_reads(results: list[Any]) -> dict[Remote, RemoteState]:
    out = {}
    for i, remote in enumerate(Remote):
        out[remote] = decode_state(remote, results[2 * i], int(results[2 * i + 1]))
    return out


async def read_states(redis: Redis) -> dict[Remote, RemoteState]:
    async with redis.pipeline(transaction=False) as pipe:
        queue_reads(pipe)
        return decode_reads(await pipe.execute())


# KEYS[1] remote hash.  ARGV: state (unavailable|misconfigured), error, setting, now_ms, probe (1 when a probe
# found it so: the next probe then waits twice as long, up to PROBE_MAX_MS; only a probe that was due counts,
# so workers starting together during an outage do not double it once each).
# Returns 1 when the state changed (a new outage), 0 when it only refreshed the error.
# The probe backoff of a new outage starts at 1 s, unless the remote came back less than STABLE_UP_MS ago:
# then it goes on doubling from where the last outage left it.
MARK_DOWN_LUA = """
local key, state, err, setting, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local cur = redis.call('HGET', key, 'state')
if cur == state then
  redis.call('HSET', key, 'error', err, 'setting', setting, 'checked_ms', now)
  if ARGV[5] == '1' and now >= tonumber(redis.call('HGET', key, 'next_probe_ms') or '0') then
    local b = math.min(tonumber(redis.call('HGET', key, 'backoff_ms') or '%(first)d') * 2, %(max)d)
    redis.call('HSET', key, 'backoff_ms', b, 'next_probe_ms', now + b)
  end
  return 0
end
local backoff = %(first)d
if cur == 'up' or not cur then
  local up_since = tonumber(redis.call('HGET', key, 'up_since_ms') or '0')
  local last = tonumber(redis.call('HGET', key, 'backoff_ms') or '0')
  if up_since > 0 and now - up_since < %(stable)d and last > 0 then
    backoff = math.min(last * 2, %(max)d)
  end
  redis.call('HINCRBY', key, 'outages', 1)
  redis.call('HSET', key, 'since_ms', now, 'backoff_ms', backoff, 'next_probe_ms', now + backoff)
end
redis.call('HSET', key, 'state', state, 'error', err, 'setting', setting, 'checked_ms', now)
return 1
""" % {"first": PROBE_FIRST_MS, "stable": STABLE_UP_MS, "max": PROBE_MAX_MS}

# KEYS[1] remote hash.  ARGV: now_ms.  Returns the state it was in ('' when it had no record).
MARK_UP_LUA = """
local key, now = KEYS[1], ARGV[1]
local cur = redis.call('HGET', key, 'state') or ''
if cur ~= 'up' then
  redis.call('HSET', key, 'state', 'up', 'since_ms', now, 'up_since_ms', now, 'error', '', 'setting', '')
end
redis.call('HSET', key, 'checked_ms', now)
return cur
"""

# The events waiting in a remote's parked entities. Exact up to PARKED_COUNT_EXACT entities (a few
# milliseconds of Redis); past that the average of those is extrapolated, so a scrape stays cheap in a
# day-long outage. KEYS[1] parked zset.  ARGV: limit.  Returns {entities counted, events in them}.
PARKED_EVENTS_LUA = (
    """
local ents = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local n = 0
for _, e in ipairs(ents) do
  local ek = '%(entity)s' .. e
  n = n + redis.call('LLEN', ek .. ':pending') + redis.call('LLEN', ek .. ':inflight')
end
return {#ents, n}
"""
    % keys.LUA
)
PARKED_COUNT_EXACT = 20_000


async def parked_events(redis: Redis, states: dict[Remote, RemoteState]) -> dict[Remote, int]:
    """Events parked per remote (what `crmagento_parked_events` and the status show)."""
    script = redis.register_script(PARKED_EVENTS_LUA)
    out = {}
    for remote, state in states.items():
        if not state.parked:
            out[remote] = 0
            continue
        counted, events = await script(keys=[keys.remote_parked(remote)], args=[PARKED_COUNT_EXACT])
        counted, events = int(counted), int(events)
        out[remote] = events if counted >= state.parked or not counted else round(events * state.parked / counted)
    return out
