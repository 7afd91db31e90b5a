"""The vocabulary of on-hand stock on the Magento side: the two inventory APIs, what one SKU must hold, and
what became of a write.

With MSI (Magento_Inventory* modules, bundled since 2.3) the quantity goes to the configured source's source
item, many SKUs per `POST /V1/inventory/source-items` (msi.py). Without it (`/V1/inventory/*` answers 404,
"Request does not match any route.") it goes to the legacy stock item, one
`PUT /V1/products/{sku}/stockItems/{id}` per SKU (legacy.py). Which one is found once per worker and again at
every reconciliation (setup.py).

The inventory job never creates a product: a SKU Magento does not have is answered MISSING (reported, and
left for the catalog sync). Magento's source items table has no key to the products table, so a source
item could be saved for a SKU without a product; MSI then fails the save or leaves an orphan row, hence the
check before writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Mode(StrEnum):
    MSI = "msi"
    LEGACY = "legacy"


class Outcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # Magento already had this quantity and status
    MISSING = "missing"  # no such product in Magento: never created here


def target_quantity(on_hand: float, held: float = 0.0) -> float:
    """What Magento's count must be: Cloud Retailer's on-hand minus the units Magento already took out of its
    own count for orders Cloud Retailer has not recorded as sales yet (`held`, from the orders' ledger), or
    Magento would sell them again. Never below zero: a sale can take on-hand below zero ("the count was
    wrong"), and nothing can be sold from a negative count."""
    return round(max(float(on_hand) - float(held), 0.0), 4)


def in_stock(quantity: float) -> int:
    return 1 if quantity > 0 else 0


def same_stock(quantity: float, status: int | bool, wanted: float) -> bool:
    return abs(float(quantity) - wanted) < 1e-6 and int(status) == in_stock(wanted)


@dataclass(frozen=True, slots=True)
class Target:
    """The quantity one SKU must have in Magento. `sku` is spelled as Magento has it when known."""

    sku: str
    quantity: float
    legacy_item_id: int | None = None  # the legacy stock item id, when a read already found it

    @property
    def status(self) -> int:
        return in_stock(self.quantity)


@dataclass
class Counts:
    """Magento calls made through one stock adapter (a reconciliation reports its own)."""

    reads: int = 0
    writes: int = 0
    items_written: int = 0


class Stock(Protocol):
    mode: Mode
    counts: Counts

    async def apply(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]: ...
