"""What the gateway remembers about each order it saw: `keys.order_marker(increment_id)`, a hash with `state`
(importing -> imported, or failed), the sale id (the sale ids, comma-separated, of an order booked at several
locations, and `parts`: location id -> sale id as JSON), the Magento entity id and when.

The marker is a cache, never the authority: Cloud Retailer's sale with `external_ref` = `magento:{increment_id}`
is (one per location that shipped, `magento:{increment_id}:{location_id}`, when the order was split). An
import checks Cloud Retailer before creating (a crash between "sale created" and "imported written"
leaves `importing` behind, or nothing at all if Redis lost it), and Cloud Retailer refuses a second sale with
the same external_ref (409) as the last guard. Markers expire after MARKER_TTL_S so they do not grow
forever; an order older than that is still recognised, through that lookup.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import keys

MARKER_TTL_S = 90 * 86_400

IMPORTING = "importing"
IMPORTED = "imported"
FAILED = "failed"


def marker_key(increment_id: str) -> str:
    return keys.order_marker(increment_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Marker:
    state: str
    sale_id: str | None = None
    entity_id: int | None = None
    reason: str | None = None
    at_ms: int | None = None
    parts: dict[str, str] = field(default_factory=dict)  # location id -> sale id

    @classmethod
    def decode(cls, raw: dict[Any, Any]) -> Marker | None:
        if not raw:
            return None
        h = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            state=h.get("state", ""),
            sale_id=h.get("sale_id") or None,
            entity_id=int(h["entity_id"]) if h.get("entity_id") else None,
            reason=h.get("reason") or None,
            at_ms=int(h["at_ms"]) if h.get("at_ms") else None,
            parts=orjson.loads(h["parts"]) if h.get("parts") else {},
        )


async def get(redis: Redis, increment_id: str) -> Marker | None:
    return Marker.decode(await redis.hgetall(marker_key(increment_id)))


async def states(redis: Redis, increment_ids: list[str]) -> dict[str, str | None]:
    """increment id -> state (None when unknown), in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for increment_id in increment_ids:
            pipe.hget(marker_key(increment_id), "state")
        found = await pipe.execute()
    return {i: (_text(s) if s is not None else None) for i, s in zip(increment_ids, found, strict=True)}


async def _write(redis: Redis, increment_id: str, fields: dict[str, str | int], drop: tuple[str, ...] = ()) -> None:
    key = marker_key(increment_id)
    async with redis.pipeline(transaction=True) as pipe:
        if drop:
            pipe.hdel(key, *drop)
        pipe.hset(key, mapping={**fields, "at_ms": int(time.time() * 1000)})
        pipe.expire(key, MARKER_TTL_S)
        await pipe.execute()


async def importing(redis: Redis, increment_id: str, entity_id: int, job_id: str) -> None:
    await _write(redis, increment_id, {"state": IMPORTING, "entity_id": entity_id, "job_id": job_id}, ("reason",))


async def imported(
    redis: Redis, increment_id: str, entity_id: int, sale_id: str, parts: Mapping[str, str] | None = None
) -> None:
    """Written once every part's sale exists: `sale_id` names them all (comma-separated), `parts` is location
    id -> sale id, in booking order."""
    fields: dict[str, str | int] = {"state": IMPORTED, "entity_id": entity_id, "sale_id": sale_id}
    if parts:
        fields["parts"] = orjson.dumps(dict(parts)).decode()
    await _write(redis, increment_id, fields, ("reason",))


async def failed(redis: Redis, increment_id: str, entity_id: int, reason: str) -> None:
    """The order is in the dead letters: the poller leaves it to the operator's replay (or a resync)."""
    await _write(redis, increment_id, {"state": FAILED, "entity_id": entity_id, "reason": reason[:500]})
