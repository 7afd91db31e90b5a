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

    def merge(self, other: Listed) -> None:
        self.count += other.count
        self.skus.extend(other.skus[: SAMPLE - len(self.skus)])


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
    links: list[dict[str, Any]] = field(default_factory=list)  # per link: LINK_FIELDS and its drift sample

    def error(self, message: str, skus: list[str] | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_KEPT:
            entry: dict[str, Any] = {"error": message[:500]}
            if skus:
                entry["skus"] = skus[:SAMPLE]
            self.errors.append(entry)

    def calls(self, counts: Counts) -> None:
        """The Magento calls of one link's run so far (its stock adapter's; the read that found the mode is the
        totals', made once for every link)."""
        self.magento_reads = counts.reads
        self.magento_writes = counts.writes
        self.items_written = counts.items_written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, part: Report) -> None:
        """Count one link's run into these totals."""
        self.magento_reads += part.magento_reads
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.missing_in_magento.merge(part.missing_in_magento)
        self.missing_in_cr.merge(part.missing_in_cr)
        self.errors.extend(part.errors[: ERRORS_KEPT - len(self.errors)])
        self.drift.extend(part.drift[: SAMPLE - len(self.drift)])
        self.links.append(part.summary())

    def summary(self) -> dict[str, Any]:
        """One link's line in the totals' report: its counts, the sizes of its SKU lists, its drift sample."""
        out: dict[str, Any] = {name: getattr(self, name) for name in LINK_FIELDS}
        out["missing_in_magento"] = self.missing_in_magento.count
        out["missing_in_cr"] = self.missing_in_cr.count
        out["drift"] = self.drift
        return out


# Counts a total is the sum of; LINK_FIELDS are what each link's line in `links` shows.
SUMMED = (
    "cr_skus",
    "magento_skus",
    "compared",
    "drift_found",
    "drift_fixed",
    "held_skus",
    "changed_during_run",
    "error_count",
    "magento_writes",
    "items_written",
    "cr_reads",
)
LINK_FIELDS = ("store_id", "source_code", *SUMMED[:8], "items_written")


class Throttled:
    """An admin run's progress (SKUs compared of those Cloud Retailer has), written at most once a second."""

    def __init__(self, progress: Progress | None, report: Report, before: Report | None = None) -> None:
        # `before`: the totals of the links already done, so a run over several links counts up once.
        self.progress, self.report, self.before = progress, report, before
        self._at = 0.0

    async def __call__(self, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._at < PROGRESS_EVERY_S:
            return
        self._at = now
        done = (self.before.compared, self.before.cr_skus) if self.before is not None else (0, 0)
        total = done[1] + self.report.cr_skus
        await self.progress(min(done[0] + self.report.compared, total), total)
