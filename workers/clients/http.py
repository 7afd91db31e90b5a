"""The HTTP plumbing both clients share: one session, a concurrency limit, timeouts, and retries on 429,
5xx, timeouts and connection errors with backoff that honours Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import orjson
import structlog
from yarl import URL

from crmcore.errors import clip
from workers.backoff import retry_delay
from workers.clients.errors import (
    ApiError,
    Conflict,
    NotFound,
    PermanentApiError,
    RemoteUnavailable,
    TransientApiError,
    Unauthorized,
)
from workers.fence import check_fence

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What a remote that is down (maintenance, deploy, proxy without its backend, rate-limit storm) answers. A plain
# 500 is not among them: Magento answers 500 for some records it cannot save, while the rest works.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
# A non-idempotent request (a POST that creates) is only re-sent when the server surely did not act on it.
UNSAFE_RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 10.0
    max_retry_after_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_seconds)
        return retry_delay(attempt, self.base_seconds, self.max_seconds)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content: bytes


@dataclass(frozen=True, slots=True)
class _Failure:
    error: ApiError
    retryable: bool
    retry_after: float | None = None


Signer = Callable[[str, str, Mapping[str, str]], dict[str, str]]
ErrorMessage = Callable[[int, Any, bytes], str]


class HttpApi:
    def __init__(
        self,
        system: str,
        *,
        timeout: float,
        concurrency: int,
        retry: RetryPolicy,
        error_message: ErrorMessage,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.system = system
        self.retry = retry
        self._error_message = error_message
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limit = asyncio.Semaphore(concurrency)
        self._session = session
        self._owns_session = session is None
        self.calls = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, json_serialize=lambda o: orjson.dumps(o).decode()
            )
            # aiohttp re-sends an idempotent request once, at once, when the connection drops. That doubles the
            # attempts the RetryPolicy allows, skips its backoff, and re-sends an OAuth header whose nonce the
            # server may already have seen (a 401 that no retry can fix). Our loop re-signs every attempt.
            self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        url: URL,
        *,
        json: Any = None,
        headers: Mapping[str, str],
        signer: Signer | None = None,
        idempotent: bool | None = None,
        raw: bool = False,
    ) -> Any:
        """Send with retries; returns the parsed JSON (or bytes when `raw`)."""
        idempotent = method != "POST" if idempotent is None else idempotent
        body = orjson.dumps(json) if json is not None else None
        attempt = 0
        while True:
            attempt += 1
            send_headers = dict(headers)
            if body is not None:
                send_headers["Content-Type"] = "application/json"
            if signer is not None:
                send_headers.update(signer(method, str(url), send_headers))
            if method != "GET":
                # A job taken over from a worker thought dead must not write an older state over a newer one.
                await check_fence()
            outcome = await self._attempt(method, url, body, send_headers, idempotent)
            if not isinstance(outcome, _Failure):
                return self._decode(outcome, method, url, raw)
            if not outcome.retryable or attempt > self.retry.retries:
                raise outcome.error
            delay = self.retry.delay(attempt, outcome.retry_after)
            status = outcome.error.status
            log.info("api_retry", system=self.system, status=status, attempt=attempt, delay_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _attempt(
        self, method: str, url: URL, body: bytes | None, headers: Mapping[str, str], idempotent: bool
    ) -> _Answer | _Failure:
        """One try: the answer when it is below 400, else what failed and whether another try may help."""
        try:
            async with self._limit:
                self.calls += 1
                async with self.session.request(method, url, data=body, headers=headers) as resp:
                    content = await resp.read()
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
            # Never reached the server: safe to re-send whatever the method.
            detail = f"cannot connect: {exc}"
            return _Failure(RemoteUnavailable(self.system, None, detail, method=method, path=url.path), True)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            # Reset, dropped or timed out. str() of a timeout is empty: say what happened instead.
            detail = f"{type(exc).__name__}: {str(exc) or 'timed out'}"
            return _Failure(RemoteUnavailable(self.system, None, detail, method=method, path=url.path), idempotent)
        except aiohttp.ClientError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            return _Failure(TransientApiError(self.system, None, detail, method=method, path=url.path), idempotent)
        if status < 400:
            return _Answer(status, content)
        retryable = status in (RETRY_STATUSES if idempotent else UNSAFE_RETRY_STATUSES)
        return _Failure(self._error(status, content, method, url.path), retryable, retry_after)

    def _decode(self, answer: _Answer, method: str, url: URL, raw: bool) -> Any:
        if raw or not answer.content:
            return answer.content if raw else None
        try:
            return orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            # A maintenance page served with 200 by a proxy or CDN, or the storefront because the base URL is
            # wrong: either way the remote is not usable now. The start-up check tells the two apart
            # (workers/availability/checks.py).
            raise RemoteUnavailable(
                self.system,
                answer.status,
                f"the answer is not JSON: {clip(answer.content)!r}",
                method=method,
                path=url.path,
            ) from None

    def _error(self, status: int, content: bytes, method: str, path: str) -> ApiError:
        try:
            parsed = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            parsed = None
        message = self._error_message(status, parsed, content)
        kwargs = {"method": method, "path": path}
        if status in UNAVAILABLE_STATUSES:
            return RemoteUnavailable(self.system, status, message, **kwargs)
        if status in RETRY_STATUSES:
            return TransientApiError(self.system, status, message, **kwargs)
        if status == 404:
            return NotFound(self.system, status, message, **kwargs)
        if status == 409:
            return Conflict(self.system, status, message, body=parsed, **kwargs)
        if status in (401, 403):
            return Unauthorized(self.system, status, message, **kwargs)
        return PermanentApiError(self.system, status, message, **kwargs)


class ApiClient:
    """What both adapters share: the HttpApi they own and an async context to close it."""

    http: HttpApi

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
