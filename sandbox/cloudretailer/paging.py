"""Cursor paging ordered by (updated_at, id), and the query parameters every listing shares.

Why keyset paging on (updated_at, id): every write gives the record a new updated_at larger than any
before it (see `Clock`), so a record changed while a client pages moves *behind* the cursor's position,
never in front of it. A record not read yet is therefore never skipped, and a version already read is
never returned twice; a record changed after it was read shows up again later with its new version, which
is the change the client needs anyway. Offsets would skip or repeat rows under the same updates.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiohttp import web

from sandbox.cloudretailer.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGING_PARAMS = frozenset({"limit", "cursor"})
Key = tuple[int, str]  # (updated_at in microseconds since the epoch, id)


class Clock:
    """Strictly increasing microsecond timestamps, so no two versions share an updated_at."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        now = time.time_ns() // 1000
        self.last = now if now > self.last else self.last + 1
        return self.last


def iso(us: int) -> str:
    """Fixed-width UTC (`2024-01-01T00:00:00.000000Z`), so string order is time order."""
    seconds, micros = divmod(us, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # Rendering a time is most of the cost of rendering a product; records written within the same second
    # (a whole seeded catalog) share this part.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def parse_iso(value: str, field: str, *, status: int = 400) -> int:
    """ISO-8601 with a zone (`Z` or an offset) -> microseconds since the epoch (UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        message = f"{field} must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z"
        raise ApiError(status, message, field=field) from None
    if parsed.tzinfo is None:
        raise ApiError(status, f"{field} must include a time zone (Z for UTC)", field=field)
    delta = parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    after: Key | None
    since: int | None


def check_params(request: web.Request, allowed: Iterable[str]) -> None:
    """An unknown parameter is a 400 naming it: a typo such as `update_since` must not silently list all."""
    known = set(allowed)
    for name in request.query:
        if name not in known:
            raise ApiError(400, f"unknown query parameter {name!r}; this listing takes {sorted(known)}", field=name)


def page_query(request: web.Request, resource: str, scope: str = "", *, since: bool = True) -> PageQuery:
    q = request.query
    limit = DEFAULT_LIMIT
    if "limit" in q:
        raw = q["limit"]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
        limit = int(raw)
    after = decode_cursor(q["cursor"], resource, scope) if "cursor" in q else None
    since_us = parse_iso(q["updated_since"], "updated_since") if since and "updated_since" in q else None
    return PageQuery(limit, after, since_us)


def encode_cursor(resource: str, scope: str, key: Key) -> str:
    raw = orjson.dumps({"r": resource, "s": scope, "t": key[0], "i": key[1]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, resource: str, scope: str) -> Key:
    # The cursor names its listing, so one from another listing (or store) cannot silently page this one.
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["r"] == resource and data["s"] == scope and isinstance(data["t"], int) and isinstance(data["i"], str):
            return (data["t"], data["i"])
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        pass
    raise ApiError(400, "cursor is not a next_cursor returned by this listing", field="cursor")


class KeysetIndex:
    """Keys sorted by (updated_at, id). New versions always carry the largest updated_at, so `move` is a
    delete plus an append; `insort` covers seeding in any order."""

    def __init__(self) -> None:
        self.keys: list[Key] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: Key) -> None:
        if not self.keys or key > self.keys[-1]:
            self.keys.append(key)
        else:
            insort(self.keys, key)

    def remove(self, key: Key) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def move(self, old: Key, new: Key) -> None:
        self.remove(old)
        self.add(new)

    def page(self, query: PageQuery) -> tuple[list[Key], Key | None]:
        """The keys of one page, and the key to continue after (None on the last page)."""
        start = 0
        if query.since is not None:
            start = bisect_left(self.keys, (query.since, ""))
        if query.after is not None:
            start = max(start, bisect_right(self.keys, query.after))
        keys = self.keys[start : start + query.limit]
        more = start + query.limit < len(self.keys)
        return keys, (keys[-1] if more and keys else None)


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def page_response(items: list[object], resource: str, scope: str, next_key: Key | None) -> web.Response:
    body = {"items": items, "next_cursor": encode_cursor(resource, scope, next_key) if next_key else None}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def single_page(items: list[object]) -> web.Response:
    """Answer for exact-match lookups (`?sku=`, `?email=`, `?external_ref=`): at most one item, no cursor."""
    return web.Response(body=orjson.dumps({"items": items, "next_cursor": None}), content_type="application/json")
