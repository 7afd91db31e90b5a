"""Catch-up sync: nothing stays stale when a webhook or callback is lost.

Every CRMAGENTO_CATCHUP_INTERVAL_MINUTES (and on `POST /admin/resync/catchup`) a run asks Cloud Retailer for
the categories, products and customers changed since its cursors and Magento for the categories and
customers created since its cursors, and feeds each change through the same handlers and coalescing as a
webhook. Inventory has its reconciliation and orders their poll; neither is repeated here.

    clock     each side's time format, the cursors in Redis (forward only)
    streams   the five listings read, as pages of found changes
    run       a run, its report ("catchup" in GET /admin/status), the periodic job and the admin job
    record    the job record a scheduled run keeps for itself
"""

from __future__ import annotations

from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync.catchup.run import CATCHUP, catchup_job

__all__ = ["CATCHUP", "catchup_job", "register"]


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register_job(AdminJobKind.RESYNC_CATCHUP, catchup_job)
    registry.register_periodic(CATCHUP)
