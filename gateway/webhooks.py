"""POST /webhooks/{source}: verify, validate, de-duplicate and queue. Never talks to Magento or Cloud
Retailer; the answer table is DESIGN.md section 3."""

from __future__ import annotations

import time

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from gateway.appkeys import INGESTOR, METRICS, SETTINGS, VERIFIERS
from gateway.entityqueue import ACCEPT_DUPLICATE
from gateway.events import Envelope, Source, data_model
from gateway.ingest import QueueUnavailable
from gateway.problems import field_errors, problem
from gateway.signatures import SignatureError

log = structlog.get_logger(__name__)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def _receive(request: web.Request, source: Source) -> web.Response:
    started = time.perf_counter()
    app = request.app
    metrics = app[METRICS]
    outcome, event_type = "error", "unknown"
    try:
        response, outcome, event_type = await _handle(request, source)
        return response
    finally:
        metrics.webhook(source.value, event_type, outcome).inc()
        metrics.ingest(source.value).observe(time.perf_counter() - started)


async def _handle(request: web.Request, source: Source) -> tuple[web.Response, str, str]:
    app = request.app
    settings = app[SETTINGS]
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit), "too_large", "unknown"
    if not _is_json(request.content_type):
        return (
            problem(415, "unsupported-media-type", "send the event as application/json"),
            "unsupported_media",
            "unknown",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(limit), "too_large", "unknown"

    try:
        signed = app[VERIFIERS][source].verify(request.headers, body)
    except SignatureError as exc:
        log.info("webhook_refused", source=source.value, reason=str(exc))
        return problem(401, "invalid-signature", str(exc)), "unauthorized", "unknown"

    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail, errs = "the body is not valid JSON", None
        else:
            detail, errs = "the body is not an event envelope {type, timestamp, data}", field_errors(errors)
        return problem(400, "bad-envelope", detail, errors=errs, id=signed.msg_id), "bad_request", "unknown"

    model = data_model(source, envelope.type)
    if model is None:
        log.info("webhook_ignored", source=source.value, event_id=signed.msg_id, type=envelope.type[:100])
        return (
            _answer(signed.msg_id, b"ignored", 202),
            "ignored",
            "unknown",
        )
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        errs = field_errors(exc.errors(include_input=False, include_url=False), prefix="data.")
        names = ", ".join(e["field"] for e in errs)
        return (
            problem(422, "invalid-data", f"{envelope.type}: invalid {names}", errors=errs, id=signed.msg_id),
            "invalid",
            envelope.type,
        )

    row = (
        source.value,
        signed.msg_id,
        envelope.type,
        data.entity(source),
        envelope.timestamp.isoformat(),
        data.model_dump_json(),
    )
    try:
        status = await app[INGESTOR].submit(row)
    except QueueUnavailable as exc:
        retry_after = str(settings.retry_after_seconds)
        return (
            problem(503, "queue-unavailable", f"{exc}; retry later", headers={"Retry-After": retry_after}),
            "unavailable",
            envelope.type,
        )
    if status == ACCEPT_DUPLICATE:
        return (
            _answer(signed.msg_id, b"duplicate", 200),
            "duplicate",
            envelope.type,
        )
    return (
        _answer(signed.msg_id, b"queued", 202),
        "queued",
        envelope.type,
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
