"""The stock links in force (crmcore/settings.py `Settings.links`): which Cloud Retailer location feeds which
Magento source, and the checks every link must pass against what the two systems have. Pure: the remote reads
are the caller's (setup.py at a worker's first write, workers/availability/checks.py in the probes).

One location per source: MSI's source quantity is one number, so two locations writing it would overwrite each
other; one source per location, so a location's on-hand is never sold twice on the website.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmcore.settings import Settings, StockLink, env_name


def links_setting(settings: Settings) -> str:
    """The variable a link problem is about: CRMAGENTO_STOCK_LINKS when given, else the single old link's."""
    return env_name("stock_links") if settings.stock_links else ""


def source_setting(settings: Settings) -> str:
    return links_setting(settings) or env_name("magento_source_code")


def location_setting(settings: Settings) -> str:
    return links_setting(settings) or env_name("cr_store_id")


def link_of(settings: Settings, location_id: str) -> StockLink | None:
    """The link of this Cloud Retailer location, if it has one."""
    return next((link for link in settings.links if link.location_id == location_id), None)


def unknown_sources(settings: Settings, codes: Iterable[str]) -> str | None:
    """What to report when a linked source is not one of Magento's `codes` (None: all are)."""
    have = list(codes)
    missing = [link.source_code for link in settings.links if link.source_code not in have]
    if not missing:
        return None
    which = _which(settings, "source", missing)
    return f"{which}not an inventory source of this Magento (it has: {', '.join(have) or 'none'})"


def unknown_locations(settings: Settings, ids: Iterable[str]) -> str | None:
    """What to report when a linked location is not one of Cloud Retailer's store `ids` (None: all are)."""
    have = list(ids)
    missing = [link.location_id for link in settings.links if link.location_id not in have]
    if not missing:
        return None
    which = _which(settings, "location", missing)
    return f"{which}not a store of this Cloud Retailer (it has: {', '.join(have) or 'none'})"


def legacy_refusal(settings: Settings) -> str | None:
    """Legacy stock (no MSI) has one quantity per product: only one location can feed it."""
    count = len(settings.links)
    if count <= 1:
        return None
    return (
        f"{count} links, but this Magento has no MSI (GET /V1/inventory/sources answered 404): legacy stock holds "
        "one quantity per product, so only one location can feed it"
    )


def _which(settings: Settings, kind: str, values: list[str]) -> str:
    """The single old link's variable names its one value itself; a list of links says which entry."""
    if not settings.stock_links:
        return ""
    return f"{kind} {', '.join(repr(v) for v in values)} {'is' if len(values) == 1 else 'are'} "
