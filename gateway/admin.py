"""The admin API under /admin/ (bearer tokens): status, the event log and dead letters.
Force resyncs and reconciliation land with the sync rules."""

from __future__ import annotations

import orjson
from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from crmcore import deadletters, eventlog
from crmcore.events import Source
from gateway import status
from gateway.appkeys import QUEUE, REDIS, SETTINGS
from gateway.connections import BodyTimeout, read_body
from gateway.guards import admin_only
from gateway.problems import bad_parameter, body_refused, problem


def json_answer(body: object, status_code: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status_code, content_type="application/json")


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadParam(name, "must be an integer") from None
    if not lo <= value <= hi:
        raise _BadParam(name, f"must be between {lo} and {hi}")
    return value


class _BadParam(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason

    def response(self) -> web.Response:
        return bad_parameter(self.field, self.reason)


async def get_status(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        snap = await status.snapshot(request.app[REDIS], settings.queue_name, links=settings.links)
    except (RedisError, OSError):
        return json_answer({"redis": "unavailable", "queue_depth": None, "workers": [], "dead_letters": None}, 503)
    return json_answer({"redis": "ok", **snap})


async def list_events(request: web.Request) -> web.Response:
    try:
        limit = _int_param(request, "limit", 50, 1, 500)
    except _BadParam as exc:
        return exc.response()
    wanted = request.query.get("status")
    if wanted is not None and wanted not in eventlog.STATUSES:
        return _BadParam("status", f"must be one of {', '.join(eventlog.STATUSES)}").response()
    items = await eventlog.recent_events(request.app[REDIS], limit=limit, status=wanted)
    return json_answer({"items": items})


async def get_event(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    source = request.query.get("source")
    sources = [s.value for s in Source]
    if source is not None and source not in sources:
        return _BadParam("source", f"must be one of {', '.join(sources)}").response()
    redis = request.app[REDIS]
    found = [r for s in ([source] if source else sources) if (r := await eventlog.get_event(redis, f"{s}:{event_id}"))]
    if not found:
        return problem(404, "event-not-found", f"no event with webhook-id {event_id!r} in the last 7 days")
    if len(found) > 1:
        return problem(
            409,
            "ambiguous-event",
            "both sources sent an event with this webhook-id; add ?source=",
            id=event_id,
        )
    return json_answer(found[0])


async def list_dead_letters(request: web.Request) -> web.Response:
    try:
        limit = _int_param(request, "limit", 100, 1, 1000)
        offset = _int_param(request, "offset", 0, 0, 10_000_000)
    except _BadParam as exc:
        return exc.response()
    total, items = await deadletters.list_deadletters(request.app[REDIS], limit=limit, offset=offset)
    return json_answer({"total": total, "items": items})


async def get_dead_letter(request: web.Request) -> web.Response:
    dl = await deadletters.get_deadletter(request.app[REDIS], request.match_info["dl_id"])
    if dl is None:
        return problem(404, "dead-letter-not-found", "no dead letter with this id (replayed already?)")
    return json_answer(dl)


async def replay_dead_letter(request: web.Request) -> web.Response:
    app = request.app
    dl = await deadletters.replay(
        app[REDIS], app[QUEUE], request.match_info["dl_id"], app[SETTINGS].event_record_ttl_seconds
    )
    if dl is None:
        return problem(404, "dead-letter-not-found", "no dead letter with this id (replayed already?)")
    return json_answer({"id": dl["id"], "status": "requeued", "event_ids": dl["event_ids"]}, 202)


async def replay_dead_letters(request: web.Request) -> web.Response:
    try:
        raw = await read_body(request)
    except BodyTimeout as exc:
        return exc.answer()
    try:
        wanted = deadletters.ReplayFilter.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        return body_refused(exc)
    if (error := wanted.usage_error()) is not None:
        return problem(422, "invalid-body", f"{error['field']}: {error['reason']}", errors=[error])
    app = request.app
    done = await deadletters.replay_matching(app[REDIS], app[QUEUE], wanted, app[SETTINGS].event_record_ttl_seconds)
    return json_answer(done.answer())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/status", admin_only(get_status))
    app.router.add_get("/admin/events", admin_only(list_events))
    app.router.add_get("/admin/events/{event_id}", admin_only(get_event))
    app.router.add_get("/admin/dead-letters", admin_only(list_dead_letters))
    # Before `{dl_id}`: a literal segment the id routes must not read as a dead letter's id.
    app.router.add_post("/admin/dead-letters/replay", admin_only(replay_dead_letters))
    app.router.add_get("/admin/dead-letters/{dl_id}", admin_only(get_dead_letter))
    app.router.add_post("/admin/dead-letters/{dl_id}/replay", admin_only(replay_dead_letter))
