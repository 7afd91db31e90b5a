"""The gateway under test, served the way `crmagento run` serves it: through gateway.connections.EdgeRunner,
so the client deadlines and the connection cap are part of every test that talks to it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from gateway.connections import EdgeRunner


class GatewayServer(TestServer):
    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return EdgeRunner(self.app, **kwargs)
