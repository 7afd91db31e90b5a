"""The admin dashboard at /admin/ui: one static page (HTML, JS, CSS under gateway/static/, no build step).

The files themselves are public (gateway/guards.py lets /admin/ui through): they hold no data. The page asks for an
admin token, keeps it in the tab's sessionStorage and sends it as `Authorization: Bearer` on every call to the
admin API, which stays behind the same auth as for the CLI. Only the files listed in ASSETS are served, read
once at start-up, so no request path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.guards import public

PREFIX = "/admin/ui"
STATIC_DIR = Path(__file__).with_name("static")
INDEX = "index.html"
ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}

# The page loads only its own script and style and talks only to this origin: an injected string can neither
# run nor send the token elsewhere. No framing (clickjacking of the Replay and Resync buttons).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Always revalidate: after an upgrade the browser must not mix an old script with a new API.
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str]]:
    files = {INDEX: "text/html", **ASSETS}
    return {name: ((STATIC_DIR / name).read_bytes(), ctype) for name, ctype in files.items()}


def add_routes(app: web.Application) -> None:
    files = _load()

    def respond(name: str) -> web.Response:
        body, ctype = files[name]
        return web.Response(body=body, content_type=ctype, charset="utf-8", headers=_HEADERS)

    async def index(request: web.Request) -> web.Response:
        return respond(INDEX)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["asset"]
        if name not in ASSETS:
            raise web.HTTPNotFound(text="no such dashboard file")
        return respond(name)

    app.router.add_get(PREFIX, public(index))
    app.router.add_get(PREFIX + "/{asset}", public(asset))
