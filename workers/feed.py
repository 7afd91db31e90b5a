"""Feed changes found by a resync, a catch-up or a poll into the same per-entity queue webhooks use.

The change then runs through the same handlers, with the same coalescing and exactly-once bookkeeping, and
shows in the event log like a webhook. Its id names its origin and position (`{origin}:{n}`, e.g.
`job:<job id>:<n>`), so an admin job that is retried and feeds the same list again is de-duplicated like a
repeated webhook. The job that fed it is a field of its record (`eventlog.ADMIN_JOB_FIELD`), not a part of the
id: the dispatcher counts it on that job's record as it settles.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import structlog
from redis.asyncio import Redis

from crmcore import jobrecords, keys
from crmcore.clock import now_ms, utc_now_iso
from crmcore.entityqueue import ACCEPT_QUEUED, ACCEPT_REFUSED, EntityQueue, QueuedEvent
from crmcore.events import EventData, Source
from crmcore.jobrecords import FeedOrigin
from crmcore.settings import Settings
from workers.registry import Progress

log = structlog.get_logger(__name__)

# Changes per accept script call: one round trip each, and one progress update of the admin job feeding them.
CHUNK = 500

Change = tuple[Source, str, EventData]


class Feeder:
    """Feeds changes as they are found, CHUNK at a time: a resync streams a whole catalog through it without
    holding it. The changes are numbered across chunks from `start`, so their ids stay unique, and `progress`
    (an admin job's) gets the running total after every chunk. Used as `async with`, it sends the last chunk
    when the block ends without an error.

    origin: `jobrecords.feed_origin(job id)` for an admin job's changes, or an id prefix that no job counts."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        origin: FeedOrigin | str,
        *,
        progress: Progress | None = None,
        start: int = 0,
    ) -> None:
        self.origin = resolve_origin(origin)
        self.settings = settings
        self.progress = progress
        self.queue = EntityQueue(redis, settings.queue_name)
        self.fed = start
        self.queued = 0  # the rest of what was fed were duplicates of changes fed before, or refused
        self.refused = 0  # a key the change would write holds another type: nothing written (ACCEPT_REFUSED)
        self._pending: list[Change] = []

    async def add(self, source: Source, event_type: str, data: EventData) -> None:
        self._pending.append((source, event_type, data))
        if len(self._pending) >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            await self._accept()
        if self.progress is not None:
            await self.progress(total=self.fed)

    async def _accept(self) -> None:
        stamped = utc_now_iso()
        rows = [
            QueuedEvent(
                source=source.value,
                id=f"{self.origin.prefix}:{n}",
                type=str(event_type),
                entity=data.entity(source),
                timestamp=stamped,
                data=data.model_dump_json(),
            )
            for n, (source, event_type, data) in enumerate(self._pending, self.fed)
        ]
        statuses = await self.queue.accept(
            rows,
            now_ms=now_ms(),
            record_ttl=self.settings.event_record_ttl_seconds,
            recent_max=self.settings.event_log_recent_max,
            admin_job=self.origin.job_id,
        )
        self.queued += sum(s == ACCEPT_QUEUED for s in statuses)
        refused = [row for row, status in zip(rows, statuses, strict=True) if status == ACCEPT_REFUSED]
        if refused:
            await self._refused(refused)
        self.fed += len(rows)
        self._pending.clear()

    async def _refused(self, rows: list[QueuedEvent]) -> None:
        """Changes the queue refused never run and never settle: counted as failed on the job feeding them, so it
        still finishes (with failures to look at), and in the job outcomes every status shows. The feed goes on:
        one bad change must not stop a whole resync."""
        self.refused += len(rows)
        log.warning(
            "feed_change_refused",
            reason="a key the change would write holds another type",
            events=len(rows),
            event_ids=[row.id for row in rows[:10]],
        )
        async with self.queue.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.JOB_STATS, ACCEPT_REFUSED, len(rows))
            if self.origin.job_id is not None:
                for _ in rows:
                    jobrecords.count_settled(pipe, self.origin.job_id, ACCEPT_REFUSED)
            await pipe.execute()

    async def __aenter__(self) -> Feeder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.flush()


async def feed(
    redis: Redis,
    settings: Settings,
    origin: FeedOrigin | str,
    changes: Iterable[Change],
) -> int:
    """Feed a list of changes at once (a poll's order, a catch-up's record, a product's stock). Returns how many
    were queued (the rest were duplicates)."""
    feeder = Feeder(redis, settings, origin)
    for change in changes:
        await feeder.add(*change)
    await feeder.flush()
    return feeder.queued


def resolve_origin(origin: FeedOrigin | str) -> FeedOrigin:
    """The origin a caller gave: a FeedOrigin (an admin job's, which counts its changes) or a plain id prefix."""
    return origin if isinstance(origin, FeedOrigin) else FeedOrigin(origin)
