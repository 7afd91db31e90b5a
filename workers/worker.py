"""The arq workers: the entity worker, the long worker (admin jobs, and the scheduler of periodic work,
workers/periodic/), and a run loop that survives Redis outages.

arq's worker exits when its Redis connection drops and never reconnects (python-arq/arq#386), so
`run_worker` builds fresh arq `Worker`s after each drop, with a capped backoff, until asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import structlog
from arq import Worker
from arq.worker import func
from redis.exceptions import RedisError

from crmcore import series
from crmcore.clock import now_ms
from crmcore.entityqueue import PROCESS_ENTITY, EntityQueue
from crmcore.errors import clip
from crmcore.jobrecords import RUN_ADMIN_JOB, long_queue_name
from crmcore.redis_conn import arq_worker_redis
from crmcore.settings import Settings
from workers import serializer
from workers.adminjobs import run_admin_job
from workers.availability.monitor import RemoteMonitor
from workers.backoff import backoff
from workers.dispatch import Dispatcher
from workers.heartbeat import Heartbeat, new_worker_id
from workers.periodic import Periodic, Run, Scheduler
from workers.registry import Registry, default_registry
from workers.services import Services

log = structlog.get_logger(__name__)

# arq gives up on a job after max_tries; our dispatcher counts attempts itself and dead-letters, so arq's
# limit must never be what ends a job (that would strand the entity's events).
_ARQ_MAX_TRIES = 1_000_000
# Waits between attempts to reach Redis again after losing it.
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 30.0


def arq_timeout(job_timeout: int) -> int:
    """arq's own timeout is only a backstop: the dispatcher times each handler out and retries it properly.
    It also sets how long arq waits before re-running the job of a worker that died (this + 10 s), so the
    slack stays small."""
    return job_timeout + min(30, job_timeout)


async def process_entity(ctx: dict[str, Any], entity: str) -> None:
    dispatcher: Dispatcher = ctx["dispatcher"]
    await dispatcher.process_entity(ctx, entity)


async def housekeeping(run: Run) -> str:
    """Give entities whose job vanished a new one, so nothing stays stuck; and sample the queue depth into the
    minute's series (it runs once a minute on one worker, which is the sampling the series wants)."""
    queue = EntityQueue(run.ctx.redis, run.ctx.settings.queue_name)
    healed = await queue.heal(now_ms=now_ms())
    run.fields["healed"] = healed
    run.fields["queue_depth"] = await series.sample_queue_depth(
        run.ctx.redis, run.ctx.settings.queue_name, now_ms=now_ms()
    )
    if healed:
        log.warning("entities_healed", count=healed)
    return "ok"


HOUSEKEEPING = Periodic("housekeeping", interval=lambda _: 60.0, run=housekeeping, needs=())


def build_worker(settings: Settings, registry: Registry, worker_id: str, services: Services | None = None) -> Worker:
    """The entity worker: short per-entity jobs, whose lease (and so the restart of a dead worker's job)
    follows the handler timeout."""
    services = services or Services()
    holder: dict[str, Worker] = {}

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx.update(settings=settings, services=services)
        queue = EntityQueue(ctx["redis"], settings.queue_name)
        monitor = RemoteMonitor(ctx["redis"], settings, queue, worker_id)
        ctx["monitor"] = monitor
        # Before the first job: a wrong setting parks that remote's jobs instead of failing them one by one.
        await monitor.start()
        ctx["dispatcher"] = Dispatcher(ctx["redis"], settings, registry, monitor=monitor, worker_id=worker_id)
        heartbeat = Heartbeat(
            ctx["redis"],
            worker_id,
            settings.worker_heartbeat_seconds,
            lambda: sum(not t.done() for t in holder["worker"].tasks.values()),
        )
        await heartbeat.beat()
        heartbeat.start()
        ctx["heartbeat"] = heartbeat

    worker = Worker(
        functions=[
            func(
                process_entity,
                name=PROCESS_ENTITY,
                timeout=arq_timeout(settings.job_timeout_seconds),
                max_tries=_ARQ_MAX_TRIES,
                keep_result=0,
            )
        ],
        **arq_worker_redis(
            settings, queue_name=settings.queue_name, serializer=serializer.dumps, deserializer=serializer.loads
        ),
        queue_name=settings.queue_name,
        max_jobs=settings.worker_max_jobs,
        poll_delay=settings.worker_poll_delay_seconds,
        job_timeout=arq_timeout(settings.job_timeout_seconds),
        keep_result=0,
        job_completion_wait=settings.worker_shutdown_grace_seconds,
        handle_signals=False,
        health_check_interval=60,
        job_serializer=serializer.dumps,
        job_deserializer=serializer.loads,
        on_startup=on_startup,
    )
    holder["worker"] = worker
    return worker


