"""What every route shares: problem+json for every error, the admin bearer check, and 404/405 for the rest.

Not aiohttp middlewares: a middleware wraps every request, and the webhook path is the gateway's hot path.
Measured with bench/ingest.py, the three layers (problems, admin auth, and the one aiohttp adds when an app
has middlewares) cost about 6 us of the gateway's ~80 us per delivery (docs/performance.md). So each other
handler is wrapped where it is registered (`public`, `admin_only`), the webhook handler turns its own
failures into answers with `error_answer`, and a catch-all route (`add_fallback`, registered last) answers
what no route matches.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from gateway.appkeys import ADMIN_TOKENS, AUTH_LIMITER, SETTINGS, TRUSTED_PROXIES
from gateway.authlimit import client_address
from gateway.problems import problem

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FALLBACK_ROUTE = "fallback"
_SLUGS = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer for an exception a handler let out. Redirects (HTTPException below 400) are re-raised."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(exc.status, _SLUGS.get(exc.status, "http-error"), exc.text or exc.reason, headers=headers)
    if isinstance(exc, RedisError | OSError):
        # Redis went away under an admin read or a replay: the caller should retry, not see an internal error.
        log.warning("redis_unavailable", path=request.path, method=request.method, error=type(exc).__name__)
        retry_after = str(request.app[SETTINGS].retry_after_seconds)
        return problem(
            503, "redis-unavailable", "Redis is not answering; retry later", headers={"Retry-After": retry_after}
        )
    log.error("unhandled_error", path=request.path, method=request.method, exc_info=exc)
    return problem(500, "internal-error", "the gateway failed to handle this request; it has been logged")


def authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        # aiohttp keeps undecodable header bytes as surrogates; such a token can match nothing.
        given = token.strip().encode("utf-8")
    except UnicodeEncodeError:
        return False
    ok = False
    for expected in request.app[ADMIN_TOKENS]:
        ok |= hmac.compare_digest(given, expected)
    return ok


def admin_refusal(request: web.Request) -> web.Response | None:
    """None when the request carries an admin token; otherwise the answer: 401, or 429 while its address is
    blocked for failing too often (gateway/authlimit.py)."""
    limiter = request.app[AUTH_LIMITER]
    address = client_address(request, request.app[TRUSTED_PROXIES])
    wait = limiter.retry_after(address)
    if wait is not None:
        return problem(
            429,
            "too-many-failed-sign-ins",
            f"too many failed admin sign-ins from this address; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if authorized(request):
        return None
    limiter.failed(address)
    log.info("admin_auth_refused", client=address, path=request.path)
    return _unauthorized()


def _unauthorized() -> web.Response:
    return problem(
        401,
        "unauthorized",
        "send Authorization: Bearer <one of CRMAGENTO_ADMIN_TOKENS>",
        headers={"WWW-Authenticate": 'Bearer realm="crmagento-admin"'},
    )


def public(handler: Handler) -> Handler:
    """A route anyone may call; its errors still answer as problem+json."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            return error_answer(request, exc)

    return guarded


def admin_only(handler: Handler) -> Handler:
    """A route behind `Authorization: Bearer <one of CRMAGENTO_ADMIN_TOKENS>`."""
    answered = public(handler)

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        refusal = admin_refusal(request)
        if refusal is not None:
            return refusal
        return await answered(request)

    return checked


def _is_admin_path(path: str) -> bool:
    # The dashboard's own files (gateway/dashboard.py) are public; anything else under /admin/, even a path
    # that does not exist, answers 401 before 404 so the admin API's shape is not shown to strangers.
    return path.startswith("/admin/") and not (path == "/admin/ui" or path.startswith("/admin/ui/"))


async def _fallback(request: web.Request) -> web.Response:
    if _is_admin_path(request.path):
        refusal = admin_refusal(request)
        if refusal is not None:
            return refusal
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name == FALLBACK_ROUTE:
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        return problem(
            405,
            "method-not-allowed",
            f"{request.method} is not allowed here",
            headers={"Allow": ",".join(sorted(allowed))},
        )
    return problem(404, "not-found", "no such route")


def add_fallback(app: web.Application) -> None:
    """Register last: the router tries it only after every other route."""
    app.router.add_route("*", "/{path:.*}", _fallback, name=FALLBACK_ROUTE)
