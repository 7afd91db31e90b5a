"""What a worker's handlers share for the life of the worker process: the API clients, opened once, and the
cache of what the remotes say about themselves.

A worker without Magento or Cloud Retailer configured still runs (tests register their own handlers); a
handler that needs a missing client raises MisconfiguredError naming the variable to set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crmcore.remotes import Remote
from crmcore.settings import Settings, env_name
from workers.clients.cloudretailer import CloudRetailerClient
from workers.clients.magento import MagentoClient
from workers.errors import MisconfiguredError

T = TypeVar("T")


class MetadataCache(dict[str, Any]):
    """The one cache of slow-changing remote metadata (attribute sets and options, the store's root category,
    countries and regions, the inventory mode, the linked website's store views), per worker, under a key
    named by the domain that owns it. Kept in memory only: it is as cheap to read again as it is to lose.

    `get_or_load` is the way to read it: one load at a time per key (handlers asking together wait for the
    same load), again after `ttl_s` (None: until `drop`) or when `stale` says so. Being a dict too lets code
    in workers/sync that still keeps its own entries (get, setdefault, pop) share the same entries until it
    switches."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = None,
        stale: Callable[[T, float], bool] | None = None,
    ) -> T:
        """The value under `key`, loaded when missing, older than `ttl_s`, or `stale(value, age in s)`."""
        if self._fresh(key, ttl_s, stale):
            return self[key]
        async with self._locks.setdefault(key, asyncio.Lock()):
            if not self._fresh(key, ttl_s, stale):
                value = await load()
                self[key], self._loaded_at[key] = value, time.monotonic()
        return self[key]

    def drop(self, key: str) -> None:
        """Forget `key` (the remote changed): the next read loads it again."""
        self.pop(key, None)
        self._loaded_at.pop(key, None)

    def _fresh(self, key: str, ttl_s: float | None, stale: Callable[[Any, float], bool] | None) -> bool:
        if key not in self:
            return False
        age = time.monotonic() - self._loaded_at.get(key, time.monotonic())
        return (ttl_s is None or age < ttl_s) and not (stale is not None and stale(self[key], age))


@dataclass
class Services:
    magento_client: MagentoClient | None = None
    cr_client: CloudRetailerClient | None = None
    caches: MetadataCache = field(default_factory=MetadataCache)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        magento = MagentoClient(settings) if settings.magento_url else None
        cr = CloudRetailerClient(settings) if settings.cr_url else None
        return cls(magento, cr)

    @property
    def magento(self) -> MagentoClient:
        if self.magento_client is None:
            raise MisconfiguredError(env_name("magento_url"), "not set (nor its credentials)", remote=Remote.MAGENTO)
        return self.magento_client

    @property
    def cr(self) -> CloudRetailerClient:
        if self.cr_client is None:
            raise MisconfiguredError(
                env_name("cr_url"), "not set (nor CRMAGENTO_CR_API_KEY)", remote=Remote.CLOUDRETAILER
            )
        return self.cr_client

    async def close(self) -> None:
        for client in (self.magento_client, self.cr_client):
            if client is not None:
                await client.close()
