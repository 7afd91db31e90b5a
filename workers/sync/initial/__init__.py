"""The initial sync (crmcore/initialsync.py): what a new installation runs once, as one admin job.

phases   which admin job each phase runs, with which parameters, and whether it feeds the entity queue
run      the job: the phases in order, each on its own record, a finished one never run again
"""

from __future__ import annotations

from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync.initial.run import initial_sync_job

__all__ = ["register"]


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register_job(AdminJobKind.INITIAL_SYNC, initial_sync_job(registry))
