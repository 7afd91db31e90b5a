"""Event type -> sync handler, admin jobs and periodic jobs. The sync rules register theirs; tests register
their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis

from crmcore.events import EVENT_TYPES, AcceptedEvent, EventType, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.remotes import BOTH_REMOTES, Remote
from crmcore.settings import Settings
from workers.clients.cloudretailer import CloudRetailerClient, linked_store_id
from workers.clients.magento import MagentoClient
from workers.services import Services

if TYPE_CHECKING:
    from workers.periodic import Periodic


@dataclass
class HandlerContext:
    """What a handler may use: Redis (for bindings and cursors), settings, and the API clients."""

    redis: Redis
    settings: Settings
    job_id: str
    attempt: int
    services: Services = field(default_factory=Services)

    @property
    def magento(self) -> MagentoClient:
        return self.services.magento

    @property
    def cr(self) -> CloudRetailerClient:
        return self.services.cr

    @property
    def linked_store_id(self) -> str:
        """The Cloud Retailer store linked to Magento; MisconfiguredError when CRMAGENTO_CR_STORE_ID is not set."""
        return linked_store_id(self.settings.cr_store_id)


def handler_context(worker: Mapping[str, Any], job_id: str, attempt: int = 1) -> HandlerContext:
    """The one way the workers make a HandlerContext: from what a worker's jobs share, arq's ctx of either
    worker (workers/worker.py puts redis, settings and services in both)."""
    return HandlerContext(
        redis=worker["redis"], settings=worker["settings"], job_id=job_id, attempt=attempt, services=worker["services"]
    )


class Progress(Protocol):
    """Record an admin job's progress. A job that fans changes out to the entity queue (workers/feed.py with
    `feed_origin(job id)`) sets only `total`: the workers count `done`/`failed` as the changes settle."""

    async def __call__(self, done: int | None = None, total: int | None = None) -> None: ...


# An admin job (force resync, reconciliation): gets the job's validated params and a progress callback,
# returns the result shown at GET /admin/jobs/{id}.
AdminJob = Callable[[HandlerContext, dict[str, Any], Progress], Awaitable[dict[str, Any]]]


# Called with every event of one type for one entity that this run coalesced, oldest first. Events are
# change signals: a handler fetches the current state, so usually only the newest one matters.
Handler = Callable[[HandlerContext, list[AcceptedEvent]], Awaitable[None]]


class Registry:
    """What this build runs, registered under the catalogue's types: an event type of its source
    (crmcore/events.py) and an admin job kind (crmcore/jobrecords.py). A member equals its string, so a string
    is taken for the member it spells, and one that spells none fails at registration instead of never being
    called; the lookups take the strings records hold."""

    def __init__(self) -> None:
        # Keyed by the members, which are strings: a record's plain string finds them.
        self._handlers: dict[tuple[Source, str], Handler] = {}
        # The remotes a handler talks to: while one of them is down, its jobs are parked without trying.
        self._needs: dict[tuple[Source, str], tuple[Remote, ...]] = {}
        self.admin_jobs: dict[str, AdminJob] = {}
        # Reconciliation, order poll, catch-up: run by the scheduler of the long worker (workers/periodic/).
        self.periodic: dict[str, Periodic] = {}

    def register_job(self, kind: AdminJobKind, job: AdminJob) -> None:
        self.admin_jobs[AdminJobKind(kind)] = job

    def register_periodic(self, job: Periodic) -> None:
        self.periodic[job.name] = job

    def register(
        self, source: Source, event_type: EventType, handler: Handler, *, needs: tuple[Remote, ...] = BOTH_REMOTES
    ) -> None:
        key = (source, EVENT_TYPES[source](event_type))
        self._handlers[key] = handler
        self._needs[key] = needs

    def needs(self, source: Source, event_type: str) -> tuple[Remote, ...]:
        return self._needs.get((source, event_type), ())

    def on(
        self, source: Source, *event_types: EventType, needs: tuple[Remote, ...] = BOTH_REMOTES
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            for event_type in event_types:
                self.register(source, event_type, handler, needs=needs)
            return handler

        return decorate

    def get(self, source: Source, event_type: str) -> Handler | None:
        return self._handlers.get((source, event_type))

    def __len__(self) -> int:
        return len(self._handlers)


def default_registry(settings: Settings) -> Registry:
    """The handlers, admin jobs and periodic jobs this build ships (workers/sync/), for a worker running with
    `settings` (the periodic jobs read their intervals from the worker's settings as they run)."""
    from workers import sync

    registry = Registry()
    sync.register_all(registry, settings)
    return registry
