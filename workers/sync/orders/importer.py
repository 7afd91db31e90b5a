"""order.completed: a completed Magento order becomes exactly one executed Cloud Retailer sale.

Exactly once, in three layers:
1. the marker (markers.py): an order marked imported is skipped without another call;
2. Cloud Retailer itself: before creating, `GET /sales?external_ref=magento:{increment_id}` (a job that died
   between "sale created" and "marker written" finds its sale and only writes the marker);
3. the 409 Cloud Retailer answers to a second sale with the same external_ref (two importers that both
   looked before either created): the client hands back the existing sale.
The callback, the poller and an admin resync all feed the same entity queue (`magento:order:{entity_id}`),
so for one order they run one after the other, never side by side; layers 2 and 3 cover the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import structlog

from crmcore import keys, timeline
from crmcore.events import AcceptedEvent, MagentoOrderEvent, Source
from workers.clients.errors import NotFound, PermanentApiError, remote_condition
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.orders import markers
from workers.sync.orders.customer import customer_for
from workers.sync.orders.ledger import Ledger
from workers.sync.orders.mapper import external_ref, map_order
from workers.sync.orders.search import linked_store_ids

log = structlog.get_logger(__name__)
_LINE_FIELD = re.compile(r"lines\[(\d+)\]\.sku")


@dataclass(frozen=True)
class Pending:
    """An order that is complete, belongs to the linked website and is not marked imported."""

    entity_id: int
    increment_id: str
    order: dict[str, Any]

    @property
    def external_ref(self) -> str:
        return external_ref(self.increment_id)


def _store_id(ctx: HandlerContext) -> str:
    return ctx.linked_store_id


async def _skip_if_imported(ctx: HandlerContext, increment_id: str, entity_id: int | None = None) -> None:
    """Skip an order already imported. With `entity_id`, only when the marker was written for that very order."""
    marker = await markers.get(ctx.redis, increment_id)
    if marker is None or marker.state != markers.IMPORTED:
        return
    if entity_id is not None and marker.entity_id != entity_id:
        return
    raise Skip(f"order {increment_id} was imported as sale {marker.sale_id}; later changes are not synced")


async def _fetch(ctx: HandlerContext, entity_id: int) -> dict[str, Any]:
    try:
        return (await ctx.magento.get_order(entity_id)).model_dump()
    except NotFound:
        # Skipped, not dead-lettered: a replay could only meet the same 404, and a dead letter per forged or
        # mistyped callback would bury the real ones. The order poll still finds any complete order Magento
        # has, whatever callback was lost.
        raise Skip(f"Magento has no order {entity_id}; nothing to import") from None


async def check(ctx: HandlerContext, entity_id: int, increment_id: str | None = None) -> Pending:
    """Fetch the order and decide whether it is to be imported; raises Skip with the reason when not.

    `increment_id` is the event's word only: it spares a duplicate its call to Magento when the marker under it
    names this very order, and nothing else is decided or written under it."""
    if increment_id:
        await _skip_if_imported(ctx, increment_id, entity_id)
    order = await _fetch(ctx, entity_id)
    number = str(order["increment_id"])
    await timeline.remember(
        ctx.redis,
        number,
        keys.entity_name(Source.MAGENTO, MagentoOrderEvent.KIND, [str(entity_id)]),
        ttl_s=ctx.settings.event_record_ttl_seconds,
    )
    await _skip_if_imported(ctx, number)
    if order.get("state") != "complete":
        raise Skip(f"order {number} is {order.get('state')!r} (status {order.get('status')!r}), not complete")
    store = order.get("store_id")
    ours = await linked_store_ids(ctx.magento, ctx.settings.magento_website_id)
    if store is not None and int(store) not in ours:
        raise Skip(f"order {number} is of store view {store}, not of the linked website")
    return Pending(entity_id, number, order)


async def record_sale(ctx: HandlerContext, pending: Pending) -> tuple[str, bool]:
    """Create the sale (customer matched or created first). Returns (sale id, created now)."""
    store_id = _store_id(ctx)
    customer_id = await customer_for(ctx, pending.order)
    sale = map_order(pending.order, store_id=store_id, tender=ctx.settings.web_orders_tender, customer_id=customer_id)
    try:
        recorded, created = await ctx.cr.create_sale(sale)
    except PermanentApiError as exc:
        raise PermanentError(_refusal(pending, sale.lines, exc)) from exc
    return str(recorded.id), created


def _refusal(pending: Pending, lines: list[Any], exc: PermanentApiError) -> str:
    where = _LINE_FIELD.search(exc.message)
    if exc.status == 422 and where and int(where.group(1)) < len(lines):
        sku = lines[int(where.group(1))].sku
        return (
            f"order {pending.increment_id}: Cloud Retailer has no product with SKU {sku!r}; "
            "replay this dead letter once the product exists there"
        )
    return f"order {pending.increment_id}: Cloud Retailer refused the sale: {exc.message}"


async def import_pending(ctx: HandlerContext, pending: Pending) -> tuple[str, bool]:
    """Returns (sale id, created now). Safe to run again at any point."""
    await markers.importing(ctx.redis, pending.increment_id, pending.entity_id, ctx.job_id)
    existing = await ctx.cr.sale_by_external_ref(pending.external_ref)
    if existing is not None and existing.id is not None:
        sale_id, created = existing.id, False
    else:
        sale_id, created = await record_sale(ctx, pending)
    await markers.imported(ctx.redis, pending.increment_id, pending.entity_id, sale_id)
    # Only now: until the sale is recorded its units must stay held, or a stock write in between would hand
    # them back to Magento. A stop between the two writes is healed by the next refresh's sweep.
    await Ledger(ctx.redis).release(pending.entity_id, pending.increment_id)
    return sale_id, created


async def import_order(ctx: HandlerContext, entity_id: int, increment_id: str | None = None) -> tuple[str, bool]:
    # A check that fails writes no marker: only the increment id Magento returned for this order may key one,
    # and a failed check has none (a marker under the event's number could hide a real order from the poll).
    pending = await check(ctx, entity_id, increment_id)
    try:
        sale_id, created = await import_pending(ctx, pending)
    except PermanentError as exc:
        if not remote_condition(exc):
            await markers.failed(ctx.redis, pending.increment_id, entity_id, str(exc))
        raise
    except Exception as exc:
        # The dispatcher dead-letters it after this try, unless the remote is down (then it is parked).
        if ctx.attempt >= ctx.settings.job_max_attempts and not remote_condition(exc):
            await markers.failed(ctx.redis, pending.increment_id, entity_id, f"{type(exc).__name__}: {exc}")
        raise
    log.info("order_imported", increment_id=pending.increment_id, sale_id=sale_id, created=created)
    return sale_id, created


async def on_order_completed(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
    """Every coalesced event names the same order; the newest one is enough."""
    data = MagentoOrderEvent.model_validate(events[-1].data)
    await import_order(ctx, data.order_id, data.increment_id)
