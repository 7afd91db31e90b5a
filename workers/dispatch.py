"""The one job every event goes through: `process_entity(entity)`.

It claims the entity's waiting events, runs the handler of each event type once, records every event's
outcome in the event log, and then either releases the entity (a change that arrived meanwhile gets
exactly one new job) or asks arq to retry after a backoff. Handlers are idempotent (they fetch current
state), so a try that crashed halfway is simply run again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from arq import Retry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import deadletters, eventlog, jobrecords
from gateway.entityqueue import JOB_STATS, EntityQueue, event_key
from gateway.events import AcceptedEvent, Source
from gateway.settings import Settings
from workers.backoff import retry_delay
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext, Registry
from workers.services import Services

log = structlog.get_logger(__name__)

# Plumbing failures (Redis gone for a moment) retry on this delay without counting against the events.
_PLUMBING_RETRY_S = 2.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _to_event(raw: dict[bytes, bytes]) -> AcceptedEvent:
    record = eventlog.decode_record(raw)
    return AcceptedEvent(
        id=record["id"],
        source=Source(record["source"]),
        type=record["type"],
        entity=record["entity"],
        timestamp=record["timestamp"],
        data=record["data"],
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    ref: str
    raw: dict[bytes, bytes]
    event: AcceptedEvent


def group_by_type(items: Sequence[Claimed]) -> list[tuple[str, list[Claimed]]]:
    """Events of one type together, the types ordered by their newest event (so a delete that came after
    an update is handled last)."""
    groups: dict[str, list[Claimed]] = {}
    for item in items:
        groups.setdefault(item.event.type, []).append(item)
    last_seen = {item.event.type: i for i, item in enumerate(items)}
    return sorted(groups.items(), key=lambda kv: last_seen[kv[0]])


class Dispatcher:
    def __init__(self, redis: Redis, settings: Settings, registry: Registry, services: Services | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.registry = registry
        self.services = services or Services()
        self.queue = EntityQueue(redis, settings.queue_name)

    async def process_entity(self, ctx: dict[str, Any], entity: str) -> str:
        job_id: str = ctx["job_id"]
        structlog.contextvars.bind_contextvars(job_id=job_id, entity=entity)
        try:
            return await self._process(entity, job_id)
        except RedisError as exc:
            log.warning("job_plumbing_failed", error=str(exc))
            raise Retry(defer=_PLUMBING_RETRY_S) from exc
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "entity")

    async def _process(self, entity: str, job_id: str) -> str:
        claimed = await self.queue.claim(entity, job_id)
        if claimed is None:
            log.info("job_stale", reason="the entity has a newer job")
            return "stale"
        attempt, refs = claimed
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(event_key(ref))
            raws = await pipe.execute()
        expired = [ref for ref, raw in zip(refs, raws, strict=True) if not raw]
        present = [Claimed(ref, raw, _to_event(raw)) for ref, raw in zip(refs, raws, strict=True) if raw]
        if expired:
            log.warning("events_expired", refs=expired)
            await self.queue.settle(entity, job_id, expired)

        max_attempts = self.settings.job_max_attempts
        if attempt > max_attempts:
            # Only a worker that died mid-job gets here (handler failures are counted below): stop the loop.
            reason = f"the worker stopped {attempt - 1} times while handling these events"
            for event_type, group in group_by_type(present):
                await self._dead_letter(entity, job_id, attempt - 1, event_type, group, reason)
            await self.queue.settle(entity, job_id, [c.ref for c in present])
            return await self._release(entity, job_id, "dead")

        now = _now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in present:
                eventlog.set_status(pipe, c.ref, "processing", now_ms=now, attempts=attempt)
            await pipe.execute()

        hctx = HandlerContext(
            redis=self.redis, settings=self.settings, job_id=job_id, attempt=attempt, services=self.services
        )
        retry = False
        outcomes: dict[str, int] = {}
        for event_type, group in group_by_type(present):
            group_refs = [c.ref for c in group]
            events = [c.event for c in group]
            source = events[-1].source
            structlog.contextvars.bind_contextvars(event_id=events[-1].id, event_type=event_type)
            outcome, error = await self._run_handler(hctx, source, event_type, events)
            structlog.contextvars.unbind_contextvars("event_id", "event_type")
            if outcome == "failed" and attempt >= max_attempts:
                outcome = "dead"
                error = f"gave up after {attempt} attempts: {error}"
            if outcome == "dead":
                await self._dead_letter(entity, job_id, attempt, event_type, group, error or "")
            else:
                await self._mark(group_refs, outcome, attempt, error)
            if outcome == "failed":
                retry = True
            else:
                await self.queue.settle(entity, job_id, group_refs)
            outcomes[outcome] = outcomes.get(outcome, 0) + len(group)
        await self._count(outcomes)

        if retry:
            delay = retry_delay(attempt, self.settings.job_retry_base_seconds, self.settings.job_retry_max_seconds)
            log.info("job_retry", attempt=attempt, delay_s=round(delay, 2))
            raise Retry(defer=delay)
        return await self._release(entity, job_id, "ok")

    async def _run_handler(
        self, hctx: HandlerContext, source: Source, event_type: str, events: list[AcceptedEvent]
    ) -> tuple[str, str | None]:
        handler = self.registry.get(source, event_type)
        if handler is None:
            return "skipped", f"no handler for {source.value} {event_type} in this build"
        deadline = asyncio.timeout(self.settings.job_timeout_seconds)
        try:
            async with deadline:
                await handler(hctx, events)
        except Skip as exc:
            return "skipped", str(exc) or "nothing to do"
        except PermanentError as exc:
            log.warning("handler_failed_permanently", error=str(exc))
            return "dead", str(exc) or type(exc).__name__
        except TimeoutError as exc:
            if not deadline.expired():  # the handler's own call timed out, not our deadline
                log.warning("handler_failed", error=f"TimeoutError: {exc}")
                return "failed", f"TimeoutError: {exc}"
            log.warning("handler_timed_out", timeout_s=self.settings.job_timeout_seconds)
            return "failed", f"timed out after {self.settings.job_timeout_seconds} s"
        except Exception as exc:
            log.warning("handler_failed", error=f"{type(exc).__name__}: {exc}")
            return "failed", f"{type(exc).__name__}: {exc}"
        return "done", None

    async def _mark(self, refs: list[str], status: str, attempt: int, error: str | None) -> None:
        now = _now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                eventlog.set_status(pipe, ref, status, now_ms=now, attempts=attempt, error=error or "")
                # A change fanned out by an admin job (workers/feed.py ids `job:<job id>:<n>`) counts towards
                # that job's progress once it is settled.
                counter = jobrecords.SETTLED_COUNTERS.get(status)
                job_id = jobrecords.job_of_event(ref.partition(":")[2])
                if counter and job_id:
                    pipe.hincrby(jobrecords.job_key(job_id), counter, 1)
            await pipe.execute()

    async def _dead_letter(
        self,
        entity: str,
        job_id: str,
        attempts: int,
        event_type: str,
        group: list[Claimed],
        reason: str,
    ) -> None:
        refs = [c.ref for c in group]
        await self._mark(refs, "dead", attempts, reason)
        dl_id = await deadletters.create(
            self.redis,
            entity=entity,
            event_type=event_type,
            # Snapshot after marking, so a replayed record starts from "dead" with its history.
            records=[await self.redis.hgetall(event_key(c.ref)) or c.raw for c in group],
            reason=reason,
            attempts=attempts,
            job_id=job_id,
        )
        log.warning("dead_lettered", dead_letter_id=dl_id, type=event_type, events=len(refs), reason=reason)

    async def _release(self, entity: str, job_id: str, result: str) -> str:
        outcome = await self.queue.release(entity, job_id, now_ms=_now_ms())
        log.debug("job_released", release=outcome)
        return f"{result}:{outcome}"

    async def _count(self, outcomes: dict[str, int]) -> None:
        if not outcomes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for outcome, n in outcomes.items():
                pipe.hincrby(JOB_STATS, outcome, n)
            await pipe.execute()
