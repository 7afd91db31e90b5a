"""Which inventory API the store has, found on a worker's first stock write (every link checked against it) and
kept with the batchers that write through it, one per link's source."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from crmcore.remotes import Remote
from crmcore.settings import Settings
from workers.clients.errors import NotFound
from workers.clients.magento import MagentoClient
from workers.errors import MisconfiguredError
from workers.registry import HandlerContext
from workers.sync import orders
from workers.sync.inventory import links
from workers.sync.inventory.batcher import Batcher
from workers.sync.inventory.legacy import LegacyStock
from workers.sync.inventory.msi import MsiStock
from workers.sync.inventory.stock import Mode

log = structlog.get_logger(__name__)

CACHE_KEY = "inventory"
_SETUP_LOCK = "inventory-setup-lock"


@dataclass
class StockSetup:
    """What a worker found at its first stock write (cached in Services.caches): the mode, and one batcher per
    link, by source code (changes for one source share its writes; each source is its own batch)."""

    mode: Mode
    sources: list[str]
    batchers: dict[str, Batcher]  # source code -> the batcher writing through the adapter of `mode`

    def batcher(self, source_code: str) -> Batcher:
        return self.batchers[source_code]


def held_place(mode: Mode, source_code: str) -> str:
    """Where the ledger keeps the units this source's stock API has already taken out."""
    return orders.msi_place(source_code) if mode is Mode.MSI else orders.LEGACY


async def detect_mode(magento: MagentoClient, settings: Settings) -> tuple[Mode, list[str]]:
    """MSI when `GET /V1/inventory/sources` answers; legacy when the route does not exist (404). With MSI
    every linked source must exist (writing to a source Magento does not have fails every save); without it
    only one link can be fed (legacy stock has one quantity per product)."""
    try:
        sources = await magento.sources()
    except NotFound:
        if refusal := links.legacy_refusal(settings):
            raise MisconfiguredError(links.source_setting(settings), refusal, remote=Remote.MAGENTO) from None
        log.info("inventory_mode", mode="legacy", reason="GET /V1/inventory/sources answered 404")
        return Mode.LEGACY, []
    codes = [str(s.get("source_code")) for s in sources]
    if unknown := links.unknown_sources(settings, codes):
        raise MisconfiguredError(links.source_setting(settings), unknown, remote=Remote.MAGENTO)
    return Mode.MSI, codes


def adapter(
    mode: Mode, magento: MagentoClient, source_code: str, batch_size: int, concurrency: int
) -> MsiStock | LegacyStock:
    if mode is Mode.MSI:
        return MsiStock(magento, source_code, batch_size)
    return LegacyStock(magento, concurrency)


async def _found(ctx: HandlerContext) -> StockSetup:
    settings = ctx.settings
    mode, sources = await detect_mode(ctx.magento, settings)
    batchers = {}
    for link in settings.links:
        stock = adapter(
            mode, ctx.magento, link.source_code, settings.inventory_batch_size, settings.magento_concurrency
        )
        batchers[link.source_code] = Batcher(
            stock.apply, settings.inventory_batch_size, settings.inventory_batch_wait_seconds
        )
    log.info("inventory_mode", mode=mode.value, sources=[link.source_code for link in settings.links])
    return StockSetup(mode, sources, batchers)


async def stock_setup(ctx: HandlerContext) -> StockSetup:
    """This worker's inventory mode and batcher, found on first use (one GET /V1/inventory/sources) and kept;
    a reconciliation finds the mode again and drops this, so a store that gained or lost MSI is followed."""
    caches = ctx.services.caches
    setup: StockSetup | None = caches.get(CACHE_KEY)
    if setup is not None:
        return setup
    # Jobs starting together on a fresh worker would each detect the mode and each build a batcher.
    lock: asyncio.Lock = caches.setdefault(_SETUP_LOCK, asyncio.Lock())
    async with lock:
        setup = caches.get(CACHE_KEY)
        if setup is None:
            setup = caches[CACHE_KEY] = await _found(ctx)
    return setup
