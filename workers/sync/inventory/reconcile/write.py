"""Writing the difference: batches of CRMAGENTO_INVENTORY_BATCH_SIZE, `concurrency` in flight, then a look at
what changed in Cloud Retailer meanwhile.

Races with the change handler. Both writers check after writing: the handler re-reads its SKU, the
reconciliation reads everything changed since its high-water mark, and either one writes again when Cloud
Retailer moved on meanwhile, or when the units held back for orders moved (a shipment, with MSI, or an order
placed, without it, between the ledger's read and the write: our write put those units back on sale; the
reconciliation refreshes the ledger before each look, the handler before each read). The last write to a
SKU is therefore always followed by a read of Cloud Retailer and of the ledger by the same writer, which
corrects it if it was stale; whatever changes later in Cloud Retailer sends a new webhook. So a push and a
reconciliation touching the same SKU end with the newest count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from workers.clients.cloudretailer import CloudRetailerClient
from workers.clients.errors import RemoteUnavailable
from workers.sync.inventory.legacy import LegacyStock
from workers.sync.inventory.msi import MsiStock
from workers.sync.inventory.reconcile.compare import all_or_none
from workers.sync.inventory.reconcile.levels import HeldBack, changes_since
from workers.sync.inventory.reconcile.report import Report, Throttled
from workers.sync.inventory.stock import Outcome, Target

log = structlog.get_logger(__name__)

VERIFY_ROUNDS = 3

ReadHeld = Callable[[], Awaitable[dict[str, float]]]  # refresh the ledger, then read the place's held units


class Writer:
    def __init__(
        self, stock: MsiStock | LegacyStock, batch_size: int, concurrency: int, report: Report, progress: Throttled
    ) -> None:
        self.stock, self.batch_size, self.report, self.progress = stock, batch_size, report, progress
        self.limit = asyncio.Semaphore(concurrency)

    async def write(self, targets: list[Target]) -> dict[str, Target]:
        """What was written, by lower-case SKU. A batch that fails after the client's retries is reported and
        left for the next run; a remote outage stops the run (the other batches would fail the same way)."""
        size = self.batch_size
        written: dict[str, Target] = {}
        await all_or_none(self._send(targets[i : i + size], written) for i in range(0, len(targets), size))
        self.report.calls(self.stock.counts)
        return written

    async def _send(self, batch: list[Target], written: dict[str, Target]) -> None:
        async with self.limit:
            try:
                outcomes = await self.stock.write(batch)
            except RemoteUnavailable:
                raise
            except Exception as exc:
                self.report.error(f"{type(exc).__name__}: {exc}", [t.sku for t in batch])
                return
        for t in batch:
            outcome = outcomes.get(t.sku)
            if outcome is Outcome.WRITTEN:
                written[t.sku.lower()] = t
            elif isinstance(outcome, RemoteUnavailable):
                raise outcome
            elif isinstance(outcome, BaseException):
                self.report.error(f"{type(outcome).__name__}: {outcome}", [t.sku])
        await self.progress()

    async def recheck(
        self,
        cr: CloudRetailerClient,
        store_id: str,
        written: dict[str, Target],
        high_water: str,
        held: HeldBack,
        read_held: ReadHeld,
    ) -> None:
        """SKUs whose count changed in Cloud Retailer, or whose units held back changed, while we wrote them get
        the newer target. The ledger is read before Cloud Retailer, as everywhere (orders.held_units)."""
        for _ in range(VERIFY_ROUNDS):
            moved = held.replace(await read_held(), written)
            changed, high_water = await changes_since(cr, store_id, high_water, self.report, held)
            for key, on_hand in moved.items():
                changed.setdefault(key, held.target(written[key].sku, on_hand))
            again = [
                Target(written[key].sku, quantity, written[key].legacy_item_id)
                for key, quantity in changed.items()
                if key in written and abs(written[key].quantity - quantity) > 1e-6
            ]
            if not again:
                return
            self.report.changed_during_run += len(again)
            log.info("reconcile_rewrite_changed", skus=len(again))
            written.update(await self.write(again))
