"""The sync rules (DESIGN.md section 1), one module per domain. Each module's `register(registry, settings)`
adds its event handlers, admin jobs and crons."""

from __future__ import annotations

from gateway.settings import Settings
from workers.registry import Registry
from workers.sync import catalog, customers, inventory, orders

DOMAINS = (catalog, inventory, orders, customers)


def register_all(registry: Registry, settings: Settings | None = None) -> None:
    for domain in DOMAINS:
        domain.register(registry, settings)
