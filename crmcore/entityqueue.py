"""The per-entity coalescing queue on Redis: the contract between the gateway and the workers.

Why not one arq job per event, or one arq job id per entity? arq refuses a job whose id is queued, running
or has a kept result, so a per-entity job id silently drops the change that arrives while the entity's
job runs. Instead every entity has a small state machine, changed only by the Lua scripts below, so each
step is atomic (and written to the append-only file as one unit):

    idle --accept--> queued --claim--> running --release--> idle           (nothing new arrived)
                       ^  accept: coalesces   |  accept: waits in pending
                       +------- release: exactly one new job --------------+  (something arrived)

Keys (built by crmcore/keys.py; arq's own keys keep arq's names):
    event(ref)                         hash: the event log record (status, attempts, last error); its existence
                                       is also the de-duplication window (Settings.event_record_ttl_seconds)
    RECENT_EVENTS                      zset ref -> received ms, trimmed: the bounded recent index
    entity(e)                          hash: state queued|running|parked|retrying, job, attempts, worker
    pending(e)                         list of event refs that arrived since the last claim
    inflight(e)                        list of event refs the current job is working on
    worker_jobs(worker id)             hash entity -> job: what that worker is running (for takeover)
    arq:job:{job-id} + the queue zset  a plain arq job `process_entity(entity)`, serialized as JSON

Two more states: `parked` (a remote the job needs is down; the entity waits on that remote's parked set with
a job deferred far ahead, see crmcore/remotes.py) and `retrying` (a handler failed and the job waits for its
backoff). A worker that stops beating is taken over: each entity it was `running` gets a new job on a live
worker (workers/availability/takeover.py), and the old job can no longer claim, settle or write.

A new arq job id is minted for every run (`keys.job_id(entity, n)`), so arq's id refusal never applies. The
ingest script also heals an entity whose job vanished (expired, or given up by arq): if the state names a
job whose arq key is gone, a fresh job is enqueued and picks up both the inflight and pending refs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.asyncio import Redis

from crmcore import keys, series
from crmcore.eventlog import ADMIN_JOB_FIELD

PROCESS_ENTITY = "process_entity"
# Long enough that a week-long worker outage does not expire queued work (arq's default is one day).
JOB_EXPIRE_MS = 7 * 86_400_000

ACCEPT_QUEUED = "queued"
ACCEPT_DUPLICATE = "duplicate"
# One of the keys the event would write holds another type: nothing was written for it (see ACCEPT_LUA).
ACCEPT_REFUSED = "refused"


class QueuedEvent(NamedTuple):
    """One event as the gateway (a webhook) or the feed (a change a worker found) hands it to the queue.

    The accept script reads a batch of these as JSON arrays, by position: a tuple is the smallest JSON and the
    cheapest for Lua to decode, and the gateway builds one per webhook on its hot path (docs/performance.md).
    """

    source: str  # a `Source` value
    id: str  # the webhook id, or the id the feed minted (`{origin}:{n}`)
    type: str
    entity: str
    timestamp: str  # ISO 8601, as the sender stamped it
    data: str  # the type's data model as JSON

    @property
    def ref(self) -> str:
        """Unique across sources (as `AcceptedEvent.ref`)."""
        return f"{self.source}:{self.id}"


# Shared Lua: put `ref` on the entity's pending list and make sure exactly one job will look at it.
LUA_SCHEDULE = """
local PREFIX, JOB_PREFIX = '%(prefix)s', '%(job_prefix)s'
local EVENT, ENTITY, WORKER = '%(event)s', '%(entity)s', '%(worker)s'
local RECENT, JOBSEQ = '%(recent)s', '%(jobseq)s'

local function mint_job(ek, entity, queue, now_ms, expire_ms)
  local job_id = PREFIX .. entity .. ':' .. redis.call('INCR', JOBSEQ)
  local body = '{"t":null,"f":"%(function)s","a":[' .. cjson.encode(entity) .. '],"k":{},"et":' .. now_ms .. '}'
  redis.call('PSETEX', JOB_PREFIX .. job_id, expire_ms, body)
  redis.call('ZADD', queue, now_ms, job_id)
  redis.call('HSET', ek, 'state', 'queued', 'job', job_id, 'attempts', 0)
  return job_id
