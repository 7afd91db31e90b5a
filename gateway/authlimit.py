"""Failed admin sign-ins, counted per client address: after `MAX_FAILURES` within `WINDOW_SECONDS` the address
is answered 429 for `BLOCK_SECONDS`, whatever it sends, so a token cannot be guessed at network speed and a
blocked guesser learns nothing (a right token is refused too while the block lasts).

Counted in the process, not in Redis: a failed sign-in must cost no round trip, and with several gateway
processes an address gets at most `MAX_FAILURES` tries per process per window, which is still a few hundred
guesses a day against a token of 2^64 or more (crmcore/settings.py refuses weaker ones).

Behind a load balancer every request comes from the balancer's address, so one guesser would block every
admin. `CRMAGENTO_TRUSTED_PROXIES` names the proxies whose `X-Forwarded-For` is believed: the client is the
rightmost address in that header that is not itself a trusted proxy (the leftmost entries are whatever the
client chose to send). Off by default: without it the header is ignored, as a client could forge it.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

MAX_FAILURES = 20
WINDOW_SECONDS = 60.0
BLOCK_SECONDS = 60.0
# Addresses remembered at once; the least recently failing is forgotten first. Bounds memory whatever the
# number of addresses an attacker sends from.
MAX_ADDRESSES = 10_000

Network = IPv4Network | IPv6Network


class FailedAuthLimiter:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        block_seconds: float = BLOCK_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_seconds
        self._block = block_seconds
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: OrderedDict[str, float] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it is not blocked."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._blocked_until[address]
            return None
        return max(1, int(left + 0.999))

    def failed(self, address: str) -> None:
        now = self._clock()
        times = self._failures.pop(address, None) or deque()
        times.append(now)
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self._max_failures:
            self._blocked_until[address] = now + self._block
            self._blocked_until.move_to_end(address)
            _trim(self._blocked_until, self._max_addresses)
            return
        self._failures[address] = times  # re-inserted last: the most recent failure is forgotten last
        _trim(self._failures, self._max_addresses)


def _trim(table: OrderedDict[str, object], size: int) -> None:
    while len(table) > size:
        table.popitem(last=False)


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The address failures are counted against: the peer, or, when the peer is a trusted proxy, the client
    it forwarded for."""
    peer = request.remote or ""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            # Appended by a proxy we trust; a value that is not an address means the chain is not what the
            # setting says, so the peer is counted instead of an attacker-chosen string.
            return hop if _parses(hop) else peer
    return hops[0] if hops and _parses(hops[0]) else peer


def _parses(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _is_trusted(text: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in trusted)
