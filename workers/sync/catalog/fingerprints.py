"""No-op detection: a hash of the last payload written to Magento per record. A sync whose payload hashes
the same makes no Magento call. Losing these hashes costs writes, never correctness (the next sync writes
and records again)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from redis.asyncio import Redis

PREFIX = "crm:fp:"


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Fingerprints:
    def __init__(self, redis: Redis, kind: str) -> None:
        self.redis = redis
        self.key = PREFIX + kind

    async def unchanged(self, record_key: str, payload: Any) -> bool:
        stored = await self.redis.hget(self.key, record_key)
        return stored is not None and stored.decode() == fingerprint(payload)

    async def known(self, record_key: str) -> bool:
        return bool(await self.redis.hexists(self.key, record_key))

    async def remember(self, record_key: str, payload: Any) -> None:
        await self.redis.hset(self.key, record_key, fingerprint(payload))

    async def forget(self, record_key: str) -> None:
        await self.redis.hdel(self.key, record_key)
