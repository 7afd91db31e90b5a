"""Inventory sync: on-hand at each linked Cloud Retailer location is the truth for its Magento inventory source
(CRMAGENTO_STOCK_LINKS, or the single link CRMAGENTO_CR_STORE_ID -> CRMAGENTO_MAGENTO_SOURCE_CODE).

    stock       what one SKU must hold in Magento and what became of a write (the two APIs' shared terms)
    links       the links in force and the checks each must pass against both systems
    msi         MSI source items of one source: read, compare, write many SKUs at once
    legacy      legacy stock items (a store without MSI): one SKU at a time
    reads       the product lookups and paged reads both APIs and the reconciliation share
    setup       which of the two APIs the store has, found per worker, with a batcher per link
    batcher     changes to many SKUs of one source that arrive together share one source-items call
    reconcile/  the full comparison every CRMAGENTO_RECONCILE_INTERVAL_MINUTES, and on demand

`inventory.updated` carries the SKU, the location (store) and an `on_hand` that is never trusted: the handler
finds the location's link (an unlinked location is skipped), reads the SKU's current on-hand there from Cloud
Retailer, hands it to the worker's batcher of the link's source, and is settled once the write carrying it
returned (or Magento already had it). It then reads Cloud Retailer once more and writes again if the count moved
meanwhile (see reconcile/write.py, "Races").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import structlog

from crmcore import timeline
from crmcore.events import AcceptedEvent, CloudRetailerEventType, InventoryEvent, Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import Settings, StockLink
from workers.clients.cloudretailer import linked_store_id
from workers.clients.cloudretailer_models import InventoryLevel
from workers.clients.errors import NotFound
from workers.errors import Skip
from workers.feed import feed
from workers.registry import HandlerContext, Registry
from workers.sync import orders
from workers.sync.inventory import stock as st
from workers.sync.inventory.links import link_of
from workers.sync.inventory.reconcile import RECONCILE, reconcile_job, run_reconciliation
from workers.sync.inventory.setup import held_place, stock_setup
from workers.sync.inventory.stock import Outcome, Target

__all__ = ["feed_stock", "on_inventory_updated", "register", "run_reconciliation", "stock_setup"]

log = structlog.get_logger(__name__)

CR = Source.CLOUDRETAILER
PUSH_ROUNDS = 3  # writes of one change at most, when Cloud Retailer keeps moving while we write


async def on_inventory_updated(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    data = events[-1].data
    link = _link(ctx, str(data["store_id"]))
    setup = await stock_setup(ctx)
    place = held_place(setup.mode, link.source_code)
    store_id = link.location_id
    counts = await _counts(ctx, str(data["sku"]), store_id, place)
    # Written under the SKU as Cloud Retailer spells it: the event's spelling is not confirmed by anyone.
    sku = counts.level.sku
    await timeline.remember(ctx.redis, sku, events[-1].entity, ttl_s=ctx.settings.event_record_ttl_seconds)
    batcher = setup.batcher(link.source_code)
    for _ in range(PUSH_ROUNDS):
        quantity = counts.target
        outcome = await batcher.submit(Target(sku, quantity))
        if outcome is Outcome.MISSING:
            raise Skip(
                f"SKU {sku} has no product in Magento: left for the catalog sync (its stock follows with the "
                "next reconciliation)"
            )
        # Written (or already right). If Cloud Retailer moved on meanwhile, or Magento shipped or sold more
        # (the ledger moved), a reconciliation may have written an older count after ours, or ours may be the
        # older one: write the newer count.
        counts = await _counts(ctx, sku, store_id, place)
        if counts.target == quantity:
            return
        log.info("inventory_changed_while_writing", sku=sku, source=link.source_code)


def _link(ctx: HandlerContext, location_id: str) -> StockLink:
    """The link this location feeds; an unlinked location is skipped, saying which are linked."""
    if not ctx.settings.links:
        linked_store_id(ctx.settings.cr_store_id)  # raises: no store is linked at all
    link = link_of(ctx.settings, location_id)
    if link is not None:
        return link
    if len(ctx.settings.links) == 1:
        raise Skip(f"store {location_id} is not the store linked to Magento ({ctx.settings.links[0].location_id})")
    linked = ", ".join(f"{x.location_id} -> {x.source_code}" for x in ctx.settings.links)
    raise Skip(f"store {location_id} is not linked to a Magento source (linked: {linked})")


class _Counts(NamedTuple):
    level: InventoryLevel
    held: float

    @property
    def target(self) -> float:
        return st.target_quantity(self.level.on_hand, self.held)


async def _counts(ctx: HandlerContext, sku: str, store_id: str, place: str) -> _Counts:
    """Cloud Retailer's on-hand and the units held for orders not yet sales, read in that safe order: held
    first (see orders.held_units)."""
    await orders.refresh_held(ctx)
    held = (await orders.held_units(ctx, place, [sku]))[sku]
    level = await _on_hand(ctx, sku, store_id)
    if level.sku != sku:  # the ledger has Magento's spelling, which is Cloud Retailer's
        return await _counts(ctx, level.sku, store_id, place)
    return _Counts(level, held)


async def _on_hand(ctx: HandlerContext, sku: str, store_id: str) -> InventoryLevel:
    try:
        return await ctx.cr.inventory_level(sku, store_id)
    except NotFound as exc:
        raise Skip(f"Cloud Retailer has no on-hand for SKU {sku} at store {store_id}: {exc.message}") from None


async def feed_stock(ctx: HandlerContext, skus: Iterable[str], origin: str | None = None) -> int:
    """Queue an on-hand push for these SKUs at every linked location through the same handler (e.g. after the
    catalog sync created their products, so they need not wait for the next reconciliation). Returns how many
    pushes were queued."""
    wanted = list(skus)
    changes = [
        (CR, CloudRetailerEventType.INVENTORY_UPDATED, InventoryEvent(sku=sku, store_id=link.location_id))
        for link in ctx.settings.links
        for sku in wanted
    ]
    if not changes:
        return 0
    # A plain prefix, not a job's `FeedOrigin`: these pushes are no admin job's work, so no record counts them.
    return await feed(ctx.redis, ctx.settings, origin or f"stock:{ctx.job_id}", changes)


def register(registry: Registry, settings: Settings | None = None) -> None:
    registry.register(CR, CloudRetailerEventType.INVENTORY_UPDATED, on_inventory_updated)
    registry.register_job(AdminJobKind.RECONCILE_INVENTORY, reconcile_job)
    registry.register_periodic(RECONCILE)
