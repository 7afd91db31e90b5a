"""The one job every event goes through: `process_entity(entity)`.

It claims the entity's waiting events, runs the handler of each event type once, records every event's
outcome in the event log, and then either releases the entity (a change that arrived meanwhile gets
exactly one new job) or asks arq to retry after a backoff. Handlers are idempotent (they fetch current
state), so a try that crashed halfway is simply run again.

A remote that is down is not the events' fault: a job that needs a remote the monitor knows is down is
parked before it tries, and a job whose call fails the way a down remote fails is parked once a probe
confirms it (workers/availability/monitor.py). Neither is a wrong setting (MisconfiguredError): the remote it
belongs to is marked misconfigured and the job parked. Parking spends no attempt and keeps the events queued
in their order; the drain releases them when the remote is back.

What a job did is in the event log, the job counters and the log; the job returns nothing to arq (which
keeps no result: `keep_result=0`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from arq import Retry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmcore import deadletters, eventlog, jobrecords, keys, series, timeline
from crmcore.clock import now_ms
from crmcore.entityqueue import EntityQueue
from crmcore.errors import clip
from crmcore.events import AcceptedEvent, Source
from crmcore.remotes import Remote, RemoteState, drain_rank
from crmcore.settings import Settings
from workers.availability.monitor import RemoteMonitor
from workers.backoff import retry_delay
from workers.clients.errors import remote_condition
from workers.errors import MisconfiguredError, PermanentError, Skip, StaleJob
from workers.fence import CURRENT_FENCE, Fence
from workers.registry import HandlerContext, Registry, handler_context

log = structlog.get_logger(__name__)

# Plumbing failures (Redis gone for a moment) retry on this delay without counting against the events.
_PLUMBING_RETRY_S = 2.0
# A parked job wakes up by itself after this long (and parks again if its remote is still down): a safety net
# under the drain, which releases it as soon as the remote answers.
PARK_DEFER_MS = 600_000


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
    # The job record counting this change as it settles (a change an admin job or a catch-up run fed), if any.
    admin_job: str | None = None


def _claimed(ref: str, raw: dict[bytes, bytes]) -> Claimed:
    return Claimed(ref, raw, _to_event(raw), eventlog.admin_job_of(raw))


def group_by_type(items: Sequence[Claimed]) -> list[tuple[str, list[Claimed]]]:
    """Events of one type together, the types ordered by their newest event (so a delete that came after
    an update is handled last)."""
    groups: dict[str, list[Claimed]] = {}
    for item in items:
        groups.setdefault(item.event.type, []).append(item)
    last_seen = {item.event.type: i for i, item in enumerate(items)}
    return sorted(groups.items(), key=lambda kv: last_seen[kv[0]])


@dataclass(frozen=True, slots=True)
class Outcome:
    # done | skipped | failed | dead | stale, or about `remote` as a whole: unavailable (it may be down: a probe
    # decides) | misconfigured (`setting` of it is wrong)
    status: str
    error: str | None = None
    remote: Remote | None = None
    # What an `unavailable` outcome becomes when the remote answers its probe after all: a 401 is then this
    # record's own (dead), a 503 or a timeout a failure worth a retry. A `misconfigured` one becomes dead when
    # there is no monitor to mark the remote.
    otherwise: str = "failed"
    setting: str = ""


def _misconfigured(exc: MisconfiguredError) -> Outcome:
    if exc.remote is None:  # no remote to mark and park on: a dead letter naming the setting
        return Outcome("dead", str(exc))
    return Outcome("misconfigured", str(exc), exc.remote, otherwise="dead", setting=exc.setting)


class Dispatcher:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        registry: Registry,
        *,
        monitor: RemoteMonitor | None = None,
        worker_id: str = "",
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.registry = registry
        self.queue = EntityQueue(redis, settings.queue_name)
        self.monitor = monitor
        self.worker_id = worker_id

    async def process_entity(self, ctx: dict[str, Any], entity: str) -> None:
        """`ctx` is arq's: the job id, and what the worker's jobs share (redis, settings, services)."""
        job_id: str = ctx["job_id"]
        structlog.contextvars.bind_contextvars(job_id=job_id, entity=entity)
        try:
            await self._process(ctx, entity, job_id)
        except RedisError as exc:
            log.warning("job_plumbing_failed", error=str(exc))
            raise Retry(defer=_PLUMBING_RETRY_S) from exc
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "entity")

    async def _process(self, ctx: dict[str, Any], entity: str, job_id: str) -> None:
        claimed = await self.queue.claim(entity, job_id, self.worker_id)
        if claimed is None:
            log.info("job_stale", reason="the entity has a newer job")
            return
        attempt, refs = claimed
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(keys.event(ref))
            raws = await pipe.execute()
        expired = [ref for ref, raw in zip(refs, raws, strict=True) if not raw]
        present = [_claimed(ref, raw) for ref, raw in zip(refs, raws, strict=True) if raw]
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
            await self._release(entity, job_id, "dead")
            return

        groups = group_by_type(present)
        blocked = self._blocked(groups)
        if blocked is not None:
            await self._park(entity, job_id, attempt, blocked, present)
            return

        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in present:
                eventlog.set_status(pipe, c.ref, "processing", now_ms=now, attempts=attempt)
            timeline.note(pipe, present, "processing", self.settings, attempt=attempt, job=job_id)
            await pipe.execute()

        hctx = handler_context(ctx, job_id, attempt)
        fence = CURRENT_FENCE.set(Fence(self.redis, entity, job_id))
        try:
            await self._run_groups(entity, job_id, attempt, hctx, groups)
        except StaleJob as exc:
            log.warning("job_stale", reason=str(exc))
        finally:
            CURRENT_FENCE.reset(fence)

    async def _run_groups(
        self, entity: str, job_id: str, attempt: int, hctx: HandlerContext, groups: list[tuple[str, list[Claimed]]]
    ) -> None:
        max_attempts = self.settings.job_max_attempts
        retry = False
        outcomes: dict[str, int] = {}
        for i, (event_type, group) in enumerate(groups):
            events = [c.event for c in group]
            structlog.contextvars.bind_contextvars(event_id=events[-1].id, event_type=event_type)
            result = await self._run_handler(hctx, events[-1].source, event_type, events)
            structlog.contextvars.unbind_contextvars("event_id", "event_type")
            if result.status == "stale":
                raise StaleJob(result.error or "")
            if result.remote is not None:
                down = await self._confirm(result)
                if down is not None:
                    await self._count(outcomes)
                    rest = [c for _, g in groups[i:] for c in g]
                    await self._park(entity, job_id, attempt, down, rest)
                    return
                # The remote answers its probe (or there is no monitor to mark it): this record's own failure.
                result = Outcome(result.otherwise, result.error)
            outcome, error = result.status, result.error
            if outcome == "failed" and attempt >= max_attempts:
                outcome = "dead"
                error = f"gave up after {attempt} attempts: {error}"
            if outcome == "dead":
                await self._dead_letter(entity, job_id, attempt, event_type, group, error or "")
            else:
                await self._mark(group, outcome, attempt, error)
            if outcome == "failed":
                retry = True
            else:
                await self.queue.settle(entity, job_id, [c.ref for c in group])
            outcomes[outcome] = outcomes.get(outcome, 0) + len(group)
        await self._count(outcomes)

        if retry:
            delay = retry_delay(attempt, self.settings.job_retry_base_seconds, self.settings.job_retry_max_seconds)
            log.info("job_retry", attempt=attempt, delay_s=round(delay, 2))
            await self.queue.retrying(entity, job_id)
            raise Retry(defer=delay)
        await self._release(entity, job_id, "ok")

    def _blocked(self, groups: list[tuple[str, list[Claimed]]]) -> RemoteState | None:
        """A remote these events need that the monitor knows is down."""
        if self.monitor is None:
            return None
        needs = {r for event_type, group in groups for r in self.registry.needs(group[-1].event.source, event_type)}
        return self.monitor.blocked(sorted(needs))

    async def _confirm(self, result: Outcome) -> RemoteState | None:
        """The remote's state if it is down or misconfigured (a probe confirms the first), else None."""
        if self.monitor is None or result.remote is None:
            return None
        if result.status == "misconfigured":
            state = await self.monitor.misconfigured(result.remote, result.setting, result.error or "")
        else:
            state = await self.monitor.confirm(result.remote)
        return None if state.up else state

    async def _park(self, entity: str, job_id: str, attempt: int, state: RemoteState, items: list[Claimed]) -> None:
        """Wait for the remote, without spending an attempt: the events go back to pending in their order and
        the entity joins the remote's parked set."""
        now = now_ms()
        parked = await self.queue.park(
            entity,
            job_id,
            now_ms=now,
            parked_key=keys.remote_parked(state.remote),
            score=drain_rank(entity, now),
            remote=state.remote.value,
            defer_ms=PARK_DEFER_MS,
        )
        if not parked:
            log.info("job_stale", reason="the entity has a newer job")
            return
        reason = f"waiting for {state.remote.label}: {state.describe()}"
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in items:
                eventlog.set_status(pipe, c.ref, "parked", now_ms=now, attempts=attempt - 1, error=reason)
            timeline.note(pipe, items, "parked", self.settings, attempt=attempt - 1, error=reason, job=job_id)
            pipe.hincrby(keys.JOB_STATS, "parked", len(items))
            await pipe.execute()
        log.info("job_parked", remote=state.remote.value, state=state.state.value, events=len(items))

    async def _run_handler(
        self, hctx: HandlerContext, source: Source, event_type: str, events: list[AcceptedEvent]
    ) -> Outcome:
        handler = self.registry.get(source, event_type)
        if handler is None:
            return Outcome("skipped", f"no handler for {source.value} {event_type} in this build")
        deadline = asyncio.timeout(self.settings.job_timeout_seconds)
        try:
            async with deadline:
                await handler(hctx, events)
        except Skip as exc:
            return Outcome("skipped", str(exc) or "nothing to do")
        except StaleJob as exc:
            return Outcome("stale", str(exc))
        except MisconfiguredError as exc:
            log.error("handler_misconfigured", setting=exc.setting, error=clip(str(exc)))
            return _misconfigured(exc)
        except PermanentError as exc:
            remote = remote_condition(exc)
            if remote is not None:  # a 401: the credentials of the whole remote, or of this record only?
                return Outcome("unavailable", str(exc), Remote(remote), otherwise="dead")
            log.warning("handler_failed_permanently", error=clip(str(exc)))
            return Outcome("dead", str(exc) or type(exc).__name__)
        except TimeoutError as exc:
            if not deadline.expired():  # the handler's own call timed out, not our deadline
                log.warning("handler_failed", error=clip(f"TimeoutError: {exc}"))
                return Outcome("failed", f"TimeoutError: {exc}")
            log.warning("handler_timed_out", timeout_s=self.settings.job_timeout_seconds)
            return Outcome("failed", f"timed out after {self.settings.job_timeout_seconds} s")
        except Exception as exc:
            log.warning("handler_failed", error=clip(f"{type(exc).__name__}: {exc}"))
            remote = remote_condition(exc)
            return Outcome(
                "unavailable" if remote else "failed", f"{type(exc).__name__}: {exc}", remote and Remote(remote)
            )
        return Outcome("done")

    async def _mark(self, items: list[Claimed], status: str, attempt: int, error: str | None) -> None:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in items:
                eventlog.set_status(pipe, c.ref, status, now_ms=now, attempts=attempt, error=error or "")
                if c.admin_job is not None:
                    jobrecords.count_settled(pipe, c.admin_job, status)
            series.count_settled(pipe, [c.raw for c in items], status, now_ms=now)
            timeline.note(pipe, items, status, self.settings, attempt=attempt, error=error)
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
        await self._mark(group, "dead", attempts, reason)
        dl_id = await deadletters.create(
            self.redis,
            entity=entity,
            event_type=event_type,
            # Snapshot after marking, so a replayed record starts from "dead" with its history.
            records=[await self.redis.hgetall(keys.event(c.ref)) or c.raw for c in group],
            reason=reason,
            attempts=attempts,
            job_id=job_id,
        )
        log.warning("dead_lettered", dead_letter_id=dl_id, type=event_type, events=len(group), reason=clip(reason))

    async def _release(self, entity: str, job_id: str, result: str) -> None:
        """`result`: ok, or dead for a job whose worker kept dying; the log line is all that keeps it."""
        release = await self.queue.release(entity, job_id, now_ms=now_ms())
        log.debug("job_released", result=result, release=release)

    async def _count(self, outcomes: dict[str, int]) -> None:
        if not outcomes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for outcome, n in outcomes.items():
                pipe.hincrby(keys.JOB_STATS, outcome, n)
            await pipe.execute()
