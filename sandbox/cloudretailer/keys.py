"""Typed application keys shared by the route modules, and the one way they send webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
from sandbox.cloudretailer.state import State
from sandbox.faults import Faults
from sandbox.stats import Stats
from sandbox.webhooks_out import WebhookSender, suppressed

BASE = "/api/v1"

CONFIG = web.AppKey("cr_config", CloudRetailerSandboxConfig)
STATE = web.AppKey("cr_state", State)
SENDER = web.AppKey("cr_webhooks", WebhookSender)
FAULTS = web.AppKey("cr_faults", Faults)
STATS = web.AppKey("cr_stats", Stats)


def state(request: web.Request) -> State:
    return request.app[STATE]


def emit(request: web.Request, event_type: str, data: dict[str, Any]) -> None:
    """Send the change signal for a write that is already stored (so the gateway's fetch sees it), unless
    the request asked for a lost delivery with X-Sandbox-Suppress-Webhook."""
    request.app[SENDER].emit(event_type, data, suppress=suppressed(request.headers))
