"""The id mapping between Cloud Retailer and Magento records, kept in Redis (the binder of ERP connectors).

One pair of hashes per kind: `keys.binding(kind, "cr")` (Cloud Retailer id -> Magento id) and
`keys.binding(kind, "mg")` (the reverse). Both directions are written in one MULTI so a reader never sees half a
binding. `bind_new` refuses to overwrite, so two racing creators learn which of them won.
"""

from __future__ import annotations

from redis.asyncio import Redis

from crmcore import keys

# Atomically bind unless either side is bound already; returns the existing counterpart or nil.
_BIND_NEW_LUA = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return {'cr', existing} end
existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing then return {'mg', existing} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return false
"""


def _keys(kind: str) -> tuple[str, str]:
    return keys.binding(kind, "cr"), keys.binding(kind, "mg")


class Binder:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._bind_new = redis.register_script(_BIND_NEW_LUA)

    async def magento_id(self, kind: str, cr_id: str) -> str | None:
        value = await self.redis.hget(_keys(kind)[0], cr_id)
        return value.decode() if value is not None else None

    async def cr_id(self, kind: str, magento_id: str | int) -> str | None:
        value = await self.redis.hget(_keys(kind)[1], str(magento_id))
        return value.decode() if value is not None else None

    async def bind(self, kind: str, cr_id: str, magento_id: str | int) -> None:
        """Record (or correct) a binding; drops whatever either side was bound to before."""
        to_mg, to_cr = _keys(kind)
        old_mg, old_cr = await self.magento_id(kind, cr_id), await self.cr_id(kind, magento_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if old_mg is not None and old_mg != str(magento_id):
                pipe.hdel(to_cr, old_mg)
            if old_cr is not None and old_cr != cr_id:
                pipe.hdel(to_mg, old_cr)
            pipe.hset(to_mg, cr_id, str(magento_id))
            pipe.hset(to_cr, str(magento_id), cr_id)
            await pipe.execute()

    async def bind_new(self, kind: str, cr_id: str, magento_id: str | int) -> tuple[str, str] | None:
        """Bind only if neither side is bound. Returns None when bound now, else ('cr'|'mg', counterpart)."""
        result = await self._bind_new(keys=list(_keys(kind)), args=[cr_id, str(magento_id)])
        if not result:
            return None
        side, other = result
        return side.decode(), other.decode()

    async def unbind(self, kind: str, cr_id: str) -> None:
        to_mg, to_cr = _keys(kind)
        magento_id = await self.magento_id(kind, cr_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(to_mg, cr_id)
            if magento_id is not None:
                pipe.hdel(to_cr, magento_id)
            await pipe.execute()
