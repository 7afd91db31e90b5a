"""Signed Standard Webhooks deliveries from a sandbox to the gateway, the way a real sender behaves:
sent after the change is committed, retried with backoff on failure, never blocking the API call."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from gateway.signatures import signed_headers

log = structlog.get_logger(__name__)

SUPPRESS_HEADER = "X-Sandbox-Suppress-Webhook"


def suppressed(headers: Any) -> bool:
    """A request carrying `X-Sandbox-Suppress-Webhook: 1` makes its change without a delivery (a lost
    webhook, for testing the fallbacks)."""
    return headers.get(SUPPRESS_HEADER, "").strip() in ("1", "true", "yes")


class WebhookSender:
    def __init__(self, url: str | None, secret: str | None, *, attempts: int = 5, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.sent: list[dict[str, Any]] = []  # what was delivered (for /_sandbox inspection and tests)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)

    def emit(self, event_type: str, data: dict[str, Any], *, suppress: bool = False) -> str | None:
        """Schedule a delivery; returns its webhook-id (None when suppressed or not configured)."""
        if suppress or not self.enabled:
            return None
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = orjson.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data})
        task = asyncio.get_running_loop().create_task(self._deliver(msg_id, event_type, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return msg_id

    async def _deliver(self, msg_id: str, event_type: str, body: bytes) -> None:
        assert self.url and self.secret
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        delay = 0.2
        for attempt in range(1, self.attempts + 1):
            # Re-signed per attempt: the timestamp must stay within the receiver's tolerance.
            headers = signed_headers(self.secret, msg_id, body)
            try:
                async with self._session.post(self.url, data=body, headers=headers) as resp:
                    if resp.status < 300:
                        self.sent.append({"id": msg_id, "type": event_type, "status": resp.status})
                        return
                    if 400 <= resp.status < 500 and resp.status not in (408, 429):
                        log.warning("sandbox_webhook_refused", status=resp.status, type=event_type, id=msg_id)
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning("sandbox_webhook_gave_up", type=event_type, id=msg_id)

    async def drain(self, within: float = 10.0) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    async def close(self) -> None:
        await self.drain(2.0)
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
