"""Deadlines and a cap for the gateway's client connections: what a slow, silent or hostile client may hold.

aiohttp alone closes nothing in time: it has a keep-alive timeout but no deadline for a request's headers, and
a body is read for as long as the client trickles it. Each phase of a connection therefore has its own
deadline here:

- headers: a request's headers must be complete within `client_header_timeout_seconds`, counted from the
  connection's open or, on a kept-alive connection, from the first byte of the next request;
- idle: between a response and the next request's first byte, `client_idle_seconds`;
- body: the handler reads it under `client_body_timeout_seconds` (`read_body`); a body that does not arrive
  answers 408 and the connection closes at once, without aiohttp's lingering read;
- at most `max_connections` per process: a connection beyond it gets a fixed 503 and is closed, before any
  parser or task exists for it.

`EdgeRunner` installs all of it; `crmagento run`/`serve`, the demo and the tests' gateways start through it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from crmcore.settings import Settings
from gateway.appkeys import SETTINGS
from gateway.gc_tuning import release_free_heap
from gateway.problems import PROBLEM_CONTENT_TYPE, TYPE_BASE, problem

log = structlog.get_logger(__name__)

# How long a refused connection gets to deliver its request before it is closed: closing a socket with unread
# data makes the kernel send a reset, which can destroy the 503 before the client reads it.
REFUSAL_GRACE_SECONDS = 1.0
# Refusals and dropped connections are logged at most this often (with a count): a flood must not become a
# flood of log lines.
LOG_INTERVAL_SECONDS = 10.0
# Give freed request buffers back to the OS once the open connections fell to this fraction of their peak...
TRIM_FALL_FACTOR = 2
# ...if the peak was at least this (a few keep-alive clients coming and going are not worth a trim)...
TRIM_MIN_PEAK = 8
# ...at most once per this many seconds, a little after the fall (the rest of a burst closes meanwhile).
TRIM_INTERVAL_SECONDS = 5.0
TRIM_DELAY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_timeout: float
    body_timeout: float
    idle: float
    max_connections: int
    retry_after_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            header_timeout=settings.client_header_timeout_seconds,
            body_timeout=settings.client_body_timeout_seconds,
            idle=settings.client_idle_seconds,
            max_connections=settings.max_connections,
            retry_after_seconds=settings.retry_after_seconds,
        )


class BodyTimeout(Exception):
    """The client did not send its body within the body timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the body did not arrive within {seconds:g} s")
        self.seconds = seconds

    def answer(self) -> web.Response:
        response = problem(408, "request-timeout", str(self))
        # Not keep-alive: EdgeHandler closes such a connection as soon as the answer is written.
        response.force_close()
        return response


async def read_body(request: web.Request) -> bytes:
    """The request body, read within `client_body_timeout_seconds`; BodyTimeout when the client is too slow."""
    if request.content.is_eof():
        # Already all here (the usual small webhook arrives with its headers): no timer to arm and cancel.
        return await request.read()
    seconds = request.app[SETTINGS].client_body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout(seconds) from None


class _LogBudget:
    """One log line per interval for an event that can happen thousands of times a second."""

    __slots__ = ("_event", "_last", "_skipped")

    def __init__(self, event: str) -> None:
        self._event = event
        self._last = float("-inf")
        self._skipped = 0

    def note(self, **fields: Any) -> None:
        now = time.monotonic()
        if now - self._last < LOG_INTERVAL_SECONDS:
            self._skipped += 1
            return
        log.warning(self._event, not_logged_since_last=self._skipped, **fields)
        self._last, self._skipped = now, 0


def _refusal_bytes(retry_after_seconds: int) -> bytes:
    body = orjson.dumps(
        {
            "type": TYPE_BASE + "too-many-connections",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the gateway has too many open connections; retry later",
        }
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {retry_after_seconds}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Refusal(asyncio.Protocol):
    """A connection over the cap: a fixed 503 (senders retry a 503 with Retry-After; a bare close reads as a
    network fault), then closed once the request has arrived or after a short grace. No parser, no task."""

    __slots__ = ("_answer", "_timer", "_transport")

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._answer)
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_GRACE_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        # What arrived is read (so the close is a FIN, not a reset); the rest of the request is not wanted.
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None


