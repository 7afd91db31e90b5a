"""order.completed: a completed Magento order becomes one executed Cloud Retailer sale per location that
shipped part of it (split.py; one sale, `magento:{increment_id}`, for an order shipped from one place).

Exactly once per part, in three layers:
1. the marker (markers.py): an order marked imported is skipped without another call; it is written only
   once every part exists, with every part's sale id;
2. Cloud Retailer itself: before creating, each part is looked up by its external_ref (a job that died
   between two parts, or between the last part and the marker, finds what it made and creates only the rest);
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
from workers.clients.cloudretailer_models import Sale
from workers.clients.errors import NotFound, PermanentApiError, remote_condition
from workers.errors import PermanentError, Skip
from workers.registry import HandlerContext
from workers.sync.orders import markers, shipments, split
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


@dataclass(frozen=True)
class Booked:
    """One part of an order as Cloud Retailer holds it."""

    location_id: str
    external_ref: str
    sale_id: str
    created: bool


async def plan_of(ctx: HandlerContext, pending: Pending) -> split.Plan:
    """Which location books which units. With a single link there is nothing to choose: no shipment is read."""
    links = ctx.settings.links
    shipped = await shipments.of_order(ctx, pending.order) if len(links) > 1 else []
    the_plan = split.plan(pending.order, shipped, links, _store_id(ctx))
    for source in the_plan.unlinked:
        # Booked at the default location rather than refused: the sale is real wherever it shipped from.
        log.warning(
            "order_source_not_linked", increment_id=pending.increment_id, source_code=source, booked_at=_store_id(ctx)
        )
        # The job's timeline entry lists what it wrote; this line sits with them, where an operator reads it.
        timeline.wrote("Gateway", "NOTE", f"source {source!r} is not linked: its units booked at {_store_id(ctx)}")
    return the_plan


async def _found(ctx: HandlerContext, pending: Pending, the_plan: split.Plan) -> dict[str, Booked]:
    """external_ref -> the part Cloud Retailer already holds. The whole-order ref is looked up first, whatever
    the plan: an order booked as one sale (before its source was linked, say) stays one sale; and with several
    links every location's part ref, so that links changed between two imports never book an order twice."""
    refs = {pending.external_ref: _store_id(ctx)}
    if len(ctx.settings.links) > 1:
        locations = [*(p.location_id for p in the_plan.parts), *(link.location_id for link in ctx.settings.links)]
        refs |= {split.part_ref(pending.increment_id, loc): loc for loc in dict.fromkeys(locations)}
    found: dict[str, Booked] = {}
    for ref, location in refs.items():
        sale = await ctx.cr.sale_by_external_ref(ref)
        if sale is not None and sale.id is not None:
            found[ref] = Booked(sale.store_id or location, ref, str(sale.id), False)
            if ref == pending.external_ref:
                break
    return found


async def record_sales(ctx: HandlerContext, pending: Pending) -> list[Booked]:
    """Every part of the order as a Cloud Retailer sale: each looked up by its external_ref, the missing ones
    created (customer matched or created first). Safe to run again at any point."""
    the_plan = await plan_of(ctx, pending)
    found = await _found(ctx, pending, the_plan)
    wanted = split.refs(pending.increment_id, the_plan)
    if pending.external_ref in found or (found and not set(wanted) & set(found)):
        # booked before under other links: what is there is the import, nothing more is created
        return list(found.values())
    missing = [ref for ref in wanted if ref not in found]
    if not missing:
        return [found[ref] for ref in wanted]
    customer_id = await customer_for(ctx, pending.order)
    tender = ctx.settings.web_orders_tender
    whole = map_order(pending.order, store_id=_store_id(ctx), tender=tender, customer_id=customer_id)
    booked = []
    for sale in split.split_sale(whole, pending.order, the_plan):
        booked.append(found.get(sale.external_ref) or await _create(ctx, pending, sale))
    return booked


async def _create(ctx: HandlerContext, pending: Pending, sale: Sale) -> Booked:
    try:
        recorded, created = await ctx.cr.create_sale(sale)
    except PermanentApiError as exc:
        raise PermanentError(_refusal(pending, sale.lines, exc)) from exc
    return Booked(sale.store_id, sale.external_ref, str(recorded.id), created)


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
    """Returns (sale ids, comma-separated, and whether any was created now). Safe to run again at any point."""
    await markers.importing(ctx.redis, pending.increment_id, pending.entity_id, ctx.job_id)
    booked = await record_sales(ctx, pending)
    # Only once every part exists: a job that died between two parts left "importing", and its retry finds the
    # parts made by their external_refs and creates only the rest.
    sale_ids = ",".join(b.sale_id for b in booked)
    parts = {b.location_id: b.sale_id for b in booked}
    await markers.imported(ctx.redis, pending.increment_id, pending.entity_id, sale_ids, parts)
    # Only now: until the sale is recorded its units must stay held, or a stock write in between would hand
    # them back to Magento. A stop between the two writes is healed by the next refresh's sweep.
    await Ledger(ctx.redis).release(pending.entity_id, pending.increment_id)
    return sale_ids, any(b.created for b in booked)


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
