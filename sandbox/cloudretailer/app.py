"""The sandbox Cloud Retailer aiohttp application: `create_app(config)`.

Middleware order matters: stats count every attempt (a client's retries included), faults come next so an
injected 503 or dropped connection happens before anything else, and the error renderer sits inside the
fault layer (a dropped connection must stay a dropped connection, not become a 500 body)."""

from __future__ import annotations

import hmac

import orjson
from aiohttp import web

from sandbox.cloudretailer import (
    attribute_sets,
    categories,
    customers,
    images,
    inventory,
    products,
    sales,
    stores,
    styles,
)
from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
from sandbox.cloudretailer.errors import ApiError, Handler, errors_middleware, fault_body
from sandbox.cloudretailer.keys import BASE, CONFIG, FAULTS, SENDER, STATE, STATS
from sandbox.cloudretailer.state import State
from sandbox.faults import SANDBOX_PREFIX, Faults
from sandbox.stats import Stats
from sandbox.webhooks_out import WebhookSender

ROUTE_MODULES = (stores, products, styles, images, inventory, categories, attribute_sets, customers, sales)


def create_app(config: CloudRetailerSandboxConfig) -> web.Application:
    st = State()
    st.seed(config.seed, config.products, config.customers, styles=config.styles)
    faults = Faults(list(config.faults), seed=config.fault_seed)
    stats = Stats()
    secret = config.webhook_secret.get_secret_value() if config.webhook_secret else None
    sender = WebhookSender(config.gateway_webhook_url, secret, attempts=config.webhook_attempts)

    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[stats.middleware(), faults.middleware(fault_body), errors_middleware, _auth(config)],
    )
    app[CONFIG], app[STATE], app[FAULTS], app[STATS], app[SENDER] = config, st, faults, stats, sender
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    faults.add_routes(app)
    stats.add_routes(app)
    app.router.add_get(SANDBOX_PREFIX + "health", health)
    app.router.add_get(SANDBOX_PREFIX + "webhooks", webhooks_sent)
    app.on_cleanup.append(_close_sender)
    return app


def _auth(config: CloudRetailerSandboxConfig) -> web.middleware:
    expected = f"Bearer {config.api_key.get_secret_value()}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Only the API is guarded; /_sandbox/ is the test surface and answers anyone on the loopback.
        if request.path.startswith(BASE + "/") or request.path == BASE:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError(401, "Missing or invalid API key: send Authorization: Bearer <key>.")
        return await handler(request)

    return auth


async def health(request: web.Request) -> web.Response:
    st = request.app[STATE]
    sender = request.app[SENDER]
    body = {
        "status": "ok",
        "products": len(st.products),
        "styles": len(st.styles),
        "customers": len(st.customers),
        "categories": len(st.categories),
        "sales": len(st.sales),
        "webhooks": {"enabled": sender.enabled, "delivered": len(sender.sent)},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def webhooks_sent(request: web.Request) -> web.Response:
    """The deliveries the gateway acknowledged: id, type and HTTP status, oldest first."""
    return web.Response(body=orjson.dumps(request.app[SENDER].sent), content_type="application/json")


async def _close_sender(app: web.Application) -> None:
    await app[SENDER].close()