class EdgeServer(web.Server):
    """aiohttp's low-level server with the cap on open connections and EdgeHandler as the protocol."""

    def __init__(self, handler: Any, *, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        # Counted from the protocol's creation, not from connection_made: asyncio accepts a whole backlog's
        # worth of sockets (creating their protocols) before any of them is told it is connected.
        self.open_connections = 0
        self.refused_connections = 0
        self._refusal = _refusal_bytes(limits.retry_after_seconds)
        self._refusals_log = _LogBudget("connections_refused")
        self._peak = 0
        self._last_trim = float("-inf")
        self._trim_handle: asyncio.TimerHandle | None = None

    def __call__(self) -> Any:
        if self.open_connections >= self.limits.max_connections:
            self.refused_connections += 1
            self._refusals_log.note(open=self.open_connections, max_connections=self.limits.max_connections)
            return _Refusal(self._refusal)
        self.open_connections += 1
        self._peak = max(self._peak, self.open_connections)
        return EdgeHandler(self, loop=self._loop, limits=self.limits, **self._kwargs)

    def released(self) -> None:
        """An EdgeHandler's connection is gone."""
        self.open_connections -= 1
        if (
            self._peak >= TRIM_MIN_PEAK
            and self.open_connections * TRIM_FALL_FACTOR <= self._peak
            and self._trim_handle is None
        ):
            when = max(self._loop.time() + TRIM_DELAY_SECONDS, self._last_trim + TRIM_INTERVAL_SECONDS)
            self._trim_handle = self._loop.call_at(when, self._trim)

    def _trim(self) -> None:
        self._trim_handle = None
        self._last_trim = self._loop.time()
        self._peak = self.open_connections
        released = release_free_heap()
        log.info("heap_trimmed", open_connections=self.open_connections, released=released)


class EdgeHandler(RequestHandler):
    """aiohttp's connection protocol with the header and idle deadlines, the 408 close, and problem+json answers
    for requests that are not valid HTTP.

    One timer per connection, re-armed lazily like aiohttp's keep-alive timer: the hot path (a kept-alive
    client's next request) only stores a deadline."""

    __slots__ = ("_deadline", "_deadline_kind", "_idle", "_limits", "_released", "_timer")

    def __init__(self, manager: EdgeServer, *, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._deadline = 0.0  # 0: none (a request is being handled)
        self._deadline_kind = ""
        self._timer: asyncio.TimerHandle | None = None
        self._idle = False
        self._released = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(self._loop.time() + self._limits.header_timeout, "header")

    def data_received(self, data: bytes) -> None:
        if self._idle and data:
            # The next request's first byte: from now on its headers have the header timeout.
            self._idle = False
            self._arm(self._loop.time() + self._limits.header_timeout, "header")
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._deadline = 0.0  # headers complete: the handler (and read_body) owns the time from here

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, started: float | None) -> None:
        # Called once per request, right after the response was written: the point the next deadline starts.
        super().log_access(request, response, started)
        if not request.content.is_eof():
            if not response.keep_alive:
                # A body given up on (408): close now rather than linger for the rest of it.
                self.force_close()
                return
            # The handler answered without reading the body (401, 404): aiohttp reads and drops the rest for up
            # to lingering_time (the body timeout); bytes of that body are not the next request.
            self._arm(self._loop.time() + self._limits.body_timeout, "body")
        elif not self._messages:
            self._idle = True
            self._arm(self._loop.time() + self._limits.idle, "idle")

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # aiohttp's own answer is text/plain with part of the offending line in it: never echo what was sent.
        too_large = isinstance(exc, LineTooLong) or "Too many headers" in str(exc.message)
        log.info("request_unparsable", peer=request.remote, error=type(exc).__name__, too_large=too_large)
        if too_large:
            limit = f"{self.max_field_size} bytes per header line, {self.max_headers} headers"
            response = problem(431, "request-header-fields-too-large", f"the request's header is over {limit}")
        else:
            response = problem(400, "bad-request", "the request is not valid HTTP/1.1")
        response.force_close()
        return response

    def connection_lost(self, exc: BaseException | None) -> None:
        self._deadline = 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        manager = self._manager
        super().connection_lost(exc)
        if not self._released and isinstance(manager, EdgeServer):
            self._released = True
            manager.released()

    def _arm(self, deadline: float, kind: str) -> None:
        self._deadline, self._deadline_kind = deadline, kind
        timer = self._timer
        if timer is not None and timer.when() <= deadline:
            return  # it fires first and re-arms itself for the new deadline
        if timer is not None:
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        deadline = self._deadline
        if not deadline or self.transport is None:
            return
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._expire)
            return
        log.info("client_timed_out", phase=self._deadline_kind, peer=self.peername)
        self.force_close()


class EdgeRunner(web.AppRunner):
    """The gateway's AppRunner: its server is an EdgeServer with the settings' limits."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        limits = EdgeLimits.from_settings(app[SETTINGS])
        kwargs.setdefault("access_log", None)
        # aiohttp's keep-alive timer stays as a backstop only: it would cut a request whose first byte came
        # late in the idle window before its header timeout. The rest of a body answered without reading it
        # (401 before the body) is drained for at most the body timeout.
        kwargs.setdefault("keepalive_timeout", limits.idle + limits.header_timeout)
        kwargs.setdefault("lingering_time", limits.body_timeout)
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        # Rebuilt from what aiohttp put together (app handler, request factory, the handler kwargs it merged in).
        return EdgeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            limits=self.limits,
            **plain._kwargs,  # aiohttp has no public accessor for them
        )
