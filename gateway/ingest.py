"""Group commit of accepted webhooks: the requests that arrive together share one Redis round trip.

A request hands its validated event to `Ingestor.submit` and waits. One flusher task takes everything
waiting (up to `ingest_batch_max`), runs the accept script once, and answers every waiter. While that
round trip is out, new requests pile up for the next one, so batching adds no timer delay: under light
load a batch holds one event, under heavy load `ingest_batch_max`. The sender is answered only after
Redis applied the script, so an acknowledged event is always queued; on any Redis error nobody is
acknowledged.

The deadline (`ingest_timeout_seconds`) is kept per batch by the flusher, not per request: one timer per
round trip instead of one per webhook, which was a measurable share of the gateway's CPU. A waiter is
answered within two deadlines at most (the batch ahead of it, then its own).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from crmcore.clock import now_ms
from crmcore.entityqueue import ACCEPT_LUA, EntityQueue, QueuedEvent, accept_statuses
from crmcore.settings import Settings
from gateway.scriptconn import ScriptConnection

log = structlog.get_logger(__name__)


class QueueUnavailable(Exception):
    """Redis cannot take the event now. Nothing was acknowledged; the sender should retry."""


@dataclass(slots=True)
class _Pending:
    row: QueuedEvent
    future: asyncio.Future[str]


class Ingestor:
    def __init__(self, queue: EntityQueue, settings: Settings) -> None:
        self._queue = queue
        self._settings = settings
        self._waiting: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        # More than one flusher keeps a second batch travelling while Redis runs the first one's script, so
        # the event loop is not left idle waiting for Redis.
        self._tasks = [
            asyncio.create_task(self._flush_forever(), name=f"ingest-flusher-{i}")
            for i in range(self._settings.ingest_flushers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._fail_all(QueueUnavailable("the gateway is shutting down"))

    def submit(self, row: QueuedEvent) -> asyncio.Future[str]:
        """Returns a future of 'queued', 'duplicate' or 'refused' (the accept script's per-event statuses) that fails
        with QueueUnavailable; raises QueueUnavailable when the event cannot even wait. A plain function, not a
        coroutine: one frame less to resume per webhook.
        """
        if len(self._waiting) >= self._settings.ingest_pending_max:
            raise QueueUnavailable("too many webhooks are waiting for the queue")
        if not self._tasks or any(t.done() for t in self._tasks):
            raise QueueUnavailable("the queue writer is not running")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # A request whose handler is cancelled cancels this future with it (so it is never answered, and no
        # unretrieved error is logged), but its event stays in the batch: if Redis applies it, the sender's
        # retry gets "duplicate", which is still exactly one queued event.
        self._waiting.append(_Pending(row, future))
        self._wakeup.set()
        return future

    async def _flush_forever(self) -> None:
        conn = ScriptConnection(self._queue.redis, ACCEPT_LUA)
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._waiting:
                    batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_batch))]
                    await self._flush(conn, batch)
        finally:
            await conn.close()

    @property
    def _max_batch(self) -> int:
        return self._settings.ingest_batch_max

    async def _flush(self, conn: ScriptConnection, batch: list[_Pending]) -> None:
        s = self._settings
        args = self._queue.accept_args(
            [p.row for p in batch],
            now_ms=now_ms(),
            record_ttl=s.event_record_ttl_seconds,
            recent_max=s.event_log_recent_max,
        )
        try:
            async with asyncio.timeout(s.ingest_timeout_seconds):
                statuses = accept_statuses(await conn.call(*args))
        except TimeoutError:
            # Redis may still apply the script; a sender's retry then gets "duplicate", never a second event.
            log.warning("queue_write_timed_out", events=len(batch), seconds=s.ingest_timeout_seconds)
            self._fail(batch, QueueUnavailable("the queue did not answer in time"))
            return
        except (RedisError, OSError) as exc:
            log.warning("queue_write_failed", error=type(exc).__name__, events=len(batch))
            self._fail(batch, QueueUnavailable("the queue is unavailable"))
            return
        except Exception:
            # Never let the flusher die: every later webhook would get 503 until a restart.
            log.exception("queue_write_crashed", events=len(batch))
            self._fail(batch, QueueUnavailable("the queue writer failed"))
            return
        for p, status in zip(batch, statuses, strict=True):
            if not p.future.done():
                p.future.set_result(status)

    @staticmethod
    def _fail(batch: list[_Pending], exc: Exception) -> None:
        for p in batch:
            if not p.future.done():
                p.future.set_exception(exc)

    def _fail_all(self, exc: Exception) -> None:
        while self._waiting:
            p = self._waiting.popleft()
            if not p.future.done():
                p.future.set_exception(exc)
