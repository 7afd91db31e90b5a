"""Answering "what happened to X" from Redis alone: which entities X names, and each one's timeline.

X is what an operator knows: a SKU, an order number or an email (an alias the workers learnt,
crmcore/timeline.py), an event's webhook id (with or without its `source:`), or an entity name as the event
log shows it. Entries come from the entity's timeline list, plus a "received" entry per event whose record is
still kept (the accept path writes nothing for the timeline).
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import eventlog, keys, timeline
from crmcore.events import CATALOGUE, Source

MAX_MATCHES = 20
# Sorting newest first, an event's "received" goes below anything written at the same millisecond.
_RECEIVED_RANK = -(10**9)


async def lookup(redis: Redis, q: str) -> list[dict[str, Any]]:
    """Every entity `q` names, each with its aliases and its timeline, newest first; [] when none."""
    found = list((await matching_entities(redis, q)).items())[:MAX_MATCHES]
    return [await entity_trace(redis, name, refs) for name, refs in found]


async def matching_entities(redis: Redis, q: str) -> dict[str, list[str]]:
    """Entity name -> the refs of the events `q` named directly (their arrival shows even when the entity's
    timeline has nothing about them: written before the timeline existed, or trimmed)."""
    q = q.strip()
    found: dict[str, list[str]] = {}
    if (key := timeline.alias_key(q)) is not None:
        for member in await redis.zrevrange(key, 0, timeline.MAX_ALIASES - 1):
            found.setdefault(member.decode(), [])
    for ref in _event_refs(q):
        record = await eventlog.get_event(redis, ref)
        if record is not None:
            found.setdefault(record["entity"], []).append(ref)
    if _is_entity_name(q) and await _known(redis, q):
        found.setdefault(q, [])
    return found


def _event_refs(q: str) -> list[str]:
    """The event refs `q` may be: a webhook id of either source, or a ref `{source}:{id}` as typed."""
    refs = [f"{s.value}:{q}" for s in Source]
    source, _, rest = q.partition(":")
    if rest and source in {s.value for s in Source}:
        refs.append(q)
    return refs


def _is_entity_name(q: str) -> bool:
    try:
        parts = keys.entity_parts(q)
    except ValueError:  # no kind, or an id that is not valid percent-encoding
        return False
    kinds = {model.KIND for by_type in CATALOGUE.values() for model in by_type.values()}
    return parts.source in {s.value for s in Source} and parts.kind in kinds and bool(parts.ids)


async def _known(redis: Redis, name: str) -> bool:
    return bool(await redis.exists(keys.timeline(name), keys.entity(name), keys.pending(name)))


async def entity_trace(redis: Redis, name: str, refs_named: list[str] | None = None) -> dict[str, Any]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(keys.timeline(name), 0, -1)
        pipe.zrevrange(keys.timeline_aliases(name), 0, -1)
        pipe.lrange(keys.pending(name), 0, -1)
        pipe.lrange(keys.inflight(name), 0, -1)
        stored, aliases, pending, inflight = await pipe.execute()
    entries = [orjson.loads(raw) for raw in stored]
    # Refs of queued events too (pending, in flight): received, with nothing done about them yet.
    queued = [r.decode() for r in (*pending, *inflight)]
    refs = dict.fromkeys([e["event"] for e in entries] + queued + (refs_named or []))
    received = [e for ref in refs if (e := await _received(redis, ref)) is not None]
    ranked = [(e["at"], -i, e) for i, e in enumerate(entries)] + [(e["at"], _RECEIVED_RANK, e) for e in received]
    ranked.sort(key=lambda t: (t[0], t[1]), reverse=True)
    parts = keys.entity_parts(name)
    return {
        "entity": name,
        "source": parts.source,
        "kind": parts.kind,
        "aliases": [a.decode() for a in aliases],
        "timeline": [e for _, _, e in ranked],
    }


async def _received(redis: Redis, ref: str) -> dict[str, Any] | None:
    record = await eventlog.get_event(redis, ref)
    if record is None or record["received_at"] is None:
        return None
    return {
        "at": record["received_at"],
        "what": "received",
        "event": ref,
        "type": record["type"],
        "job": None,
        "attempt": None,
        "error": None,
        "reason": None,
        "detail": None,
    }
