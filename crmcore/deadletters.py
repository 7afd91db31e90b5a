"""Dead letters: events a worker gave up on, with the reason, kept until an operator replays them.

A dead letter carries a copy of its events' records, so a replay works even after the event log
expired them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints
from redis.asyncio import Redis

from crmcore import keys
from crmcore.clock import iso_ms, now_ms
from crmcore.entityqueue import JOB_EXPIRE_MS, LUA_SCHEDULE, EntityQueue
from crmcore.errors import clip
from crmcore.eventlog import decode_record

MAX_BULK_REPLAY = 10_000
# Dead letters read per round trip while matching: their type and reason only, never the event snapshots.
MATCH_PAGE = 500
# Replay scripts sent per round trip; each one is its own atomic step, so Redis serves others in between.
REPLAY_CHUNK = 100
BULK_IDS_SHOWN = 100

# Replay one dead letter as a single atomic step: recreate the event records the log may have expired, mark
# them queued, schedule their entity and delete the dead letter. Atomic so that two replays of one dead letter
# at once (the dashboard's button and a bulk replay, two operators) queue its events once: the loser finds no
# hash. And nothing is lost if the gateway dies half-way, which a claim-then-requeue in two calls would risk.
# ARGV: dl_id, now_ms, queue, expire_ms, event_ttl.  Returns the dead letter's hash (flat) or nil.
REPLAY_LUA = (
    LUA_SCHEDULE
    + """
local dl_id, now_ms, queue, expire_ms, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local dk = '%(deadletter)s' .. dl_id
local raw = redis.call('HGETALL', dk)
-- Before the check: an index entry whose hash is gone would otherwise be matched again by every bulk replay.
redis.call('ZREM', '%(deadletters)s', dl_id)
if #raw == 0 then return false end
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
for _, ev in ipairs(cjson.decode(h['events'] or '[]')) do
  local ref = ev['source'] .. ':' .. ev['id']
  local ek = EVENT .. ref
  for k, v in pairs(ev) do redis.call('HSET', ek, k, v) end
  redis.call('EXPIRE', ek, ttl)
  redis.call('HSET', ek, 'status', 'queued', 'updated_ms', now_ms, 'last_error', '')
  schedule(h['entity'], ref, queue, now_ms, expire_ms)
