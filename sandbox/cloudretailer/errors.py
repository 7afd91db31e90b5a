"""The API's error body, `{"error": {"code", "message", "field"?}}`, and the middleware that renders every
failure (our own, aiohttp's routing errors, fault injection) in that one shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

# HTTP status -> the `code` used when nothing more specific applies. Documented in docs/cloudretailer-api.md.
DEFAULT_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """Raised by handlers; `extra` adds top-level members beside `error` (e.g. `existing` on a 409)."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or DEFAULT_CODES.get(status, "error")
        self.message = message
        self.field = field
        self.extra = extra


def error_response(
    status: int, message: str, *, code: str | None = None, field: str | None = None, **extra: Any
) -> web.Response:
    error: dict[str, Any] = {"code": code or DEFAULT_CODES.get(status, "error"), "message": message}
    if field is not None:
        error["field"] = field
    return web.Response(status=status, body=orjson.dumps({"error": error, **extra}), content_type="application/json")


def fault_body(status: int, message: str) -> web.Response:
    """What sandbox/faults.py answers with (429, 5xx), in this API's shape."""
    return error_response(status, message)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, code=exc.code, field=exc.field, **exc.extra)
    except web.HTTPException as exc:
        # Routing errors (404 no route, 405, 413 body too large) come from aiohttp as exceptions.
        if exc.status < 400:
            raise
        resp = error_response(exc.status, _routing_message(request, exc))
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("cloudretailer_sandbox_error", method=request.method, path=request.path)
        return error_response(500, "Internal error in the sandbox (see its log).")


def _routing_message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"No route {request.method} {request.path}."
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}."
    if exc.status == 413:
        return "The request body is too large."
    return exc.reason
