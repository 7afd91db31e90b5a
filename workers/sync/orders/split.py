"""A completed order -> one Cloud Retailer sale per location that shipped part of it. Pure: no I/O.

Where each unit left from is the `source_code` MSI records on each shipment; a source maps to a location
through the stock links (CRMAGENTO_STOCK_LINKS). Units with no source to go by (legacy stock, no shipment, a
shipment without source_code, a row never shipped such as a virtual one) are booked at the default link's
location, as before there were several. A source no link names is booked there too (`Plan.unlinked` says
which, for the log and the timeline): the sale must exist somewhere, and the default location is where
everything was booked before, so an unlinked source reads as "as if there were one location".

Splitting (`split_sale`), all in cents so that the parts add up exactly:
- a line shipped from two sources becomes one line per part with the shipped quantity, same unit price; its
  discount and tax are shared by quantity;
- shipping and the order's tax beyond the lines' (tax on shipping) are shared by the parts' net amounts
  (by quantity when nothing is charged for the goods);
- each share is rounded down and the last part takes the remainder; the last part's total is the grand
  total minus the others', and any cent of rounding left goes to its shipping (or its tax without any).
A single part is the mapper's sale unchanged, at its location, under `magento:{increment_id}`; parts of a
split are `magento:{increment_id}:{location_id}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from crmcore.settings import StockLink
from workers.clients.cloudretailer_models import Sale, SaleLine, Tender
from workers.sync.orders.mapper import cents, external_ref, top_rows

Quantities = dict[int, Decimal]  # top-level order row id -> units


@dataclass(frozen=True)
class Part:
    """The units of the order one location shipped."""

    location_id: str
    quantities: Quantities


@dataclass(frozen=True)
class Plan:
    parts: list[Part]
    unlinked: list[str] = field(default_factory=list)  # sources shipped from that no link names

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


def part_ref(increment_id: str, location_id: str) -> str:
    return f"{external_ref(increment_id)}:{location_id}"


def refs(increment_id: str, plan: Plan) -> list[str]:
    """Each part's external_ref, in the plan's order."""
    if not plan.split:
        return [external_ref(increment_id)]
    return [part_ref(increment_id, part.location_id) for part in plan.parts]


def _qty(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _source(shipment: Mapping[str, Any]) -> str | None:
    code = (shipment.get("extension_attributes") or {}).get("source_code")
    return str(code) if code else None


def plan(
    order: Mapping[str, Any], shipments: Sequence[Mapping[str, Any]], links: Sequence[StockLink], default_location: str
) -> Plan:
    """Which location books which units. Parts come in the links' order (the default link's first)."""
    ordered = {int(row["item_id"]): _qty(row.get("qty_ordered")) for row in top_rows(order)}
    location_of = {link.source_code: link.location_id for link in links}
    booked: dict[str, Quantities] = {}
    unlinked: list[str] = []
    left = dict(ordered)
    for shipment in shipments:
        source = _source(shipment)
        location = location_of.get(source, default_location) if source else default_location
        if source and source not in location_of and source not in unlinked:
            unlinked.append(source)
        for item in shipment.get("items") or []:
            row_id = int(item.get("order_item_id") or 0)
            # a configurable's child row, when a shipment lists it too, is counted by its parent (held.py too)
            qty = min(_qty(item.get("qty")), left.get(row_id, Decimal(0)))
            if qty > 0:
                mine = booked.setdefault(location, {})
                mine[row_id] = mine.get(row_id, Decimal(0)) + qty
                left[row_id] -= qty
    unshipped = {row_id: qty for row_id, qty in left.items() if qty > 0}
    if unshipped or not booked:
        mine = booked.setdefault(default_location, {})
        for row_id, qty in unshipped.items():
            mine[row_id] = mine.get(row_id, Decimal(0)) + qty
    order_of = [default_location, *(link.location_id for link in links)]
    locations = sorted(booked, key=lambda loc: order_of.index(loc) if loc in order_of else len(order_of))
    return Plan([Part(loc, booked[loc]) for loc in locations], unlinked)


# --- money ----------------------------------------------------------------------------------------------------


def _cents(value: float | Decimal) -> int:
    return int(cents(Decimal(str(value))) * 100)


def apportion(amount: int, weights: Sequence[Decimal]) -> list[int]:
    """`amount` cents shared by `weights`: each share rounded down, the last takes the remainder."""
    total = sum(weights, Decimal(0))
    if total <= 0:
        weights, total = [Decimal(1)] * len(weights), Decimal(len(weights))
    shares = [int((Decimal(amount) * w / total).to_integral_value(ROUND_DOWN)) for w in weights[:-1]]
    return [*shares, amount - sum(shares)]


@dataclass
class _Piece:
    """One part's share of the sale: its lines and amounts in cents."""

    location_id: str
    lines: list[SaleLine] = field(default_factory=list)
    net: int = 0
    units: Decimal = Decimal(0)
    shipping: int = 0
    tax: int = 0