end
redis.call('DEL', dk)
return raw
"""
    % keys.LUA
)


async def create(
    redis: Redis,
    *,
    entity: str,
    event_type: str,
    records: list[dict[bytes, bytes]],
    reason: str,
    attempts: int,
    job_id: str,
) -> str:
    dl_id = secrets.token_hex(8)
    failed_ms = now_ms()
    snapshot = [{k.decode(): v.decode() for k, v in r.items()} for r in records]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.deadletter(dl_id),
            mapping={
                "id": dl_id,
                "entity": entity,
                "type": event_type,
                "reason": clip(reason),
                "attempts": attempts,
                "job_id": job_id,
                "failed_ms": failed_ms,
                "events": orjson.dumps(snapshot),
            },
        )
        pipe.zadd(keys.DEADLETTERS, {dl_id: failed_ms})
        await pipe.execute()
    return dl_id


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    h = {k.decode(): v.decode() for k, v in raw.items()}
    events = orjson.loads(h.get("events") or "[]")
    record = decode_record({k.encode(): v.encode() for k, v in events[0].items()}) if events else None
    failed = int(h["failed_ms"])
    return {
        "id": h["id"],
        "entity": h["entity"],
        "type": h["type"],
        "reason": h["reason"],
        "attempts": int(h["attempts"]),
        "job_id": h.get("job_id"),
        "failed_at": iso_ms(failed),
        "event_ids": [e["id"] for e in events],
        "source": record["source"] if record else None,
    }


async def list_deadletters(redis: Redis, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    total = await redis.zcard(keys.DEADLETTERS)
    ids = await redis.zrevrange(keys.DEADLETTERS, offset, offset + limit - 1)
    async with redis.pipeline(transaction=False) as pipe:
        for dl_id in ids:
            pipe.hgetall(keys.deadletter(dl_id.decode()))
        raws = await pipe.execute()
    return total, [_decode(r) for r in raws if r]


async def get_deadletter(redis: Redis, dl_id: str) -> dict[str, Any] | None:
    raw = await redis.hgetall(keys.deadletter(dl_id))
    return _decode(raw) if raw else None


async def replay(redis: Redis, queue: EntityQueue, dl_id: str, event_ttl: int) -> dict[str, Any] | None:
    """Put the dead letter's events back on their entity's queue. None when there is no such id."""
    replayed = await replay_ids(redis, queue, [dl_id], event_ttl)
    return replayed[0] if replayed else None


async def replay_ids(redis: Redis, queue: EntityQueue, ids: list[str], event_ttl: int) -> list[dict[str, Any]]:
    """Replay each id (in this order); the dead letters that existed, as `get_deadletter` shows them. An id
    that is gone (replayed already, by this call or another) is left out."""
    script = redis.register_script(REPLAY_LUA)
    replayed: list[dict[str, Any]] = []
    for start in range(0, len(ids), REPLAY_CHUNK):
        now = now_ms()
        async with redis.pipeline(transaction=False) as pipe:
            for dl_id in ids[start : start + REPLAY_CHUNK]:
                await script(args=[dl_id, now, queue.queue_name, JOB_EXPIRE_MS, event_ttl], client=pipe)
            results = await pipe.execute()
        replayed.extend(_decode(dict(zip(r[::2], r[1::2], strict=True))) for r in results if r)
    return replayed


Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"\S")]
# Any string, not only the catalogue's types: a filter for a type no dead letter has matches nothing.
TypeFilter = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class ReplayFilter(BaseModel):
    """Which dead letters a bulk replay takes: `all`, or `reason` and/or `type` (both must match)."""

    model_config = ConfigDict(extra="forbid")

    all: StrictBool = False
    reason: Reason | None = None
    type: TypeFilter | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_BULK_REPLAY, strict=True)] = MAX_BULK_REPLAY

    def usage_error(self) -> dict[str, str] | None:
        """The rule no single field can check: exactly one of `all: true` or a narrowing filter. An empty body
        must not mean "everything": replaying every dead letter is asked for explicitly."""
        narrowed = self.reason is not None or self.type is not None
        if self.all and narrowed:
            return {"field": "all", "reason": "all: true replays everything; leave out reason and type"}
        if not self.all and not narrowed:
            return {"field": "all", "reason": "required: all: true, or reason and/or type"}
        return None

    def matches(self, reason: str, event_type: str) -> bool:
        if self.reason is not None and self.reason.casefold() not in reason.casefold():
            return False
        return self.type is None or self.type == event_type


async def matching_ids(redis: Redis, wanted: ReplayFilter) -> list[str]:
    """Ids of the dead letters `wanted` takes, oldest first (the order they failed in, so an entity's events
    go back on its queue in their order), at most `wanted.limit`."""
    found: list[str] = []
    # Score cursor rather than rank offsets: a concurrent replay removes members, which would shift ranks and
    # skip some. Members sharing the cursor's score (same millisecond) and already seen are skipped by count.
    low: float | None = None
    seen_at_low = 0
    while len(found) < wanted.limit:
        page: list[tuple[bytes, float]] = await redis.zrangebyscore(
            keys.DEADLETTERS, "-inf" if low is None else low, "+inf", start=seen_at_low, num=MATCH_PAGE, withscores=True
        )
        if not page:
            break
        ids = [member.decode() for member, _ in page]
        if wanted.all:
            found.extend(ids)
        else:
            async with redis.pipeline(transaction=False) as pipe:
                for dl_id in ids:
                    pipe.hmget(keys.deadletter(dl_id), "reason", "type")
                fields = await pipe.execute()
            found.extend(
                dl_id
                for dl_id, (reason, event_type) in zip(ids, fields, strict=True)
                if reason is not None and wanted.matches(reason.decode(), (event_type or b"").decode())
            )
        last = page[-1][1]
        tied = sum(1 for _, score in page if score == last)
        seen_at_low = seen_at_low + tied if last == low else tied
        low = last
    return found[: wanted.limit]


@dataclass
class BulkReplay:
    matched: int
    replayed: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "replayed": len(self.replayed),
            "events": sum(len(dl["event_ids"]) for dl in self.replayed),
            "ids": [dl["id"] for dl in self.replayed[:BULK_IDS_SHOWN]],
            "matched": self.matched,
        }


async def replay_matching(redis: Redis, queue: EntityQueue, wanted: ReplayFilter, event_ttl: int) -> BulkReplay:
    """Replay every dead letter `wanted` takes. `matched` may exceed what was replayed when another replay
    took some of them in between."""
    ids = await matching_ids(redis, wanted)
    return BulkReplay(matched=len(ids), replayed=await replay_ids(redis, queue, ids, event_ttl))
