"""The senders' side of the wire: the sandboxes post their signed webhooks here, and the relay delivers them
to the gateway the way a production sender does.

Why a relay: the sandbox senders give up after 5 tries in about 3 s, while Cloud Retailer and the Magento
module retry for far longer (the gateway's 503 + Retry-After contract relies on it). A Redis restart that
outlasts 3 s would otherwise lose webhooks on the sender's side, which is no property of the gateway. The
relay also sees every answer, so "accepted" is counted from what the gateway actually said, per webhook-id.

Modes:
- `forward`: each webhook once, as soon as it arrives (several in flight, so arrival order is not kept).
- `shuffle`: scenario (e). Webhooks are collected in short windows; each window is delivered twice over (both
  copies under the same webhook-id) in a random order, and some copies are held back to a later window.

Every attempt is re-signed (fresh timestamp, same webhook-id and body) with the reference Standard Webhooks
signer, exactly as a sender retrying a delivery does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import orjson
from aiohttp import web

from tests.support.signing import SECRETS, sign_headers

Mode = Literal["forward", "shuffle"]
GIVE_UP_AFTER_S = 900.0  # a sender that retries for 15 minutes: longer than any fault a scenario injects
MAX_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Delivery:
    source: str
    msg_id: str
    body: bytes

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.msg_id}"

    @property
    def event_type(self) -> str:
        try:
            return str(orjson.loads(self.body).get("type", "?"))
        except orjson.JSONDecodeError:
            return "?"


@dataclass
class RelayStats:
    received: int = 0  # webhooks the sandboxes sent (unique webhook-ids)
    posts: int = 0  # HTTP requests made to the gateway (copies and retries included)
    answers: Counter[str] = field(default_factory=Counter)  # gateway answer -> count ("queued", "duplicate", "503"...)
    retries: int = 0  # posts that were a retry after 503/429/connection error
    gave_up: list[str] = field(default_factory=list)  # refs never acknowledged (a failure of the run)
    refused: list[str] = field(default_factory=list)  # refs the gateway answered with another 4xx (a bug)
    by_type: Counter[str] = field(default_factory=Counter)


class Relay:
    def __init__(self, gateway_url: str, *, concurrency: int = 16, window_s: float = 0.5, seed: int = 9) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.mode: Mode = "forward"
        self.stats = RelayStats()
        # refs the gateway acknowledged with a 2xx (queued or duplicate): each must be in the event log.
        self.acknowledged: set[str] = set()
        self.accepted: set[str] = set()  # refs answered 202 queued at least once
        self._rng = random.Random(seed)
        self._window_s = window_s
        self._window: list[Delivery] = []
        self._held: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._in_flight = 0
        self._concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/webhooks/{source}", self._receive)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), connector=aiohttp.TCPConnector(limit=self._concurrency)
        )
        self._tasks = [asyncio.create_task(self._deliverer()) for _ in range(self._concurrency)]
        self._tasks.append(asyncio.create_task(self._windows()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def idle(self) -> bool:
        return self._queue.empty() and self._in_flight == 0 and not self._window and not self._held

    async def wait_idle(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while not self.idle():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _receive(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        msg_id = request.headers.get("webhook-id", "")
        if source not in SECRETS or not msg_id:
            return web.Response(status=400)
        delivery = Delivery(source, msg_id, await request.read())
        self.stats.received += 1
        self.stats.by_type[delivery.event_type] += 1
        if self.mode == "shuffle":
            self._window.append(delivery)
        else:
            self._queue.put_nowait(delivery)
        # The sandbox's job ends here: from now on the relay is the sender's durable outbox.
        return web.Response(status=202)

    async def _windows(self) -> None:
        """shuffle mode: every window, deliver what arrived (twice each) plus what was held, in random order."""
        while True:
            await asyncio.sleep(self._window_s)
            if not self._window and not self._held:
                continue
            copies = [*self._window, *self._window, *self._held]
            self._window, self._held = [], []
            self._rng.shuffle(copies)
            # About a fifth of the copies go out a window later: reordering across windows too, and the second
            # copy of a webhook often arrives after the worker already handled the first.
            keep = len(copies) // 5
            self._held, now = copies[:keep], copies[keep:]
            for delivery in now:
                self._queue.put_nowait(delivery)

    async def _deliverer(self) -> None:
        while True:
            delivery = await self._queue.get()
            self._in_flight += 1
            try:
                await self._deliver(delivery)
            finally:
                self._in_flight -= 1

    async def _deliver(self, d: Delivery) -> None:
        assert self._session is not None
        url = f"{self.gateway_url}/webhooks/{d.source}"
        give_up = time.monotonic() + GIVE_UP_AFTER_S
        backoff = 0.2
        first = True
        while True:
            if not first:
                self.stats.retries += 1
            first = False
            self.stats.posts += 1
            wait = backoff
            try:
                headers = sign_headers(SECRETS[d.source], d.msg_id, d.body)
                async with self._session.post(url, data=d.body, headers=headers) as resp:
                    body = await resp.read()
                    if resp.status < 300:
                        outcome = orjson.loads(body).get("status", str(resp.status))
                        self.stats.answers[outcome] += 1
                        self.acknowledged.add(d.ref)
                        if outcome == "queued":
                            self.accepted.add(d.ref)
                        return
                    self.stats.answers[str(resp.status)] += 1
                    if resp.status not in (429, 503):
                        self.stats.refused.append(f"{d.ref} -> {resp.status} {body[:200]!r}")
                        return
                    with contextlib.suppress(ValueError):
                        wait = min(MAX_RETRY_AFTER_S, float(resp.headers.get("Retry-After", backoff)))
            except (aiohttp.ClientError, TimeoutError, OSError):
                self.stats.answers["connection-error"] += 1
            if time.monotonic() + wait > give_up:
                self.stats.gave_up.append(d.ref)
                return
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, 2.0)
