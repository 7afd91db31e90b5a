"""Redis connections for the gateway (redis-py) and the worker (arq), from CRMAGENTO_REDIS_URL or through
Redis Sentinel (CRMAGENTO_REDIS_SENTINELS + CRMAGENTO_REDIS_SENTINEL_MASTER).

With Sentinels, every connection asks them where the master is when it connects, so after a failover the
next connection (the gateway's pool, the ingest's script connection, a worker rebuilt after the drop) goes
to the new master. The URL then only carries password, database and TLS.
"""

from __future__ import annotations

from typing import Any, TypeVar

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from crmcore.settings import Settings

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


def redis_from_settings(settings: Settings, *, max_connections: int = 64) -> Redis:
    """The gateway's client: to the URL, or to the master the Sentinels name."""
    if settings.redis_sentinels:
        return _sentinel_master(
            settings,
            SentinelRedis,
            socket_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=15,
            max_connections=max_connections,
        )
    if settings.redis_url is None:
        raise ValueError("no Redis configured (CRMAGENTO_REDIS_URL or CRMAGENTO_REDIS_SENTINELS)")
    return create_redis(settings.redis_url.get_secret_value(), max_connections=max_connections)


def arq_redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = int(CONNECT_TIMEOUT_S)
    settings.conn_retries = 3
    return settings


def arq_worker_redis(settings: Settings, *, queue_name: str, serializer: Any, deserializer: Any) -> dict[str, Any]:
    """The Redis keyword arguments of an arq `Worker`.

    A URL goes through arq's own `RedisSettings` (arq connects, with retries). Sentinels get a ready
    `ArqRedis` on a Sentinel pool instead of arq's `RedisSettings(sentinel=True)`: arq's sentinel path sets
    no connect or socket timeout (a master or Sentinel host that went dark hangs the worker instead of
    failing over) and cannot send a password to the Sentinels. `run_worker` rebuilds the Worker, and so this
    pool, after every drop, which is what arq's own connect retries would have given."""
    if not settings.redis_sentinels:
        assert settings.redis_url is not None, "no Redis configured"
        return {"redis_settings": arq_redis_settings(settings.redis_url.get_secret_value())}
    pool = _sentinel_master(settings, SentinelArqRedis)
    # What arq's create_pool sets on the pools it makes: jobs the worker enqueues (crons, retries) use them.
    pool.job_serializer = serializer
    pool.job_deserializer = deserializer
    pool.default_queue_name = queue_name
    return {"redis_pool": pool}


class _ClosesSentinels:
    """Closing the master's client also closes the clients of the Sentinels it asked (redis-py's Sentinel
    has no close of its own, and leaves their connections to the garbage collector)."""

    connection_pool: Any
    auto_close_connection_pool: bool

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)  # type: ignore[misc]
        closes_pool = self.auto_close_connection_pool if close_connection_pool is None else close_connection_pool
        if closes_pool and isinstance(self.connection_pool, SentinelConnectionPool):
            for sentinel in self.connection_pool.sentinel_manager.sentinels:
                await sentinel.aclose()


class SentinelRedis(_ClosesSentinels, Redis):
    pass


class SentinelArqRedis(_ClosesSentinels, ArqRedis):
    pass


R = TypeVar("R", bound=Redis)


def _sentinel_master(settings: Settings, redis_class: type[R], **extra: Any) -> R:
    master_kwargs: dict[str, Any] = {}
    if settings.redis_url is not None:
        # username, password, db and TLS options (query string) of the URL; settings refused a host in it.
        master_kwargs = dict(parse_url(settings.redis_url.get_secret_value()))
        if master_kwargs.pop("connection_class", None) is SSLConnection:
            master_kwargs["ssl"] = True  # the Sentinel pool picks its TLS connection class from this flag
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
    }
    if settings.redis_sentinel_password is not None:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    sentinel = Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs=sentinel_kwargs,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        **master_kwargs,
    )
    assert settings.redis_sentinel_master is not None  # settings enforce it with the Sentinels
    return sentinel.master_for(settings.redis_sentinel_master, redis_class=redis_class, **extra)  # type: ignore[no-any-return]


def describe(settings: Settings) -> dict[str, Any]:
    """Where Redis is, for log lines: never a password."""
    if settings.redis_sentinels:
        return {"sentinels": settings.redis_sentinels, "sentinel_master": settings.redis_sentinel_master}
    if settings.redis_url is not None:
        return {"url": redacted(settings.redis_url.get_secret_value())}
    return {}


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
