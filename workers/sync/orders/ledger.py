"""The ledger of held units: per Magento order not yet a Cloud Retailer sale, the units Magento already took
out of its own count (held.py says which), and their sum per place and SKU, which the stock sync subtracts
from Cloud Retailer's on-hand before it writes (workers/sync/inventory/).

Kept in Redis (`keys.HELD_ORDERS`, `keys.HELD_UNITS`) but only as a copy: it is rebuilt from Magento's orders
and shipments when lost (refresh.py). Each order's entry is replaced whole, by one script that also moves the
sums, so writing the same order again (a retried job, two workers refreshing, a callback and the poll) changes
nothing; and the script holds nothing for an order whose marker says its sale is recorded, so an import that
released the order cannot be undone by a refresh that read Magento a moment before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

from crmcore import keys
from workers.sync.orders import markers
from workers.sync.orders.held import Place, Units

# KEYS: held orders, held units, the order's marker.  ARGV: order id, entry JSON {"n": increment id,
# "u": [[field, units]...]} or '' to release.  Returns how many places the order now holds units at.
SET_HELD_LUA = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  for _, u in ipairs(cjson.decode(old)['u']) do
    local left = tonumber(redis.call('HINCRBYFLOAT', KEYS[2], u[1], -u[2]))
    if left < 0.00005 then redis.call('HDEL', KEYS[2], u[1]) end
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if ARGV[2] == '' or redis.call('HGET', KEYS[3], 'state') == '%(imported)s' then return 0 end
local entry = cjson.decode(ARGV[2])
if #entry['u'] == 0 then return 0 end
for _, u in ipairs(entry['u']) do redis.call('HINCRBYFLOAT', KEYS[2], u[1], u[2]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return #entry['u']
""" % {"imported": markers.IMPORTED}


def field(place: Place, sku: str) -> str:
    # JSON, so no SKU (which may hold any character) can make two fields look alike.
    return orjson.dumps([place, sku]).decode()


def _number(raw: Any) -> float:
    return round(float(raw), 4) if raw is not None else 0.0


class Ledger:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._set = redis.register_script(SET_HELD_LUA)

    async def hold(self, order_id: int, increment_id: str, units: Units) -> int:
        """Replace what the order holds (an empty `units` releases it)."""
        entry = {"n": increment_id, "u": [[field(place, sku), qty] for (place, sku), qty in sorted(units.items())]}
        keys_ = [keys.HELD_ORDERS, keys.HELD_UNITS, markers.marker_key(increment_id)]
        return int(await self._set(keys=keys_, args=[str(order_id), orjson.dumps(entry).decode()]))

    async def release(self, order_id: int, increment_id: str) -> None:
        """The order's sale is recorded: it holds nothing any more."""
        await self._set(
            keys=[keys.HELD_ORDERS, keys.HELD_UNITS, markers.marker_key(increment_id)], args=[str(order_id), ""]
        )

    async def held(self, place: Place, skus: Iterable[str]) -> dict[str, float]:
        """sku -> units held at `place` (0 for a SKU nothing holds)."""
        wanted = list(dict.fromkeys(skus))
        if not wanted:
            return {}
        raw = await self.redis.hmget(keys.HELD_UNITS, [field(place, sku) for sku in wanted])
        return {sku: _number(value) for sku, value in zip(wanted, raw, strict=True)}

    async def all_held(self, place: Place) -> dict[str, float]:
        """Every SKU with units held at `place` (a reconciliation reads them all at once: they are few)."""
        out: dict[str, float] = {}
        for name, value in (await self.redis.hgetall(keys.HELD_UNITS)).items():
            where, sku = orjson.loads(name)
            if where == place and _number(value) > 0:
                out[sku] = _number(value)
        return out

    async def orders(self) -> dict[int, str]:
        """order id -> increment id of every order holding units."""
        raw = await self.redis.hgetall(keys.HELD_ORDERS)
        return {int(k): str(orjson.loads(v)["n"]) for k, v in raw.items()}

    async def sweep(self) -> int:
        """Release the orders whose sale is recorded but which still hold units (a worker stopped between the
        two writes). Returns how many."""
        held = await self.orders()
        if not held:
            return 0
        states = await markers.states(self.redis, list(held.values()))
        done = [(order_id, n) for order_id, n in held.items() if states.get(n) == markers.IMPORTED]
        for order_id, increment_id in done:
            await self.release(order_id, increment_id)
        return len(done)
