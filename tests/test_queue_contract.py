"""The types the gateway and the workers share instead of strings and tuples: the queue row (`QueuedEvent`) and
the admin job kinds (the event types: tests/test_events.py)."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from crmcore.entityqueue import JOB_EXPIRE_MS, EntityQueue, QueuedEvent
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from gateway.adminjobs import RESYNCS
from workers.registry import default_registry

ROW = (
    "cloudretailer",
    "msg_2abc",
    "product.updated",
    "cloudretailer:product:P-1",
    "2026-11-29T12:00:00+00:00",
    '{"product_id":"P-1","sku":"S-1"}',
)


def test_a_batch_of_queued_events_is_the_same_argv_as_bare_tuples(redis: Redis, settings: Settings) -> None:
    # The accept script reads rows by position (docs/performance.md: one JSON argument per batch); the named
    # row must not change a byte of what the gateway sends.
    queue = EntityQueue(redis, settings.queue_name)
    named = queue.accept_args([QueuedEvent(*ROW)] * 3, now_ms=1, record_ttl=2, recent_max=3)
    bare = queue.accept_args([ROW] * 3, now_ms=1, record_ttl=2, recent_max=3)  # type: ignore[list-item]
    assert named == bare == [1, 2, 3, settings.queue_name, JOB_EXPIRE_MS, orjson.dumps([ROW] * 3)]
    row = QueuedEvent(*ROW)
    assert (row.id, row.type, row.ref) == ("msg_2abc", "product.updated", "cloudretailer:msg_2abc")


def test_every_admin_job_the_gateway_starts_is_one_the_shipped_workers_run(settings: Settings) -> None:
    started = {r.kind for r in RESYNCS.values()} | {AdminJobKind.RECONCILE_INVENTORY}
    assert started == set(AdminJobKind) - {AdminJobKind.CATCHUP_CRON}
    assert set(default_registry(settings).admin_jobs) == started
