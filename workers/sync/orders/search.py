"""Finding completed orders in Magento: which store views are ours, and a search that misses nothing.

The search reads `state=complete` by key, `(updated_at, entity_id)` past the last row seen, always page 1
(`MagentoClient.iter_keyset`): a numbered page shifts when an order changes while we page (it moves to the
end and the one after it slides onto the page we already read), and past the end Magento repeats the last
page (docs/magento-api-notes.md item 5).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from crmcore.remotes import Remote
from crmcore.settings import env_name
from workers.clients.magento import Listing, MagentoClient
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.search_criteria import Filter
from workers.errors import MisconfiguredError

_VIEWS_TTL_S = 300.0
_views: dict[tuple[str, int], tuple[float, frozenset[int]]] = {}


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
        raise MisconfiguredError(env_name("magento_website_id"), "the website has no store view", remote=Remote.MAGENTO)
    _views[key] = (time.monotonic(), ids)
    return ids


def completed_orders(
    magento: MagentoClient, *, since: str, store_ids: frozenset[int] | None = None, page_size: int = 100
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of complete orders updated at or after `since` (Magento time), oldest first."""
    where = [Filter("state", "complete")]
    if store_ids:
        where.append(Filter("store_id", sorted(store_ids), "in"))
    return magento.iter_keyset(Listing.ORDERS, by="updated_at", since=since, where=where, page_size=page_size)
