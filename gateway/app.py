"""The gateway's aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from gateway import admin, adminjobs, dashboard, health, webhooks
from gateway.appkeys import ADMIN_TOKENS, INGESTOR, METRICS, QUEUE, REDIS, SETTINGS, VERIFIERS
from gateway.entityqueue import EntityQueue
from gateway.events import Source
from gateway.ingest import Ingestor
from gateway.metrics import Metrics
from gateway.problems import problem
from gateway.redis_conn import redis_from_settings
from gateway.settings import Settings
from gateway.signatures import Verifier

log = structlog.get_logger(__name__)


@web.middleware
async def problems_middleware(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
    """Every error answer is problem+json, including aiohttp's own 404/405/413."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(exc.status, "http-error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(exc.status, slug, exc.text or exc.reason, headers=headers)
    except (RedisError, OSError) as exc:
        # An admin read or replay while Redis is down: the caller should retry, not see an internal error.
        log.warning("redis_unavailable", path=request.path, method=request.method, error=type(exc).__name__)
        retry_after = str(request.app[SETTINGS].retry_after_seconds)
        return problem(
            503, "redis-unavailable", "Redis is not answering; retry later", headers={"Retry-After": retry_after}
        )
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return problem(500, "internal-error", "the gateway failed to handle this request; it has been logged")


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
    app = web.Application(
        middlewares=[problems_middleware, admin.admin_auth],
        client_max_size=settings.max_body_bytes,
    )
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
    if redis is not None:
        app[REDIS] = redis  # type: ignore[assignment]
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_ingestor_ctx)
    webhooks.add_routes(app)
    admin.add_routes(app)
    adminjobs.add_routes(app)
    health.add_routes(app)
    dashboard.add_routes(app)
    return app
