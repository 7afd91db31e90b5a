"""Catalog sync rules (issue #4)."""

from __future__ import annotations

from gateway.settings import Settings
from workers.registry import Registry


def register(registry: Registry, settings: Settings | None = None) -> None:
    """Handlers land with issue #4; until then these events are marked skipped."""
