"""What happened to an entity: a short history per entity, and the aliases an operator may know it by.

The workers write (workers/dispatch.py, where each event's status changes; the sync handlers, `remember`, when
they learn a SKU, an order number or an email from the source system); the gateway reads (gateway/trace.py).
Everything lives in Redis, trimmed and expiring with the event log, so answering "what happened to X" never
calls Magento or Cloud Retailer.

An entry is JSON: `at` (ISO ms), `what` (received, processing, done, skipped, retrying, dead, parked), the
`event` ref and its `type`, the `job` and `attempt`, an `error` or a `reason`, and `detail`: what the job
wrote, where known. "received" is not stored: it is read from the event record itself, so the gateway's accept
path writes nothing more.
"""

from __future__ import annotations

import contextvars
from asyncio import Task, current_task
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from crmcore import keys
from crmcore.clock import iso_ms, now_ms
from crmcore.errors import clip
from crmcore.settings import Settings

MAX_ENTRIES = 50  # per entity: enough for a busy product's last days, small enough to read whole
MAX_ALIASES = 20  # entities per alias, and aliases per entity (an email can name a customer on each side)
MAX_ALIAS_CHARS = 256
MAX_WRITES = 5  # writes listed in one entry's detail; more are counted
DEFAULT_TTL_S = 7 * 86400  # the event log's default (Settings.event_record_ttl_seconds)

# Event log status -> what the timeline says: a failed try is retried, which is what an operator needs to know.
WHAT = {"failed": "retrying"}
# Which statuses carry an error and which a reason (skipped and parked are not failures).
_REASONED = frozenset({"skipped", "parked"})


class _EventLike(Protocol):
    @property
    def entity(self) -> str: ...

    @property
    def type(self) -> str: ...


class Noted(Protocol):
    """What the dispatcher hands over per event (its `Claimed`)."""

    @property
    def ref(self) -> str: ...

    @property
    def event(self) -> _EventLike: ...


# --- what a job wrote -------------------------------------------------------------------------------------------
@dataclass
class _Writes:
    # Only calls made by the job's own task count: a shared background task (a stock batcher) started inside
    # some job carries that job's context, and would otherwise pin its writes on it for good.
    task: Task[Any] | None
    calls: list[str] = field(default_factory=list)


_WRITES: contextvars.ContextVar[_Writes | None] = contextvars.ContextVar("timeline_writes", default=None)


def wrote(remote: str, method: str, path: str) -> None:
    """Called by the API clients after a successful write, so the job's next entry can say what it wrote."""
    writes = _WRITES.get()
    if writes is not None and method != "GET" and writes.task is current_task():
        writes.calls.append(f"{remote} {method} {path}")


def _take_writes() -> str | None:
    writes = _WRITES.get()
    if writes is None or not writes.calls:
        return None
    calls, extra = writes.calls[:MAX_WRITES], len(writes.calls) - MAX_WRITES
    writes.calls.clear()
    return clip("; ".join(calls) + (f"; and {extra} more" if extra > 0 else ""))


# --- writing ----------------------------------------------------------------------------------------------------
def note(
    pipe: Pipeline,
    items: Iterable[Noted],
    status: str,
    settings: Settings,
    *,
    attempt: int | None = None,
    error: str | None = None,
    job: str | None = None,
) -> None:
    """Queue one entry per event on the pipeline that writes their new status. "processing" starts the job's
    record of writes; a settled status takes it."""
    if status == "processing":
        _WRITES.set(_Writes(current_task()))
        detail = None
    else:
        detail = _take_writes()
    # The dispatcher binds the job id for its log lines; the settle point has no other handle on it.
    job = job or structlog.contextvars.get_contextvars().get("job_id")
    text = clip(error) if error else None
    for item in items:
        entry = {
            "at": iso_ms(now_ms()),
            "what": WHAT.get(status, status),
            "event": item.ref,
            "type": item.event.type,
            "job": job,
            "attempt": attempt,
            "error": None if status in _REASONED else text,
            "reason": text if status in _REASONED else None,
            "detail": detail,
        }
        key = keys.timeline(item.event.entity)
        pipe.lpush(key, orjson.dumps(entry))
        pipe.ltrim(key, 0, MAX_ENTRIES - 1)
        pipe.expire(key, settings.event_record_ttl_seconds)


def alias_key(alias: str) -> str | None:
    """The key of an alias as typed (case and surrounding blanks do not matter); None for one too long."""
    value = alias.strip().lower()
    return keys.alias(value) if value and len(value) <= MAX_ALIAS_CHARS else None


async def remember(redis: Redis, alias: str, entity: str, *, ttl_s: int = DEFAULT_TTL_S) -> None:
    """Record that `alias` (a SKU, an order number, an email) names `entity`, both ways, bounded and expiring."""
    key = alias_key(alias)
    if key is None:
        return
    now, back = now_ms(), keys.timeline_aliases(entity)
    async with redis.pipeline(transaction=False) as pipe:
        for k, member in ((key, entity), (back, alias.strip())):
            pipe.zadd(k, {member: now})
            pipe.zremrangebyrank(k, 0, -MAX_ALIASES - 1)
            pipe.expire(k, ttl_s)
        await pipe.execute()
