"""Redis connections from CRMAGENTO_REDIS_URL, for the gateway (redis-py) and the worker (arq)."""

from __future__ import annotations

from arq.connections import RedisSettings
from redis.asyncio import Redis

# Short timeouts: a webhook sender waits on us, and a hung Redis must turn into a 503 quickly.
SOCKET_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 2.0


def create_redis(url: str, *, max_connections: int = 64) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=15,
        max_connections=max_connections,
    )


def arq_redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = int(CONNECT_TIMEOUT_S)
    settings.conn_retries = 3
    return settings


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