def _split_lines(sale: Sale, row_ids: list[int], parts: list[Part]) -> list[_Piece]:
    pieces = [_Piece(part.location_id) for part in parts]
    for line, row_id in zip(sale.lines, row_ids, strict=True):
        takers = [(piece, part.quantities[row_id]) for piece, part in zip(pieces, parts, strict=True)
                  if part.quantities.get(row_id, Decimal(0)) > 0]  # fmt: skip
        weights = [qty for _, qty in takers]
        discounts = apportion(_cents(line.discount), weights)
        taxes = apportion(_cents(line.tax), weights)
        for (piece, qty), discount, tax in zip(takers, discounts, taxes, strict=True):
            piece.lines.append(
                SaleLine(sku=line.sku, quantity=float(qty), unit_price=line.unit_price,
                         discount=discount / 100, tax=tax / 100)
            )  # fmt: skip
            piece.net += _cents(qty * Decimal(str(line.unit_price))) - discount
            piece.units += qty
            piece.tax += tax
    return pieces


def _share_order_amounts(sale: Sale, pieces: list[_Piece]) -> None:
    by_net = [Decimal(piece.net) for piece in pieces]
    weights = by_net if sum(by_net) > 0 else [piece.units for piece in pieces]
    extra_tax = _cents(sale.tax_total) - sum(_cents(line.tax) for line in sale.lines)
    for piece, shipping, tax in zip(
        pieces, apportion(_cents(sale.shipping), weights), apportion(extra_tax, weights), strict=True
    ):
        piece.shipping, piece.tax = shipping, piece.tax + tax


def _totals(sale: Sale, pieces: list[_Piece]) -> list[int]:
    totals = [piece.net + piece.shipping + piece.tax for piece in pieces[:-1]]
    last = pieces[-1]
    totals.append(_cents(sale.total) - sum(totals))
    rounding = totals[-1] - (last.net + last.shipping + last.tax)
    if last.shipping + rounding >= 0:
        last.shipping += rounding
    else:
        last.tax += rounding
    return totals


def split_sale(sale: Sale, order: Mapping[str, Any], the_plan: Plan) -> list[Sale]:
    """The mapper's sale for the whole order -> one sale per part of the plan, in its order."""
    increment_id = str(order.get("increment_id") or "")
    if not the_plan.split:
        return [sale.model_copy(update={"store_id": the_plan.parts[0].location_id})]
    row_ids = [int(row["item_id"]) for row in top_rows(order)]
    pieces = _split_lines(sale, row_ids, the_plan.parts)
    _share_order_amounts(sale, pieces)
    totals = _totals(sale, pieces)
    return [
        sale.model_copy(
            update={
                "store_id": piece.location_id,
                "external_ref": part_ref(increment_id, piece.location_id),
                "lines": piece.lines,
                "shipping": piece.shipping / 100,
                "tax_total": piece.tax / 100,
                "total": total / 100,
                "tenders": [Tender(type=sale.tenders[0].type, amount=total / 100)],
            }
        )
        for piece, total in zip(pieces, totals, strict=True)
    ]
