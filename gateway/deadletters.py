"""Dead letters: events a worker gave up on, with the reason, kept until an operator replays them.

A dead letter carries a copy of its events' records, so a replay works even after the event log
expired them."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.entityqueue import DEADLETTERS, EntityQueue, deadletter_key, event_key
from gateway.eventlog import decode_record


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
    now_ms = int(time.time() * 1000)
    snapshot = [{k.decode(): v.decode() for k, v in r.items()} for r in records]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            deadletter_key(dl_id),
            mapping={
                "id": dl_id,
                "entity": entity,
                "type": event_type,
                "reason": reason[:1000],
                "attempts": attempts,
                "job_id": job_id,
                "failed_ms": now_ms,
                "events": orjson.dumps(snapshot),
            },
        )
        pipe.zadd(DEADLETTERS, {dl_id: now_ms})
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
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(failed / 1000)) + f".{failed % 1000:03d}Z",
        "event_ids": [e["id"] for e in events],
        "source": record["source"] if record else None,
    }


async def list_deadletters(redis: Redis, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    total = await redis.zcard(DEADLETTERS)
    ids = await redis.zrevrange(DEADLETTERS, offset, offset + limit - 1)
    async with redis.pipeline(transaction=False) as pipe:
        for dl_id in ids:
            pipe.hgetall(deadletter_key(dl_id.decode()))
        raws = await pipe.execute()
    return total, [_decode(r) for r in raws if r]


async def get_deadletter(redis: Redis, dl_id: str) -> dict[str, Any] | None:
    raw = await redis.hgetall(deadletter_key(dl_id))
    return _decode(raw) if raw else None


async def replay(redis: Redis, queue: EntityQueue, dl_id: str, event_ttl: int) -> dict[str, Any] | None:
    """Put the dead letter's events back on their entity's queue. None when there is no such id."""
    raw = await redis.hgetall(deadletter_key(dl_id))
    if not raw:
        return None
    dl = _decode(raw)
    events = orjson.loads(raw[b"events"])
    async with redis.pipeline(transaction=False) as pipe:
        for ev in events:
            ref = f"{ev['source']}:{ev['id']}"
            # Recreate a record the event log has expired, so the worker can read it again.
            pipe.hset(event_key(ref), mapping=ev)
            pipe.expire(event_key(ref), event_ttl)
        await pipe.execute()
    await queue.requeue([(dl["entity"], f"{ev['source']}:{ev['id']}") for ev in events], now_ms=int(time.time() * 1000))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(deadletter_key(dl_id))
        pipe.zrem(DEADLETTERS, dl_id)
        await pipe.execute()
    return dl
