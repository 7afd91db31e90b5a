"""The sandbox Magento 2 REST server: `create_app(config)`.

Middlewares, outermost first: Magento error bodies, call stats, fault injection, store scope (an unknown
store code is an unknown route, as in Magento's path processor), then authentication. Specific
/V1/products/... routes are registered before /V1/products/{sku} so the SKU pattern cannot swallow them.
"""

from __future__ import annotations

from aiohttp import web

from sandbox.faults import Faults
from sandbox.magento import (
    attributes,
    categories,
    configurable,
    countries,
    customers,
    inventory,
    media,
    orders,
    products,
    sandbox_routes,
    shipments,
    store,
    tier_prices,
)
from sandbox.magento.auth import Authenticator, auth_middleware
from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.errors import error_middleware, error_response
from sandbox.magento.routing import CALLBACKS, CONFIG, STATE, RestRoutes, scope_middleware
from sandbox.magento.seed import build_state
from sandbox.stats import Stats
from sandbox.webhooks_out import WebhookSender

FAULTS = web.AppKey("magento_faults", Faults)
STATS = web.AppKey("magento_stats", Stats)
MAX_BODY_BYTES = 64 * 1024 * 1024  # base64 images


def create_app(config: MagentoSandboxConfig) -> web.Application:
    faults = Faults(config.faults, seed=config.seed)
    stats = Stats()
    secret = config.callback_secret.get_secret_value() if config.callback_secret else None
    callbacks = WebhookSender(config.callback_url, secret)
    app = web.Application(
        middlewares=[
            error_middleware,
            stats.middleware(),
            faults.middleware(error_response),
            scope_middleware,
            auth_middleware(Authenticator(config)),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CONFIG] = config
    app[STATE] = build_state(config)
    app[CALLBACKS] = callbacks
    app[FAULTS] = faults
    app[STATS] = stats

    routes = RestRoutes(app)
    store.register(routes)
    attributes.register(routes)
    products.register(routes)
    tier_prices.register(routes)
    media.register(routes)
    inventory.register_legacy(routes)
    products.register_by_sku(routes)
    configurable.register(routes)
    categories.register(routes)
    if config.msi:
        inventory.register_msi(routes)
    customers.register(routes)
    tier_prices.register_groups(routes)
    countries.register(routes)
    orders.register(routes)
    shipments.register(routes)

    sandbox_routes.register(app)
    faults.add_routes(app)
    stats.add_routes(app)

    async def close_callbacks(_: web.Application) -> None:
        await callbacks.close()

    app.on_cleanup.append(close_callbacks)
    return app
