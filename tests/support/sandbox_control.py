"""The `/_sandbox/` surface both sandbox servers share (fault rules, call stats), driven over HTTP by the
client tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer


class SandboxControl:
    """One running sandbox server: its URL, and its faults and stats."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session
        self.url = str(server.make_url("")).rstrip("/")

    async def faults(self, *rules: dict[str, Any]) -> None:
        async with self.session.put(self.server.make_url("/_sandbox/faults"), json=list(rules)) as resp:
            assert resp.status == 200, await resp.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(self.server.make_url("/_sandbox/faults")) as resp:
            assert resp.status == 200

    async def calls(self, route: str | None = None) -> int:
        """Calls counted so far: all of them, or those to one "METHOD /route/{template}"."""
        async with self.session.get(self.server.make_url("/_sandbox/stats")) as resp:
            stats = await resp.json()
        return stats["total"] if route is None else stats["calls"].get(route, 0)

    async def reset_stats(self) -> None:
        async with self.session.delete(self.server.make_url("/_sandbox/stats")) as resp:
            assert resp.status == 200

    async def clear_faults_after(self, route: str, attempts: int, within: float = 10.0) -> int:
        """Clear the faults as soon as `attempts` calls to `route` arrived; returns the count seen then.
        The client's retry delay must be long against this poll (tens of ms) for the count to be exact."""
        deadline = time.monotonic() + within
        while (seen := await self.calls(route)) < attempts:
            assert time.monotonic() < deadline, f"only {seen} calls to {route}"
            await asyncio.sleep(0.005)
        await self.clear_faults()
        return seen