def build_long_worker(settings: Settings, registry: Registry, services: Services | None = None) -> Worker:
    """Admin jobs on their own queue, and the scheduler of periodic work beside them. arq leases every job of
    a worker for its longest function timeout, so hour-long jobs beside the entity jobs would hold a dead
    worker's entity job for an hour."""
    ctx: dict[str, Any] = {"services": services or Services(), "settings": settings, "registry": registry}

    async def on_startup(ctx: dict[str, Any]) -> None:
        scheduler = Scheduler(ctx, [HOUSEKEEPING, *registry.periodic.values()])
        scheduler.start()
        ctx["scheduler"] = scheduler

    return Worker(
        # A restart while an admin job waits for a remote counts as one of arq's tries: leave room for several.
        functions=[func(run_admin_job, name=RUN_ADMIN_JOB, timeout=settings.admin_job_timeout_seconds, max_tries=10)],
        **arq_worker_redis(
            settings,
            queue_name=long_queue_name(settings.queue_name),
            serializer=serializer.dumps,
            deserializer=serializer.loads,
        ),
        queue_name=long_queue_name(settings.queue_name),
        max_jobs=4,
        poll_delay=max(settings.worker_poll_delay_seconds, 0.2),
        job_timeout=settings.admin_job_timeout_seconds,
        keep_result=0,
        job_completion_wait=settings.worker_shutdown_grace_seconds,
        handle_signals=False,
        health_check_interval=60,
        job_serializer=serializer.dumps,
        job_deserializer=serializer.loads,
        ctx=ctx,
        on_startup=on_startup,
    )


async def _teardown(worker: Worker, grace_s: float) -> None:
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    scheduler: Scheduler | None = worker.ctx.get("scheduler")
    if scheduler is not None:
        await scheduler.close(grace_s)
    heartbeat: Heartbeat | None = worker.ctx.get("heartbeat")
    if heartbeat is not None:
        await heartbeat.stop()
    monitor: RemoteMonitor | None = worker.ctx.get("monitor")
    if monitor is not None:
        await monitor.stop()
    if worker._pool is not None:  # arq offers no public way to drop a broken pool
        with contextlib.suppress(RedisError, OSError):
            await worker.pool.aclose(close_connection_pool=True)
        worker._pool = None


async def run_worker(settings: Settings, stop: asyncio.Event, registry: Registry | None = None) -> None:
    """Run until `stop` is set; then finish running jobs (up to the grace period) or re-queue them."""
    registry = registry if registry is not None else default_registry(settings)
    worker_id = new_worker_id()
    services = Services.from_settings(settings)
    failures = 0
    try:
        while not stop.is_set():
            workers = [
                build_worker(settings, registry, worker_id, services),
                build_long_worker(settings, registry, services),
            ]
            watcher = asyncio.create_task(_stop_when(stop, workers))
            started = time.monotonic()
            try:
                log.info("worker_starting", worker_id=worker_id, queue=settings.queue_name, handlers=len(registry))
                await _run_together(workers)
            except asyncio.CancelledError:
                if not stop.is_set():
                    raise
            except (RedisError, OSError) as exc:
                log.warning("worker_lost_redis", error=type(exc).__name__, detail=clip(str(exc)))
            finally:
                watcher.cancel()
                for worker in workers:
                    await _teardown(worker, settings.worker_shutdown_grace_seconds)
            if stop.is_set():
                break
            # A connection that held a minute counts as a fresh start: the waits begin again at the first.
            failures = 1 if time.monotonic() - started > 60 else failures + 1
            delay = backoff(failures, RECONNECT_FIRST_S, RECONNECT_MAX_S)
            log.info("worker_reconnecting", in_seconds=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    finally:
        await services.close()
    log.info("worker_stopped", worker_id=worker_id)


async def _run_together(workers: list[Worker]) -> None:
    """Run both arq workers; when one ends (stop, or Redis lost), end the other too and re-raise."""
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first_error = next((t.exception() for t in done if not t.cancelled() and t.exception()), None)
        if first_error is None:
            # A stop: let the other finish its running jobs the same way.
            await asyncio.gather(*tasks, return_exceptions=True)
            return
        raise first_error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stop_when(stop: asyncio.Event, workers: list[Worker]) -> None:
    await stop.wait()
    for worker in workers:
        scheduler: Scheduler | None = worker.ctx.get("scheduler")
        if scheduler is not None:  # its runs finish during the grace, as arq's jobs do
            scheduler.stop_claiming()
        if worker._job_completion_wait:
            worker.handle_sig_wait_for_completion(signal.SIGTERM)
        else:
            worker.handle_sig(signal.SIGTERM)
