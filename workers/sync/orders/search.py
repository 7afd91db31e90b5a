"""Finding completed orders in Magento: which store views are ours, and a search that misses nothing.

The search pages by key, not by page number: `state=complete AND (updated_at, entity_id) > the last row
seen`, sorted by both ascending, always asking for the first page. A numbered page shifts when an order
changes while we page (it moves to the end and the one after it slides onto the page we already read), and
past the end Magento repeats the last page (docs/magento-api-notes.md item 5). Each answer's total_count says
how many match from the key on, so the search stops when what matched fits in the page it got.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.clients.magento import MagentoClient
from workers.clients.search_criteria import Filter, SearchCriteria
from workers.errors import PermanentError, TransientError

MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"
_VIEWS_TTL_S = 300.0
_views: dict[tuple[str, int], tuple[float, frozenset[int]]] = {}


def parse_time(value: str) -> datetime:
    """Magento's `Y-m-d H:i:s` (UTC) or any ISO-8601 time; one without a zone is UTC."""
    text = value.strip()
    try:
        moment = datetime.strptime(text[:19], MAGENTO_TIME)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def magento_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(MAGENTO_TIME)


def earlier(value: str, seconds: int) -> str:
    return magento_time(parse_time(value) - timedelta(seconds=seconds))


async def linked_store_ids(magento: MagentoClient, website_id: int) -> frozenset[int]:
    """The store views of the linked website (an order of another website belongs to another shop).

    Kept for a few minutes per worker: store views change about never, and this saves a call per order."""
    key = (str(magento.base), website_id)
    cached = _views.get(key)
    if cached is not None and time.monotonic() - cached[0] < _VIEWS_TTL_S:
        return cached[1]
    views = await magento.store_views()
    ids = frozenset(int(v["id"]) for v in views if int(v.get("website_id", -1)) == website_id and int(v["id"]) != 0)
    if not ids:
        raise PermanentError(f"Magento website {website_id} has no store view: check CRMAGENTO_MAGENTO_WEBSITE_ID")
    _views[key] = (time.monotonic(), ids)
    return ids


def _criteria(
    page_size: int, since: str, after: tuple[str, int] | None, store_ids: frozenset[int] | None
) -> SearchCriteria:
    criteria = SearchCriteria(page_size=page_size).where("state", "complete")
    if after is None:
        criteria.where("updated_at", since, "gteq")
    else:
        # (updated_at, entity_id) > after, as the conjunction of OR groups searchCriteria can express
        at, entity_id = after
        criteria.where("updated_at", at, "gteq")
        criteria.any_of(Filter("updated_at", at, "gt"), Filter("entity_id", entity_id, "gt"))
    if store_ids:
        criteria.where("store_id", sorted(store_ids), "in")
    return criteria.order_by("updated_at").order_by("entity_id")


async def keyset_pages(
    magento: MagentoClient,
    path: str,
    criteria: Callable[[tuple[str, int] | None], SearchCriteria],
    key: Callable[[dict[str, Any]], tuple[str, int]],
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of a Magento search ordered by a (time, id) key, always asking for page 1 of what comes after the
    last key seen: numbered pages shift when a record changes while we read. `criteria(after)` filters past
    `after`; each answer's total_count counts the matches from the key on, so the last page holds them all."""
    after: tuple[str, int] | None = None
    while True:
        asked = criteria(after)
        page = await magento.search(path, asked)
        items = page.items
        if not items:
            return
        yield items
        if len(items) >= page.total_count or len(items) < asked.page_size:
            return
        last = key(items[-1])
        if after is not None and last <= after:
            # the server ignored the key filter: stop instead of reading the same page forever
            raise TransientError(f"Magento answered {path} after {after} with {last} again")
        after = last


def completed_orders(
    magento: MagentoClient, *, since: str, store_ids: frozenset[int] | None = None, page_size: int = 100
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of complete orders updated at or after `since` (Magento time), oldest first."""
    return keyset_pages(
        magento,
        "orders",
        lambda after: _criteria(page_size, since, after, store_ids),
        lambda order: (magento_time(parse_time(str(order["updated_at"]))), int(order["entity_id"])),
    )
