"""The event log: one Redis hash per accepted event, kept `event_record_ttl_seconds` (the hash is also the
event's dedupe marker), plus a trimmed index of recent refs. Written by the gateway's accept script and by the
workers as they handle each event."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from crmcore import keys
from crmcore.clock import iso_ms
from crmcore.errors import clip

STATUSES = ("queued", "processing", "parked", "done", "skipped", "failed", "dead")
# Record field: the job record (`keys.admin_job`) that counts the event once it settles. Only the feed writes
# it (an admin job's or a catch-up run's changes); the public record does not show it.
ADMIN_JOB_FIELD = "admin_job"
_ADMIN_JOB = ADMIN_JOB_FIELD.encode()


def _iso(ms: bytes | str | None) -> str | None:
    return iso_ms(int(ms)) if ms else None


def decode_record(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """Redis hash -> the public shape served at GET /admin/events/{id}."""
    h = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        "id": h["id"],
        "source": h["source"],
        "type": h["type"],
        "entity": h["entity"],
        "timestamp": h.get("timestamp"),
        "received_at": _iso(h.get("received_ms")),
        # The accept script leaves out what it can: a record no worker has touched yet is queued, at 0 attempts,
        # last updated when it was received.
        "updated_at": _iso(h.get("updated_ms") or h.get("received_ms")),
        "status": h.get("status", "queued"),
        "attempts": int(h.get("attempts") or 0),
        "last_error": h.get("last_error") or None,
        "data": orjson.loads(h["data"]) if h.get("data") else {},
    }


def admin_job_of(raw: dict[bytes, bytes]) -> str | None:
    """The job record counting this event (a raw record, as HGETALL gives it), if any."""
    job = raw.get(_ADMIN_JOB)
    return job.decode() if job else None


async def get_event(redis: Redis, ref: str) -> dict[str, Any] | None:
    raw = await redis.hgetall(keys.event(ref))
    return decode_record(raw) if raw else None


async def recent_events(redis: Redis, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    refs = await redis.zrevrange(keys.RECENT_EVENTS, 0, max(limit * (4 if status else 1), limit) - 1)
    async with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.hgetall(keys.event(ref.decode()))
        raws = await pipe.execute()
    records = [decode_record(r) for r in raws if r]
    if status:
        records = [r for r in records if r["status"] == status]
    return records[:limit]


def set_status(
    pipe: Pipeline,
    ref: str,
    status: str,
    *,
    now_ms: int,
    attempts: int | None = None,
    error: str | None = None,
) -> None:
    """Queue a status change on a pipeline. Only updates a record that still exists (HSET would
    otherwise resurrect an expired event as a husk without TTL)."""
    fields: dict[str, Any] = {"status": status, "updated_ms": now_ms}
    if attempts is not None:
        fields["attempts"] = attempts
    if error is not None:
        fields["last_error"] = clip(error)
    pipe.eval(_HSET_IF_EXISTS, 1, keys.event(ref), *[x for kv in fields.items() for x in kv])


_HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 0
"""
