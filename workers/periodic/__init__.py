"""Periodic work: reconciliation, order poll, catch-up and housekeeping, each a `Periodic` a domain registers
(`registry.register_periodic`), run by one scheduler on every worker (scheduler.py), one run at a time under
its lease, each run ending in a report of one shape (job.py)."""

from __future__ import annotations

from workers.periodic.job import ADMIN, SCHEDULE, Periodic, Run, execute, new_run_id, run_once
from workers.periodic.scheduler import MAX_TRIES, Scheduler

__all__ = [
    "ADMIN",
    "MAX_TRIES",
    "SCHEDULE",
    "Periodic",
    "Run",
    "Scheduler",
    "execute",
    "new_run_id",
    "run_once",
]
