"""The non-real surface under /_sandbox/: health (with what the store holds), plus the shared fault and
stats routes that app.py mounts."""

from __future__ import annotations

from aiohttp import web

from sandbox.faults import SANDBOX_PREFIX
from sandbox.magento.routing import CALLBACKS, STATE, json_response


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(
        {
            "status": "ok",
            "system": "magento",
            "msi": state.config.msi,
            "products": len(state.products),
            "categories": len(state.categories),
            "customers": len(state.customers),
            "orders": len(state.orders),
            "source_items": sum(len(items) for items in state.source_items.values()),
            "callbacks_sent": len(request.app[CALLBACKS].sent),
        }
    )


def register(app: web.Application) -> None:
    app.router.add_get(SANDBOX_PREFIX + "health", health)
