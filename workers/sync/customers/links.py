"""The binding of a Cloud Retailer customer to a Magento account (workers/binder.py, kind "customer").

Email is the natural key (unique per website in Magento, unique in Cloud Retailer), so every path that finds
no binding looks the other side up by email before creating; the binding is a shortcut that can be rebuilt
from the emails, and an email match overrides it.
"""

from __future__ import annotations

import structlog
from redis.asyncio import Redis

from workers.binder import Binder
from workers.registry import HandlerContext

log = structlog.get_logger(__name__)

KIND = "customer"


async def magento_account_linked(redis: Redis, magento_id: int) -> bool:
    """Whether a Magento account is linked to a Cloud Retailer customer already (made from one, or linked)."""
    return await Binder(redis).cr_id(KIND, magento_id) is not None


async def link(ctx: HandlerContext, cr_id: str, magento_id: int) -> None:
    binder = Binder(ctx.redis)
    clash = await binder.bind_new(KIND, cr_id, magento_id)
    if clash is None or clash in (("cr", str(magento_id)), ("mg", cr_id)):
        return  # bound now, or by the other direction's job a moment ago
    # A binding the emails contradict (an account deleted and made again, an email moved): the email match
    # just made is the truth, the binding only a cache of it.
    log.warning("customer_rebound", cr_id=cr_id, magento_id=magento_id, was=clash)
    await binder.bind(KIND, cr_id, magento_id)
