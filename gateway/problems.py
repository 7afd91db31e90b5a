"""RFC 9457 problem details: every error the gateway answers is one of these."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "urn:crmagento:problem:"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def field_errors(errors: list[dict[str, Any]], prefix: str = "") -> list[dict[str, str]]:
    """pydantic errors -> [{"field": "data.sku", "reason": "..."}] (input values are not echoed)."""
    out = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", "reason": err["msg"]})
    return out


def body_refused(exc: ValidationError) -> web.Response:
    """An admin request body the model refused: 400 `bad-body` when it is not JSON at all, else 422
    `invalid-body` naming every field that is wrong."""
    errors = exc.errors(include_input=False, include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "bad-body", "the body is not valid JSON")
    errs = field_errors(errors)
    return problem(422, "invalid-body", f"invalid {', '.join(e['field'] for e in errs)}", errors=errs)


def bad_parameter(field: str, reason: str) -> web.Response:
    """A query parameter that is not one of the values the route takes."""
    return problem(400, "bad-parameter", f"{field}: {reason}", errors=[{"field": field, "reason": reason}])
