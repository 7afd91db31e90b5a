"""The phases of the initial sync, in order. Each runs an admin job this build registers anyway (a resync,
the reconciliation), so the initial sync does exactly what the single verbs do, in the order they need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from crmcore.initialsync import PHASES
from crmcore.jobrecords import AdminJobKind


class Phase(NamedTuple):
    name: str
    kind: AdminJobKind
    # Its changes settle on the entity workers after its job returns: the next phase waits for them.
    feeds: bool
    # The job's parameters from the initial sync's; None: nothing to do in this phase.
    params: Callable[[dict[str, Any]], dict[str, Any] | None]


def _everything(_: dict[str, Any]) -> dict[str, Any]:
    # Every record of the kind; for categories that is Cloud Retailer's whole tree, used by a product or not.
    return {}


def _orders(params: dict[str, Any]) -> dict[str, Any] | None:
    since = params.get("orders_since")
    return {"since": since} if since else None


PLAN = (
    Phase("categories", AdminJobKind.RESYNC_CATEGORIES, feeds=True, params=_everything),
    Phase("products", AdminJobKind.RESYNC_PRODUCTS, feeds=True, params=_everything),
    Phase("customers", AdminJobKind.RESYNC_CUSTOMERS, feeds=True, params=_everything),
    Phase("inventory", AdminJobKind.RECONCILE_INVENTORY, feeds=False, params=lambda _: {"dry_run": False}),
    # Last: an order's items need their products, and the reconciliation must not count its sales twice.
    Phase("orders", AdminJobKind.RESYNC_ORDERS, feeds=False, params=_orders),
)

if tuple(p.name for p in PLAN) != PHASES:
    raise RuntimeError("the initial sync's plan must name crmcore.initialsync.PHASES, in order")
