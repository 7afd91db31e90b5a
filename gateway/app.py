"""The gateway's aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network

from aiohttp import web

from crmcore.entityqueue import EntityQueue
from crmcore.events import Source
from crmcore.redis_conn import redis_from_settings
from crmcore.settings import Settings
from gateway import admin, adminjobs, dashboard, guards, health, initialsync, series, trace, webhooks
from gateway.appkeys import (
    ADMIN_TOKENS,
    AUTH_LIMITER,
    INGESTOR,
    METRICS,
    QUEUE,
    REDIS,
    SETTINGS,
    TRUSTED_PROXIES,
    VERIFIERS,
)
from gateway.authlimit import FailedAuthLimiter
from gateway.ingest import Ingestor
from gateway.metrics import Metrics
from gateway.signatures import Verifier


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    if REDIS not in app:
        app[REDIS] = redis_from_settings(app[SETTINGS])  # the URL's Redis, or the master Sentinels name
        owned = True
    else:
        owned = False
    app[QUEUE] = EntityQueue(app[REDIS], app[SETTINGS].queue_name)
    yield
    if owned:
        await app[REDIS].aclose()


async def _ingestor_ctx(app: web.Application) -> AsyncIterator[None]:
    ingestor = Ingestor(app[QUEUE], app[SETTINGS])
    app[INGESTOR] = ingestor
    await ingestor.start()
    yield
    await ingestor.stop()


def create_app(settings: Settings, *, redis: object | None = None) -> web.Application:
    """Build the gateway. `redis` lets a caller (tests, `run`) share a client it owns."""
    # No middlewares: they would wrap the webhook path too (gateway/guards.py says why and what replaces them).
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[VERIFIERS] = {
        Source.CLOUDRETAILER: Verifier.from_secrets(
            [s.get_secret_value() for s in settings.cr_webhook_secrets], settings.webhook_tolerance_seconds
        ),
        Source.MAGENTO: Verifier.from_secrets(
            [s.get_secret_value() for s in settings.magento_webhook_secrets],
            settings.webhook_tolerance_seconds,
        ),
    }
    app[ADMIN_TOKENS] = tuple(t.get_secret_value().encode() for t in settings.admin_tokens)
    app[AUTH_LIMITER] = FailedAuthLimiter()
    app[TRUSTED_PROXIES] = tuple(ip_network(p, strict=False) for p in settings.trusted_proxies)
    if redis is not None:
        app[REDIS] = redis  # type: ignore[assignment]
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_ingestor_ctx)
    webhooks.add_routes(app)
    admin.add_routes(app)
    adminjobs.add_routes(app)
    initialsync.add_routes(app)
    series.add_routes(app)
    trace.add_routes(app)
    health.add_routes(app)
    dashboard.add_routes(app)
    guards.add_fallback(app)
    return app
