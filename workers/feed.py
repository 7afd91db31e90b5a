"""Feed changes found by a resync, a catch-up or a poll into the same per-entity queue webhooks use.

The change then runs through the same handlers, with the same coalescing and exactly-once bookkeeping, and
shows in the event log like a webhook. Its id names its origin and position (`{origin}:{n}`, e.g.
`job:<job id>:<n>`), so an admin job that is retried and feeds the same list again is de-duplicated like a
repeated webhook. The job that fed it is a field of its record (`eventlog.ADMIN_JOB_FIELD`), not a part of the
id: the dispatcher counts it on that job's record as it settles.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

from redis.asyncio import Redis

from crmcore.entityqueue import ACCEPT_QUEUED, EntityQueue, QueuedEvent
from crmcore.events import EventData, Source
from crmcore.jobrecords import FeedOrigin
from crmcore.settings import Settings


async def feed(
    redis: Redis,
    settings: Settings,
    origin: FeedOrigin | str,
    changes: Iterable[tuple[Source, str, EventData]],
    *,
    start: int = 0,
    batch: int = 500,
) -> int:
    """changes: (source, event type, data), numbered from `start` (a caller feeding in chunks passes the count
    fed so far, so ids stay unique). origin: `jobrecords.feed_origin(job id)` for an admin job's changes, or an
    id prefix that no job counts. Returns how many were queued (the rest were duplicates)."""
    fed_from = _origin(origin)
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
            admin_job=fed_from.job_id,
        )
        queued += sum(s == ACCEPT_QUEUED for s in statuses)
        rows.clear()

    for n, (source, event_type, data) in enumerate(changes, start):
        row = QueuedEvent(
            source=source.value,
            id=f"{fed_from.prefix}:{n}",
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


# Until workers/sync/catchup/run.py feeds `origin.within(f"{stream}:{key}")`: it formats its origin into a plain
# string, which loses the job, so a string in the form `feed_origin` gives still names it. Delete with that change.
_LEGACY_JOB_PREFIX = "job:"


def _origin(origin: FeedOrigin | str) -> FeedOrigin:
    if isinstance(origin, FeedOrigin):
        return origin
    if origin.startswith(_LEGACY_JOB_PREFIX):
        return FeedOrigin(origin, origin.removeprefix(_LEGACY_JOB_PREFIX).partition(":")[0])
    return FeedOrigin(origin)