end

local function schedule(entity, ref, queue, now_ms, expire_ms)
  local ek = ENTITY .. entity
  redis.call('RPUSH', ek .. ':pending', ref)
  local job = redis.call('HGET', ek, 'job')
  if (not job) or redis.call('EXISTS', JOB_PREFIX .. job) == 0 then
    mint_job(ek, entity, queue, now_ms, expire_ms)
  end
end

-- The entity no longer runs on the worker that claimed it.
local function forget_worker(ek, entity)
  local w = redis.call('HGET', ek, 'worker')
  if w then
    redis.call('HDEL', WORKER .. w .. ':jobs', entity)
    redis.call('HDEL', ek, 'worker')
  end
end
""" % {**keys.LUA, "job_prefix": job_key_prefix, "function": PROCESS_ENTITY}

# ARGV: now_ms, record_ttl_s, recent_max, queue, expire_ms, batch_json[, admin_job] where batch_json is
#       [[source, id, type, entity, timestamp, data_json], ...] (`QueuedEvent`s). One JSON argument rather than six
#       per event: redis-py packs every argument in Python, which at hundreds of events per batch cost the gateway
#       more than the script costs Redis. admin_job (the feed's only): the job record that counts these events as
#       they settle, kept in each record so the dispatcher finds it without reading it out of the event id.
# Returns one status per event: 'queued', 'duplicate' or 'refused'.
#
# Redis does not roll a script back: a command that fails half way leaves what ran before it written, and the
# caller sees only the error. So nothing is written before it is known to succeed. The keys every event shares
# (the recent index, the arq queue, the job counter) are checked once, and a wrong type there fails the batch
# with nothing written. The keys of one event (its record, its entity's hash and pending list) are checked
# before that event writes anything: if one holds another type (a key some other writer or an operator left),
# that event alone is 'refused', nothing written for it, and the rest of the batch goes on.
#
# This script is the gateway's share of Redis's time, and on a machine where Redis, the gateway and the senders
# share cores it decides how often the gateway waits (docs/performance.md). So the event record is the dedupe
# marker (no separate SET NX key: a call and about 250 bytes less per event), and it is written without the
# fields whose value a reader can infer: status 'queued', attempts 0, updated = received (eventlog.decode_record).
# An entity already written in this batch is not checked again. The batch's queued events are counted in the
# minute's series hash with one HINCRBY (crmcore/series.py).
ACCEPT_LUA = (
    LUA_SCHEDULE
    + """
local function holds(key, wanted)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == wanted
end

local now_ms, record_ttl = ARGV[1], tonumber(ARGV[2])
local recent_max, queue, expire_ms = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local admin_job = ARGV[7]
if not (holds(RECENT, 'zset') and holds(queue, 'zset') and holds(JOBSEQ, 'string')) then
  return redis.error_reply('WRONGTYPE a key every accepted event writes holds another type; nothing written')
