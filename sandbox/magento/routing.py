"""Route registration under Magento's URL layout, the store scope a request runs in, and JSON in/out.

Every route is served as `/rest/{store_code}/V1/...` and as `/rest/V1/...` (the `default` store view), and
carries the ACL resource Magento's webapi.xml gives it (used for the 401 body, `anonymous` skips auth).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.errors import MagentoError, no_route, required_field
from sandbox.magento.state import ADMIN_STORE_ID, MagentoState
from sandbox.webhooks_out import WebhookSender

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATE = web.AppKey("magento_state", MagentoState)
CONFIG = web.AppKey("magento_config", MagentoSandboxConfig)
CALLBACKS = web.AppKey("magento_callbacks", WebhookSender)
ACL = web.AppKey("magento_acl", dict)

ANONYMOUS = "anonymous"
PREFIXES = ("/rest/{store_code}/V1", "/rest/V1")


@dataclass(frozen=True, slots=True)
class Scope:
    """The store a request runs in: `all` is the admin store (0), global values."""

    code: str
    store_id: int
    website_id: int

    @property
    def is_global(self) -> bool:
        return self.store_id == ADMIN_STORE_ID


SCOPE = web.RequestKey("magento_scope", Scope)


class RestRoutes:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.acl: dict[AbstractRoute, str] = app.setdefault(ACL, {})

    def add(self, method: str, path: str, handler: Handler, resource: str) -> None:
        for prefix in PREFIXES:
            route = self.app.router.add_route(method, prefix + path, handler)
            self.acl[route] = resource


def resolve_scope(state: MagentoState, code: str) -> Scope:
    if code == "all":
        return Scope("all", ADMIN_STORE_ID, 0)
    view = state.views_by_code.get(code)
    if view is None or not view.is_active:
        # Magento's path processor only strips known store codes; the rest stays in the path and
        # matches no route.
        raise no_route()
    return Scope(view.code, view.id, view.website_id)


@web.middleware
async def scope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.app[ACL].get(request.match_info.route) is not None:
        request[SCOPE] = resolve_scope(request.app[STATE], request.match_info.get("store_code", "default"))
    return await handler(request)


# --- helpers for handlers ---------------------------------------------------------------------------------


def state_of(request: web.Request) -> MagentoState:
    return request.app[STATE]


def scope_of(request: web.Request) -> Scope:
    return request[SCOPE]


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MagentoError(400, "Decoding error.") from None


async def read_param(request: web.Request, name: str, *, kind: type = dict) -> Any:
    """The named top-level body parameter (`{"product": {...}}`), required like the service signature says."""
    body = await read_json(request)
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        raise required_field(name)
    if not isinstance(value, kind):
        raise MagentoError(400, "Decoding error.")
    return value


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def int_param(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    try:
        return int(raw)
    except ValueError:
        raise MagentoError(
            400,
            'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
            {"value": raw, "type": "int"},
        ) from None
