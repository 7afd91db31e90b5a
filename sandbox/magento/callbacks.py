"""The callbacks the small Magento module the gateway expects would send: `order.completed`,
`customer.created` and `category.created`, signed Standard Webhooks to the gateway, whoever made the change
(the gateway included). A request carrying `X-Sandbox-Suppress-Webhook: 1` makes its change silently."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento.routing import CALLBACKS
from sandbox.webhooks_out import suppressed

ORDER_COMPLETED = "order.completed"
CUSTOMER_CREATED = "customer.created"
CATEGORY_CREATED = "category.created"


def emit(request: web.Request, event_type: str, data: dict[str, Any]) -> str | None:
    """Schedule the delivery after the change is stored; returns its webhook-id (None when not sent)."""
    return request.app[CALLBACKS].emit(event_type, data, suppress=suppressed(request.headers))
