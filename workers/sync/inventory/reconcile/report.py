"""What a reconciliation reports besides the envelope every periodic run has (workers/periodic/job.py):
the counts, samples of the SKUs behind them, the Magento calls made, and errors. Counts are exact; the SKU
lists are the first SAMPLE."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.registry import Progress
from workers.sync.inventory.stock import Counts

SAMPLE = 50  # SKUs listed per category in a report (the counts are exact)
ERRORS_KEPT = 20
PROGRESS_EVERY_S = 1.0


@dataclass
class Listed:
    """A count and the first SAMPLE SKUs."""

    count: int = 0
    skus: list[str] = field(default_factory=list)

    def add(self, sku: str) -> None:
        self.count += 1
        if len(self.skus) < SAMPLE:
            self.skus.append(sku)


@dataclass
class Report:
    dry_run: bool
    store_id: str
    source_code: str
    mode: str | None = None
    cr_skus: int = 0
    magento_skus: int = 0
    compared: int = 0
    drift_found: int = 0
    drift_fixed: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)  # sku, magento, cloud_retailer, held, written
    held_skus: int = 0  # SKUs with units held back for orders not yet sales, at the store's place
    missing_in_magento: Listed = field(default_factory=Listed)
    missing_in_cr: Listed = field(default_factory=Listed)
    changed_during_run: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    magento_reads: int = 0
    magento_writes: int = 0
    items_written: int = 0
    cr_reads: int = 0

    def error(self, message: str, skus: list[str] | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_KEPT:
            entry: dict[str, Any] = {"error": message[:500]}
            if skus:
                entry["skus"] = skus[:SAMPLE]
            self.errors.append(entry)

    def calls(self, counts: Counts) -> None:
        """The Magento calls of the run so far: its stock adapter's, and the one that found the mode."""
        self.magento_reads = 1 + counts.reads
        self.magento_writes = counts.writes
        self.items_written = counts.items_written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Throttled:
    """An admin run's progress (SKUs compared of those Cloud Retailer has), written at most once a second."""

    def __init__(self, progress: Progress | None, report: Report) -> None:
        self.progress, self.report = progress, report
        self._at = 0.0

    async def __call__(self, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._at < PROGRESS_EVERY_S:
            return
        self._at = now
        total = self.report.cr_skus
        await self.progress(min(self.report.compared, total), total)
