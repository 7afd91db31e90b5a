"""The helpers shared instead of each place's own copy: the clock's one format (crmcore/clock.py), the one
length of an error text (crmcore/errors.py) and the workers' one cache of remote metadata (workers/services.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from crmcore import clock
from crmcore.errors import ERROR_TEXT_MAX, clip
from workers.services import MetadataCache, Services


def test_every_moment_is_written_in_utc_with_milliseconds_and_z() -> None:
    assert clock.iso_ms(1_764_417_600_123) == "2025-11-29T12:00:00.123Z"
    assert clock.iso_ms(1_764_417_600_000) == "2025-11-29T12:00:00.000Z"  # fixed width: string order is time order
    plus_two = datetime(2025, 11, 29, 14, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=2)))
    assert clock.iso(plus_two) == "2025-11-29T12:00:00.123Z"
    assert clock.iso(datetime(2025, 11, 29, 12, 0)) == "2025-11-29T12:00:00.000Z"  # naive: taken for UTC
    now = clock.now_ms()
    assert abs(datetime.fromisoformat(clock.utc_now_iso()).timestamp() * 1000 - now) < 5_000
    assert len(clock.id_stamp()) == 14 and clock.id_stamp().isdigit()


def test_an_error_text_is_cut_at_one_length_and_says_so() -> None:
    short = "magento 400: The attribute set does not exist."
    assert clip(short) == short
    assert clip("x" * ERROR_TEXT_MAX) == "x" * ERROR_TEXT_MAX
    cut = clip("x" * (ERROR_TEXT_MAX + 1))
    assert len(cut) == ERROR_TEXT_MAX and cut.endswith("…")
    # A remote's body: decoded, whatever it holds, without decoding all of a large one.
    assert clip(b"<html>\xff</html>") == "<html>\ufffd</html>"
    assert len(clip(b"y" * 10_000_000)) == ERROR_TEXT_MAX


async def test_remote_metadata_is_loaded_once_at_a_time_and_again_when_old_stale_or_dropped() -> None:
    cache = Services().caches
    assert isinstance(cache, MetadataCache)
    loads: list[str] = []

    async def load() -> dict[str, int]:
        loads.append("sets")
        await asyncio.sleep(0.01)
        return {"default": 4}

    together = await asyncio.gather(*(cache.get_or_load("catalog.sets", load, ttl_s=60) for _ in range(5)))
    assert loads == ["sets"] and all(value is together[0] for value in together)  # one load for all five
    assert await cache.get_or_load("catalog.sets", load, ttl_s=60) is together[0]
    await cache.get_or_load("catalog.sets", load, ttl_s=0)  # older than its time to live
    assert len(loads) == 2
    await cache.get_or_load("catalog.sets", load, stale=lambda sets, age: "shoes" not in sets)
    assert len(loads) == 3
    cache.drop("catalog.sets")
    assert "catalog.sets" not in cache
    await cache.get_or_load("catalog.sets", load)  # no time to live: kept until dropped
    await cache.get_or_load("catalog.sets", load)
    assert len(loads) == 4 and cache["catalog.sets"] == {"default": 4}  # the dict face sees the same entries