end
local out = {}
local queued = 0
local fit = {}
for _, ev in ipairs(cjson.decode(ARGV[6])) do
  local source, id, typ, entity = ev[1], ev[2], ev[3], ev[4]
  local ref = source .. ':' .. id
  local ek = EVENT .. ref
  local record = redis.call('TYPE', ek)['ok']
  if record == 'hash' then
    out[#out + 1] = '%(duplicate)s'
  elseif record ~= 'none' or not (fit[entity] or (holds(ENTITY .. entity, 'hash')
      and holds(ENTITY .. entity .. ':pending', 'list'))) then
    out[#out + 1] = '%(refused)s'
  else
    redis.call('HSET', ek, 'id', id, 'source', source, 'type', typ, 'entity', entity,
      'timestamp', ev[5], 'data', ev[6], 'received_ms', now_ms)
    if admin_job then redis.call('HSET', ek, '%(admin_job)s', admin_job) end
    redis.call('EXPIRE', ek, record_ttl)
    redis.call('ZADD', RECENT, now_ms, ref)
    schedule(entity, ref, queue, now_ms, expire_ms)
    fit[entity] = true
    out[#out + 1] = '%(queued)s'
    queued = queued + 1
  end
end
if queued > 0 then
  redis.call('ZREMRANGEBYRANK', RECENT, 0, -recent_max - 1)
"""
    % {"admin_job": ADMIN_JOB_FIELD, "queued": ACCEPT_QUEUED, "duplicate": ACCEPT_DUPLICATE, "refused": ACCEPT_REFUSED}
    + series.ACCEPT_LUA_TAIL
    + """
end
return out
"""
)

# A job starts: it must still be the entity's current job. Moves pending refs onto inflight (which keeps
# what an interrupted try was doing) and counts the attempt.
# The claiming worker is recorded on both sides, so a live worker can take the entity over if it dies.
# ARGV: entity, job_id, worker_id ('' for none).  Returns {attempts, ref...} or {-1} for a job that is no
# longer current.
CLAIM_LUA = (
    """
local ek = '%(entity)s' .. ARGV[1]
if redis.call('HGET', ek, 'job') ~= ARGV[2] then return {-1} end
redis.call('HSET', ek, 'state', 'running')
if ARGV[3] ~= '' then
  -- arq hands a dead worker's job to another once its lease runs out: the dead one must no longer name the
  -- entity, or a takeover of it would mint a second job while this one runs.
  local previous = redis.call('HGET', ek, 'worker')
  if previous and previous ~= ARGV[3] then redis.call('HDEL', '%(worker)s' .. previous .. ':jobs', ARGV[1]) end
  redis.call('HSET', ek, 'worker', ARGV[3])
  redis.call('HSET', '%(worker)s' .. ARGV[3] .. ':jobs', ARGV[1], ARGV[2])
end
local attempts = redis.call('HINCRBY', ek, 'attempts', 1)
local pending, inflight = ek .. ':pending', ek .. ':inflight'
while redis.call('LMOVE', pending, inflight, 'LEFT', 'RIGHT') do end
local out = redis.call('LRANGE', inflight, 0, -1)
table.insert(out, 1, attempts)
return out
"""
    % keys.LUA
)

# Some refs are finished (done, skipped or dead-lettered): they leave inflight.
# ARGV: entity, job_id, ref...
SETTLE_LUA = (
    """
local ek = '%(entity)s' .. ARGV[1]
if redis.call('HGET', ek, 'job') ~= ARGV[2] then return -1 end
for i = 3, #ARGV do redis.call('LREM', ek .. ':inflight', 0, ARGV[i]) end
return redis.call('LLEN', ek .. ':inflight')
"""
    % keys.LUA
)

# The job is over. If changes arrived while it ran, exactly one new job is enqueued for them.
# ARGV: entity, job_id, now_ms, queue, expire_ms.  Returns 'idle', 'requeued' or 'stale'.
RELEASE_LUA = (
    LUA_SCHEDULE
    + """
local entity, job_id, now_ms, queue, expire_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ek = ENTITY .. entity
if redis.call('HGET', ek, 'job') ~= job_id then return 'stale' end
forget_worker(ek, entity)
local left = redis.call('LLEN', ek .. ':pending') + redis.call('LLEN', ek .. ':inflight')
if left > 0 then
  while redis.call('LMOVE', ek .. ':inflight', ek .. ':pending', 'RIGHT', 'LEFT') do end
  mint_job(ek, entity, queue, now_ms, expire_ms)
  return 'requeued'
end
redis.call('DEL', ek)
return 'idle'
"""
)

# Safety net run by the workers' housekeeping cron: an entity with work but no live arq job (its job was
# given up by arq, or expired) gets a fresh one. ARGV: entity, now_ms, queue, expire_ms.
HEAL_LUA = (
    LUA_SCHEDULE
    + """
local entity, now_ms, queue, expire_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ek = ENTITY .. entity
local job = redis.call('HGET', ek, 'job')
if job and redis.call('EXISTS', JOB_PREFIX .. job) == 1 then return 0 end
local left = redis.call('LLEN', ek .. ':pending') + redis.call('LLEN', ek .. ':inflight')
if left == 0 then redis.call('DEL', ek) return 0 end
while redis.call('LMOVE', ek .. ':inflight', ek .. ':pending', 'RIGHT', 'LEFT') do end
mint_job(ek, entity, queue, now_ms, expire_ms)
return 1
"""
)


# A handler failed and the job waits for its backoff (arq keeps it deferred): it is no longer running on its
# worker, so a takeover of that worker leaves it alone. ARGV: entity, job_id.
RETRYING_LUA = (
    LUA_SCHEDULE
    + """
local ek = ENTITY .. ARGV[1]
if redis.call('HGET', ek, 'job') ~= ARGV[2] then return 0 end
forget_worker(ek, ARGV[1])
redis.call('HSET', ek, 'state', 'retrying')
return 1
"""
)

# A remote the job needs is down: its events go back to pending (order kept), the attempt it was counted is
# given back, and a new job is minted deferred by `defer_ms` (a long safety net: the drain releases it as soon
# as the remote answers). Its arq key keeps the entity from getting another job meanwhile; the entity joins
# the remote's parked set (NX: it keeps its place in line).
# ARGV: entity, job_id, now_ms, queue, expire_ms, parked_key, score, remote, defer_ms.  Returns 1, or 0 (stale).
PARK_LUA = (
    LUA_SCHEDULE
    + """
local entity, job_id, now_ms, queue, expire_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local ek = ENTITY .. entity
if redis.call('HGET', ek, 'job') ~= job_id then return 0 end
forget_worker(ek, entity)
local attempts = math.max(0, tonumber(redis.call('HGET', ek, 'attempts') or '1') - 1)
while redis.call('LMOVE', ek .. ':inflight', ek .. ':pending', 'RIGHT', 'LEFT') do end
local job = mint_job(ek, entity, queue, now_ms, expire_ms)
redis.call('ZADD', queue, now_ms + tonumber(ARGV[9]), job)
redis.call('HSET', ek, 'state', 'parked', 'attempts', attempts, 'remote', ARGV[8])
redis.call('ZADD', ARGV[6], 'NX', ARGV[7], entity)
return 1
"""
)

# The remote is back: release parked entities (their deferred job becomes due now). An entity whose parked job
# vanished gets a new one, as heal does. ARGV: now_ms, queue, expire_ms, parked_key, entity...
# Returns {entity, job, ...} of those released.
UNPARK_LUA = (
    LUA_SCHEDULE
    + """
local now_ms, queue, expire_ms, parked = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV do
  local entity = ARGV[i]
  local ek = ENTITY .. entity
  redis.call('ZREM', parked, entity)
  if redis.call('HGET', ek, 'state') == 'parked' then
    local job = redis.call('HGET', ek, 'job')
    if job and redis.call('EXISTS', JOB_PREFIX .. job) == 1 then
      redis.call('ZADD', queue, now_ms, job)
      redis.call('HSET', ek, 'state', 'queued')
    elseif redis.call('LLEN', ek .. ':pending') + redis.call('LLEN', ek .. ':inflight') > 0 then
      job = mint_job(ek, entity, queue, now_ms, expire_ms)
    else
      redis.call('DEL', ek)
      job = nil
    end
    if job then
      out[#out + 1] = entity
      out[#out + 1] = job
    end
  end
end
return out
"""
)

# A worker stopped beating: every entity it was running gets a new job now, instead of when arq's lease on the
# old one ends (job timeout x 2 + 10 s). The old arq job is removed, so it never runs again; if its worker was
# only frozen, the fence (workers/fence.py) and the claim refuse whatever it still tries. The attempt the dead
# worker was counted stays counted. Atomic, so two workers taking over the same dead one share nothing.
# ARGV: worker_id, now_ms, queue, expire_ms.  Returns the entities taken over.
TAKEOVER_LUA = (
    LUA_SCHEDULE
    + """
local wid, now_ms, queue, expire_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local wk = WORKER .. wid .. ':jobs'
local items = redis.call('HGETALL', wk)
redis.call('DEL', wk)
local out = {}
for i = 1, #items, 2 do
  local entity, job = items[i], items[i + 1]
  local ek = ENTITY .. entity
  if redis.call('HGET', ek, 'job') == job and redis.call('HGET', ek, 'state') == 'running' then
    redis.call('DEL', JOB_PREFIX .. job, '%(in_progress)s' .. job, '%(retry)s' .. job)
    redis.call('ZREM', queue, job)
    local attempts = redis.call('HGET', ek, 'attempts')
    redis.call('HDEL', ek, 'worker')
    while redis.call('LMOVE', ek .. ':inflight', ek .. ':pending', 'RIGHT', 'LEFT') do end
    mint_job(ek, entity, queue, now_ms, expire_ms)
    redis.call('HSET', ek, 'attempts', attempts or 0)
    out[#out + 1] = entity
  end
end
return out
"""
    % {"in_progress": in_progress_key_prefix, "retry": retry_key_prefix}
)


# A job arq leased but nobody claimed: the worker died between taking it off the queue and CLAIM, so it is in no
# worker's `worker_jobs` and no takeover sees it; arq would hand it out again only when its lease runs out.
# If it is still the entity's job and still unclaimed (queued, or retrying after a backoff), a new job is minted
# and the leased one is dropped (if its worker was only slow, its claim now finds another job and stops).
# ARGV: entity, job_id, now_ms, queue, expire_ms.  Returns 1 when a new job was minted, else 0.
ORPHAN_LUA = (
    LUA_SCHEDULE
    + """
local entity, job, now_ms, queue, expire_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ek = ENTITY .. entity
local state = redis.call('HGET', ek, 'state')
if redis.call('HGET', ek, 'job') ~= job or (state ~= 'queued' and state ~= 'retrying') then return 0 end
redis.call('DEL', JOB_PREFIX .. job, '%(in_progress)s' .. job, '%(retry)s' .. job)
redis.call('ZREM', queue, job)
local attempts = redis.call('HGET', ek, 'attempts')
while redis.call('LMOVE', ek .. ':inflight', ek .. ':pending', 'RIGHT', 'LEFT') do end
mint_job(ek, entity, queue, now_ms, expire_ms)
redis.call('HSET', ek, 'attempts', attempts or 0)
return 1
"""
    % {"in_progress": in_progress_key_prefix, "retry": retry_key_prefix}
)


def accept_statuses(result: list[bytes | str]) -> list[str]:
    """The accept script's answer, in the batch's order: `queued`, `duplicate` or `refused` per event. Only
    `queued` events were written; a caller answers `refused` as a conflict, never as "retry later": a retry
    meets the same key."""
    return [r.decode() if isinstance(r, bytes) else r for r in result]


class EntityQueue:
    """Thin typed wrappers around the scripts; one instance per Redis client."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._accept = redis.register_script(ACCEPT_LUA)
        self._claim = redis.register_script(CLAIM_LUA)
        self._settle = redis.register_script(SETTLE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._heal = redis.register_script(HEAL_LUA)
        self._retrying = redis.register_script(RETRYING_LUA)
        self._park = redis.register_script(PARK_LUA)
        self._unpark = redis.register_script(UNPARK_LUA)
        self._takeover = redis.register_script(TAKEOVER_LUA)
        self._orphan = redis.register_script(ORPHAN_LUA)

    async def accept(
        self,
        events: Sequence[QueuedEvent],
        *,
        now_ms: int,
        record_ttl: int,
        recent_max: int,
        admin_job: str | None = None,
    ) -> list[str]:
        """One round trip for all; a status per event. record_ttl: `Settings.event_record_ttl_seconds` (the record
        is also the dedupe marker). admin_job: the job record that counts these events as they settle."""
        args = self.accept_args(events, now_ms=now_ms, record_ttl=record_ttl, recent_max=recent_max)
        if admin_job is not None:
            args.append(admin_job)
        return accept_statuses(await self._accept(args=args))

    def accept_args(
        self,
        events: Sequence[QueuedEvent],
        *,
        now_ms: int,
        record_ttl: int,
        recent_max: int,
    ) -> list[Any]:
        """ARGV of ACCEPT_LUA, for a caller that runs the script on its own connection (the ingest flusher)."""
        # orjson writes no tuple subclass by itself: `default=tuple` makes each row the plain JSON array the
        # script reads, the bytes a bare tuple gives (tests/test_queue_contract.py checks they are the same).
        batch = orjson.dumps(events, default=tuple)
        return [now_ms, record_ttl, recent_max, self.queue_name, JOB_EXPIRE_MS, batch]

    async def claim(self, entity: str, job_id: str, worker_id: str = "") -> tuple[int, list[str]] | None:
        result = await self._claim(args=[entity, job_id, worker_id])
        if int(result[0]) < 0:
            return None
        return int(result[0]), [r.decode() if isinstance(r, bytes) else r for r in result[1:]]

    async def settle(self, entity: str, job_id: str, refs: list[str]) -> int:
        if not refs:
            return -1
        return int(await self._settle(args=[entity, job_id, *refs]))

    async def release(self, entity: str, job_id: str, *, now_ms: int) -> str:
        result = await self._release(args=[entity, job_id, now_ms, self.queue_name, JOB_EXPIRE_MS])
        return result.decode() if isinstance(result, bytes) else result

    async def heal(self, *, now_ms: int, scan_count: int = 500) -> int:
        """Give every stranded entity a job again. Returns how many were healed."""
        healed = 0
        async for key in self.redis.scan_iter(match=keys.entity_pattern(), count=scan_count, _type="hash"):
            entity = key.decode().removeprefix(keys.entity(""))
            healed += int(await self._heal(args=[entity, now_ms, self.queue_name, JOB_EXPIRE_MS]))
        return healed

    async def retrying(self, entity: str, job_id: str) -> bool:
        return bool(await self._retrying(args=[entity, job_id]))

    async def park(
        self, entity: str, job_id: str, *, now_ms: int, parked_key: str, score: int, remote: str, defer_ms: int
    ) -> bool:
        """False when the job is no longer the entity's (it was taken over)."""
        args = [entity, job_id, now_ms, self.queue_name, JOB_EXPIRE_MS, parked_key, score, remote, defer_ms]
        return bool(await self._park(args=args))

    async def unpark(self, entities: list[str], *, now_ms: int, parked_key: str) -> dict[str, str]:
        """Release parked entities; returns entity -> the job that will run it."""
        if not entities:
            return {}
        result = await self._unpark(args=[now_ms, self.queue_name, JOB_EXPIRE_MS, parked_key, *entities])
        flat = [r.decode() if isinstance(r, bytes) else r for r in result]
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def leased_unclaimed(self) -> dict[str, str]:
        """job id -> entity of every entity job arq has leased while its entity still waits for a claim."""
        found: dict[str, str] = {}
        prefix = in_progress_key_prefix + keys.PREFIX
        async for raw in self.redis.scan_iter(match=f"{prefix}*", count=1000):
            job = (raw.decode() if isinstance(raw, bytes) else raw).removeprefix(in_progress_key_prefix)
            entity = keys.job_entity(job)
            if entity is None:
                continue
            ek = keys.entity(entity)
            current, state = await self.redis.hmget(ek, "job", "state")
            if current is not None and current.decode() == job and state in (b"queued", b"retrying"):
                found[job] = entity
        return found

    async def requeue_orphan(self, entity: str, job_id: str, *, now_ms: int) -> bool:
        """A new job for an entity whose leased job was never claimed (see ORPHAN_LUA)."""
        return bool(await self._orphan(args=[entity, job_id, now_ms, self.queue_name, JOB_EXPIRE_MS]))

    async def takeover(self, worker_id: str, *, now_ms: int) -> list[str]:
        """Give every entity the worker was running a new job; returns those entities."""
        result = await self._takeover(args=[worker_id, now_ms, self.queue_name, JOB_EXPIRE_MS])
        return [r.decode() if isinstance(r, bytes) else r for r in result]
