"""Feed changes found by a resync, a catch-up or a poll into the same per-entity queue webhooks use.

The change then runs through the same handlers, with the same coalescing and exactly-once bookkeeping, and
shows in the event log like a webhook. Its id names its origin and position (`job:<job id>:<n>`), so an
admin job that is retried and feeds the same list again is de-duplicated like a repeated webhook.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

from redis.asyncio import Redis

from crmcore.entityqueue import ACCEPT_QUEUED, EntityQueue, QueuedEvent
from crmcore.events import EventData, Source
from crmcore.settings import Settings


async def feed(
    redis: Redis,
    settings: Settings,
    origin: str,
    changes: Iterable[tuple[Source, str, EventData]],
    *,
    start: int = 0,
    batch: int = 500,
) -> int:
    """changes: (source, event type, data), numbered from `start` (a caller feeding in chunks passes the count
    fed so far, so ids stay unique). Returns how many were queued (the rest were duplicates)."""
    queue = EntityQueue(redis, settings.queue_name)
    now = datetime.now(UTC).isoformat()
    queued = 0
    rows: list[QueuedEvent] = []

    async def flush() -> None:
        nonlocal queued
        statuses = await queue.accept(
            rows,
            now_ms=int(time.time() * 1000),
            record_ttl=settings.event_record_ttl_seconds,
            recent_max=settings.event_log_recent_max,
        )
        queued += sum(s == ACCEPT_QUEUED for s in statuses)
        rows.clear()

    for n, (source, event_type, data) in enumerate(changes, start):
        row = QueuedEvent(
            source=source.value,
            id=f"{origin}:{n}",
            type=str(event_type),
            entity=data.entity(source),
            timestamp=now,
            data=data.model_dump_json(),
        )
        rows.append(row)
        if len(rows) >= batch:
            await flush()
    if rows:
        await flush()
    return queued
