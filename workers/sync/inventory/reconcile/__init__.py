"""The inventory reconciliation: Cloud Retailer's on-hand at the linked store against Magento's source,
fixing only what differs. The fallback for every lost or failed `inventory.updated`.

    report    the fields a reconciliation reports
    levels    Cloud Retailer's side: on-hand at the store, in full and changed since a mark
    compare   the comparison, one algorithm for MSI source items and legacy stock items
    write     writing the difference, and rewriting what changed meanwhile (the race with the handler)
    run       a run, the periodic job, the admin job and the history of recent runs
"""

from __future__ import annotations

from workers.sync.inventory.reconcile.report import SAMPLE, Listed, Report
from workers.sync.inventory.reconcile.run import (
    LOCK_KEY,
    RECONCILE,
    REPORT_NAME,
    RUNS_KEY,
    recent_runs,
    reconcile_job,
    run_reconciliation,
)

__all__ = [
    "LOCK_KEY",
    "RECONCILE",
    "REPORT_NAME",
    "RUNS_KEY",
    "SAMPLE",
    "Listed",
    "Report",
    "recent_runs",
    "reconcile_job",
    "run_reconciliation",
]
