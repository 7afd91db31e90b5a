"""Catch-up sync: nothing stays stale when a webhook or callback is lost.

Every CRMAGENTO_CATCHUP_INTERVAL_MINUTES (and on `POST /admin/resync/catchup`) a run asks Cloud Retailer for
the categories, products and customers changed since its cursors and Magento for the categories and
customers created since its cursors, and feeds each change through the same handlers and coalescing as a
webhook. Inventory has its reconciliation and orders their poll; neither is repeated here.

    clock     each side's time format, the cursors in Redis (forward only)
    streams   the five listings read, as pages of found changes
    lease     one run at a time, whatever the number of workers
    run       a run, its report ("catchup" in GET /admin/status), the cron and the admin job
"""

from __future__ import annotations

from crmcore.settings import ConfigError, Settings, load_settings
from workers.registry import Registry
from workers.sync.catchup.run import ADMIN_KIND, catchup_cron, catchup_job, cron_job

__all__ = ["ADMIN_KIND", "catchup_cron", "catchup_job", "cron_job", "register"]


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register_job(ADMIN_KIND, catchup_job)
    registry.register_cron(cron_job(settings or _settings()))


def _settings() -> Settings:
    """The schedule is fixed when the worker starts; a registry built without settings reads them here."""
    try:
        return load_settings()
    except ConfigError:
        return Settings.model_construct()  # the defaults; the worker itself refuses bad settings later
