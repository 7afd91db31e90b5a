"""No-op detection: a hash of the last payload written to Magento per record. A sync whose payload hashes
the same makes no Magento call. Losing these hashes costs writes, never correctness (the next sync writes
and records again)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import keys


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Fingerprints:
    def __init__(self, redis: Redis, kind: str) -> None:
        self.redis = redis
        self.key = keys.fingerprints(kind)

    async def unchanged(self, record_key: str, payload: Any) -> bool:
        stored = await self.redis.hget(self.key, record_key)
        return stored is not None and stored.decode() == fingerprint(payload)

    async def known(self, record_key: str) -> bool:
        return bool(await self.redis.hexists(self.key, record_key))

    async def remember(self, record_key: str, payload: Any) -> None:
        await self.redis.hset(self.key, record_key, fingerprint(payload))

    async def forget(self, record_key: str) -> None:
        await self.redis.hdel(self.key, record_key)


class AppliedVersions:
    """The Cloud Retailer version (`updated_at`) each record was last brought to Magento at. The catch-up
    skips a record whose listed version is the one applied already, so a stream of changes the webhooks
    handled does not come back as a burst of no-op jobs every catch-up. Losing these only costs such jobs."""

    def __init__(self, redis: Redis, kind: str) -> None:
        self.redis = redis
        self.key = keys.applied(kind)

    async def record(self, record_id: str, version: str | None) -> None:
        if version:
            await self.redis.hset(self.key, record_id, version)

    async def many(self, record_ids: list[str]) -> list[str | None]:
        if not record_ids:
            return []
        values = await self.redis.hmget(self.key, record_ids)
        return [v.decode() if v is not None else None for v in values]
