"""Magento's web API error bodies and status codes (`Framework/Webapi/ErrorProcessor.php`).

Bodies are `{"message": "...%1...", "parameters": [...] | {...}}`; `parameters` appears only when the message
has placeholders, `errors` only for aggregated validation failures. 400 = LocalizedException (input, state,
could-not-save), 401 = authentication/authorization, 404 = no such entity and unknown routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

Parameters = list[Any] | dict[str, Any] | None

NO_ROUTE = "Request does not match any route."
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
PRODUCT_NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."
ENTITY_NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."
URL_KEY_EXISTS = "URL key for specified store already exists."


class MagentoError(Exception):
    def __init__(
        self, status: int, message: str, parameters: Parameters = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.errors:
            out["errors"] = self.errors
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def error_response(status: int, message: str, parameters: Parameters = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(MagentoError(status, message, parameters).body()),
        content_type="application/json",
    )


# --- the exceptions Magento's services throw, by name ------------------------------------------------------


def no_route() -> MagentoError:
    return MagentoError(404, NO_ROUTE)


def not_authorized(resource: str) -> MagentoError:
    return MagentoError(401, NOT_AUTHORIZED, {"resources": resource})


def product_not_found() -> MagentoError:
    return MagentoError(404, PRODUCT_NOT_FOUND)


def no_such_entity(field: str, value: Any) -> MagentoError:
    """`NoSuchEntityException::singleField`."""
    return MagentoError(404, "No such entity with %fieldName = %fieldValue", {"fieldName": field, "fieldValue": value})


def required_field(field: str) -> MagentoError:
    """`InputException::requiredField`."""
    return MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": field})


def invalid_field_value(field: str, value: Any) -> MagentoError:
    """`InputException::invalidFieldValue`."""
    return MagentoError(
        400, 'Invalid value of "%value" provided for the %fieldName field.', {"fieldName": field, "value": value}
    )


def bad_request(message: str, *parameters: Any) -> MagentoError:
    return MagentoError(400, message, list(parameters) or None)


# --- middleware -------------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure on the REST surface into Magento's body; unknown routes and methods are 404 there
    (Magento's router matches method and path together, it never answers 405)."""
    try:
        return await handler(request)
    except MagentoError as exc:
        return web.Response(status=exc.status, body=orjson.dumps(exc.body()), content_type="application/json")
    except web.HTTPException as exc:
        if request.path.startswith("/rest/") and exc.status in (404, 405):
            return error_response(404, NO_ROUTE)
        raise
    except (ConnectionResetError, TimeoutError):
        raise  # injected faults: let the connection drop
    except Exception:
        # Production mode masks internals behind a report id; the traceback stays in our log.
        report = f"webapi-{uuid.uuid4().hex[:13]}"
        log.exception("magento_sandbox_internal_error", report=report, path=request.path)
        return error_response(500, f"Internal Error. Details are available in Magento log file. Report ID: {report}")
