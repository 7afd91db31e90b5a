"""POST /admin/resync/customers: feed customers through the same queue and handlers as webhooks.

With `customer_ids` (Cloud Retailer ids): those customers. Without: every account of the linked Magento
website that no binding names, as the `customer.created` callback that was lost (its job links it by email or
creates it in Cloud Retailer), then every Cloud Retailer customer. Progress counts the fed changes as they
settle (crmcore/jobrecords.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from crmcore.events import (
    CloudRetailerEventType,
    CustomerEvent,
    EventData,
    MagentoCustomerEvent,
    MagentoEventType,
    Source,
)
from crmcore.jobrecords import feed_origin
from workers.binder import Binder
from workers.clients.errors import NotFound
from workers.clients.search_criteria import SearchCriteria
from workers.feed import Feeder
from workers.registry import HandlerContext, Progress
from workers.sync.customers.links import KIND

LOOKUPS_AT_ONCE = 16
Change = tuple[Source, str, EventData]


def _cr_change(customer_id: str) -> Change:
    # `updated`, not `created`: a created signal for a linked customer is skipped as the echo of a creation.
    return Source.CLOUDRETAILER, CloudRetailerEventType.CUSTOMER_UPDATED, CustomerEvent(customer_id=customer_id)


async def _existing(ctx: HandlerContext, ids: list[str], missing: list[str]) -> list[str]:
    """The ids Cloud Retailer has (an unknown id is reported, not dead-lettered)."""
    found: list[str] = []
    for start in range(0, len(ids), LOOKUPS_AT_ONCE):
        batch = ids[start : start + LOOKUPS_AT_ONCE]
        results = await asyncio.gather(*(ctx.cr.get_customer(i) for i in batch), return_exceptions=True)
        for customer_id, result in zip(batch, results, strict=True):
            if isinstance(result, NotFound):
                missing.append(customer_id)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.append(customer_id)
    return found


async def _unlinked_magento(ctx: HandlerContext) -> AsyncIterator[int]:
    binder = Binder(ctx.redis)
    criteria = SearchCriteria(page_size=200).where("website_id", ctx.settings.magento_website_id).order_by("entity_id")
    async for account in ctx.magento.iter_customers(criteria):
        if account.id is not None and await binder.cr_id(KIND, account.id) is None:
            yield account.id


async def resync_customers(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    feeder = Feeder(ctx.redis, ctx.settings, feed_origin(ctx.job_id), progress=progress)
    counts = {"cloud_retailer": 0, "magento_unlinked": 0}

    async def add(change: Change, counter: str) -> None:
        counts[counter] += 1
        await feeder.add(*change)

    missing: list[str] = []
    wanted = list(dict.fromkeys(params.get("customer_ids") or []))
    if wanted:
        for customer_id in await _existing(ctx, wanted, missing):
            await add(_cr_change(customer_id), "cloud_retailer")
    else:
        # Magento's unlinked accounts first, while no job of this resync has linked any of them yet.
        async for magento_id in _unlinked_magento(ctx):
            event = MagentoCustomerEvent(customer_id=magento_id)
            await add((Source.MAGENTO, MagentoEventType.CUSTOMER_CREATED, event), "magento_unlinked")
        async for customer in ctx.cr.customers():
            await add(_cr_change(customer.id), "cloud_retailer")
    await feeder.flush()
    return {"fed": feeder.fed, "queued": feeder.queued, **counts, "not_in_cloud_retailer": missing}
