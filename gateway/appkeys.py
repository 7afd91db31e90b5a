"""Typed application keys (aiohttp `AppKey`) shared by the route modules and the app factory."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from crmcore.entityqueue import EntityQueue
from crmcore.events import Source
from crmcore.settings import Settings
from gateway.authlimit import FailedAuthLimiter, Network
from gateway.ingest import Ingestor
from gateway.metrics import Metrics
from gateway.signatures import Verifier

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
QUEUE = web.AppKey("entity_queue", EntityQueue)
INGESTOR = web.AppKey("ingestor", Ingestor)
METRICS = web.AppKey("metrics", Metrics)
VERIFIERS = web.AppKey("verifiers", dict[Source, Verifier])
ADMIN_TOKENS = web.AppKey("admin_tokens", tuple[bytes, ...])
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])
