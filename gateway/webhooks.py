"""POST /webhooks/{source}: verify, validate, de-duplicate and queue. Never talks to Magento or Cloud
Retailer; the answer table is in docs/design.md, The webhook contract."""

from __future__ import annotations

import time
from typing import NamedTuple

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from crmcore.entityqueue import ACCEPT_DUPLICATE, ACCEPT_REFUSED, QueuedEvent
from crmcore.events import TYPED_ENVELOPES, Envelope, Source, data_model
from gateway.appkeys import INGESTOR, METRICS, SETTINGS, VERIFIERS
from gateway.connections import BodyTimeout, read_body
from gateway.guards import error_answer
from gateway.ingest import QueueUnavailable
from gateway.problems import field_errors, problem
from gateway.signatures import PendingSignature, SignatureError, Verifier

log = structlog.get_logger(__name__)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def _receive(request: web.Request, source: Source) -> web.Response:
    # One coroutine from request to answer; everything that does not wait is a plain function. Every
    # frame on the stack is resumed again after the queue write, so on this path frames cost throughput.
    started = time.perf_counter()
    app = request.app
    outcome, event_type = "error", "unknown"
    try:
        limit = app[SETTINGS].max_body_bytes
        pending = _refuse_unread(request, limit, app[VERIFIERS][source], source)
        if isinstance(pending, _Refused):
            response, outcome, event_type = pending
            return response
        try:
            body = await read_body(request)
        except web.HTTPRequestEntityTooLarge:
            outcome = "too_large"
            return _too_large(limit)
        except BodyTimeout as exc:
            outcome = "timeout"
            return exc.answer()
        checked = _check(app, source, pending, body)
        if isinstance(checked, _Refused):
            response, outcome, event_type = checked
            return response
        row = checked
        event_type = row.type
        try:
            status = await app[INGESTOR].submit(row)
        except QueueUnavailable as exc:
            outcome = "unavailable"
            retry_after = str(app[SETTINGS].retry_after_seconds)
            return problem(503, "queue-unavailable", f"{exc}; retry later", headers={"Retry-After": retry_after})
        if status == ACCEPT_DUPLICATE:
            outcome = "duplicate"
            return _answer(row.id, b"duplicate", 200)
        if status == ACCEPT_REFUSED:
            # Nothing was stored and a retry would meet the same key: not a 503. The body names no key or id
            # but the sender's own event id; the log has the entity for the operator.
            outcome = "conflict"
            log.warning("webhook_entity_conflict", source=source.value, event_id=row.id, entity=row.entity)
            return problem(409, "entity-conflict", "the event's entity cannot take it; nothing stored", id=row.id)
        outcome = "queued"
        return _answer(row.id, b"queued", 202)
    except Exception as exc:
        # No middleware wraps this route (gateway/guards.py): a bug answers 500 problem+json, logged.
        return error_answer(request, exc)
    finally:
        app[METRICS].webhook(source.value, event_type, outcome, time.perf_counter() - started)


class _Refused(NamedTuple):
    response: web.Response
    outcome: str
    event_type: str


def _refuse_unread(request: web.Request, limit: int, verifier: Verifier, source: Source) -> _Refused | PendingSignature:
    """What can be refused from the headers alone, before the body is read (a sender without a plausible
    signature never gets to make the gateway buffer a body); else the signature the body has to match."""
    if request.content_length is not None and request.content_length > limit:
        return _Refused(_too_large(limit), "too_large", "unknown")
    if not _is_json(request.content_type):
        media = problem(415, "unsupported-media-type", "send the event as application/json")
        return _Refused(media, "unsupported_media", "unknown")
    try:
        return verifier.check_headers(request.headers)
    except SignatureError as exc:
        return _unauthorized(source, exc)


def _unauthorized(source: Source, exc: SignatureError) -> _Refused:
    log.info("webhook_refused", source=source.value, reason=str(exc))
    return _Refused(problem(401, "invalid-signature", str(exc)), "unauthorized", "unknown")


def _check(app: web.Application, source: Source, pending: PendingSignature, body: bytes) -> _Refused | QueuedEvent:
    """Signature, envelope and data: the event as the queue takes it, or the refusal."""
    try:
        signed = app[VERIFIERS][source].check_body(pending, body)
    except SignatureError as exc:
        return _unauthorized(source, exc)

    try:
        typed = TYPED_ENVELOPES[source].validate_json(body)
    except ValidationError:
        return _explain(source, signed.msg_id, body)
    data = typed.data
    return QueuedEvent(
        source.value,
        signed.msg_id,
        typed.type,
        data.entity(source),
        typed.timestamp.isoformat(),
        data.model_dump_json(),
    )


def _explain(source: Source, msg_id: str, body: bytes) -> _Refused:
    """The slow path for what the one-pass validation refused: envelope first (400), then the type (202
    ignored when unknown), then its data (422 naming the field)."""
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail, errs = "the body is not valid JSON", None
        else:
            detail, errs = "the body is not an event envelope {type, timestamp, data}", field_errors(errors)
        return _Refused(problem(400, "bad-envelope", detail, errors=errs, id=msg_id), "bad_request", "unknown")

    model = data_model(source, envelope.type)
    if model is None:
        log.info("webhook_ignored", source=source.value, event_id=msg_id, type=envelope.type)
        return _Refused(_answer(msg_id, b"ignored", 202), "ignored", "unknown")
    try:
        model.model_validate(envelope.data)
    except ValidationError as exc:
        errs = field_errors(exc.errors(include_input=False, include_url=False), prefix="data.")
        names = ", ".join(e["field"] for e in errs)
        return _Refused(
            problem(422, "invalid-data", f"{envelope.type}: invalid {names}", errors=errs, id=msg_id),
            "invalid",
            envelope.type,
        )
    # Only reachable if the one-pass validation and the two steps ever disagree (tests/test_events.py checks
    # they do not): refuse rather than queue what the fast path would not take.
    log.error("webhook_validation_disagrees", source=source.value, event_id=msg_id, type=envelope.type)
    return _Refused(
        problem(400, "bad-envelope", "the event could not be validated", id=msg_id), "bad_request", "unknown"
    )


def _too_large(limit: int) -> web.Response:
    return problem(413, "payload-too-large", f"the body is larger than {limit} bytes")


def _answer(msg_id: str, status: bytes, code: int) -> web.Response:
    # Built as bytes: json_response's dict -> str -> bytes round trip is a visible share of the hot path.
    body = b'{"id":%s,"status":"%s"}' % (orjson.dumps(msg_id), status)
    return web.Response(body=body, status=code, content_type="application/json")


async def cloudretailer(request: web.Request) -> web.Response:
    return await _receive(request, Source.CLOUDRETAILER)


async def magento(request: web.Request) -> web.Response:
    return await _receive(request, Source.MAGENTO)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/cloudretailer", cloudretailer)
    app.router.add_post("/webhooks/magento", magento)
