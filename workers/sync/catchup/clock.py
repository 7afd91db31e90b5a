"""Each side's clock as its listings write it, and the cursors kept in Redis.

A cursor is the newest change time handled, written the way that side writes it (Cloud Retailer:
`2024-05-01T12:00:00.000000Z`; Magento: `2024-05-01 12:00:00`, UTC). Both are fixed width, so string order
is time order: that is what lets Redis keep a cursor monotonic without parsing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from crmcore import keys
from workers.clients.magento_time import magento_time, parse_time

CURSORS = keys.CATCHUP_CURSORS  # hash: stream name -> cursor

# Moves the cursor forward only: a run that is cut short, or one racing another (lease lost), never moves
# it back over changes the other already handled.
_ADVANCE_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or ARGV[2] > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
return 0
"""


@dataclass(frozen=True)
class Clock:
    name: str
    write: Callable[[datetime], str]

    def read(self, value: str) -> datetime:
        return parse_time(value)

    def minus(self, value: str, seconds: float) -> str:
        return self.write(self.read(value) - timedelta(seconds=seconds))

    def now_minus(self, seconds: float) -> str:
        return self.write(datetime.now(UTC) - timedelta(seconds=seconds))


def _cr_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


CLOUDRETAILER = Clock("cloudretailer", _cr_time)
MAGENTO = Clock("magento", magento_time)


async def cursors(redis: Redis) -> dict[str, str]:
    raw = await redis.hgetall(CURSORS)
    return {k.decode(): v.decode() for k, v in raw.items()}


async def advance(redis: Redis, stream: str, value: str) -> None:
    await redis.eval(_ADVANCE_LUA, 1, CURSORS, stream, value)
