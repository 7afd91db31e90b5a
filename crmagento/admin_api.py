"""A small client of the gateway's admin API for the `crmagento` admin verbs.

Synchronous urllib on purpose: one request at a time from a terminal, nothing to gain from an event loop,
and no client library to keep in step with aiohttp's. Every failure is an `AdminAPIError` that carries the
exit code the CLI ends with, so scripts can branch on it. The token is sent, never logged or echoed.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from crmcore.settings import Settings, env_name

# Exit codes (also in `crmagento --help` and the README).
EXIT_OK = 0
EXIT_FAILED = 1  # a job failed, or what was asked for does not exist
EXIT_USAGE = 2  # bad arguments or configuration (also what click uses for usage errors)
EXIT_UNREACHABLE = 3  # no answer, or a 5xx: retry later
EXIT_UNAUTHORIZED = 4  # the token was refused

DEFAULT_TIMEOUT_S = 15.0


class AdminAPIError(Exception):
    """Something the operator must see, as one line, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code, self.status = exit_code, status


# ----------------------------------------------------------------------------- what the API answers


class _Model(BaseModel):
    # New fields on the server must not break an older CLI.
    model_config = ConfigDict(extra="allow")


class JobProgress(_Model):
    done: int = 0
    failed: int = 0
    total: int | None = None


class JobPhase(_Model):
    """One phase of a job made of phases (the initial sync), with its own counts."""

    name: str
    status: str = "pending"  # pending, running, done or skipped
    done: int = 0
    failed: int = 0
    total: int | None = None
    runs: int = 0


class Job(_Model):
    id: str
    kind: str  # a `jobrecords.AdminJobKind` value; any string, as a newer gateway may run kinds this CLI lacks
    status: Literal["queued", "running", "waiting", "done", "failed"]
    params: dict[str, Any] = {}
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    progress: JobProgress = JobProgress()
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None  # why a `waiting` job waits (a remote that is down)
    phase: str | None = None  # the phase running, of a job made of phases
    phases: list[JobPhase] = []

    @property
    def finished_for_good(self) -> bool:
        return self.status in ("done", "failed")


class Problem(_Model):
    """RFC 9457 problem document, as the gateway sends for every error."""

    title: str | None = None
    detail: str | None = None
    status: int | None = None
    errors: list[dict[str, Any]] = []

    def summary(self, status: int) -> str:
        text = self.detail or self.title or f"HTTP {status}"
        fields = "; ".join(f"{e.get('field')}: {e.get('reason')}" for e in self.errors if e.get("field"))
        return f"{text} ({fields})" if fields and fields not in text else text


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """Where the admin API is and the token to send. `repr` hides the token."""

    url: str
    token: str

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, token=***)"


def target_from_settings(settings: Settings) -> Target:
    parts = urllib.parse.urlsplit(settings.admin_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AdminAPIError(f"{env_name('admin_url')}: must be an http:// or https:// URL with a host", EXIT_USAGE)
    if parts.username is not None or parts.password is not None:
        # The admin API signs in with the bearer token alone, and a URL with its user and password would be
        # printed in every message that names the gateway.
        raise AdminAPIError(
            f"{env_name('admin_url')}: must not hold a user or password (the admin API takes "
            f"{env_name('admin_token')}); remove the part before '@'",
            EXIT_USAGE,
        )
    token = settings.admin_token or (settings.admin_tokens[0] if settings.admin_tokens else None)
    if token is None or not token.get_secret_value().strip():
        names = f"{env_name('admin_token')} (or {env_name('admin_tokens')})"
        raise AdminAPIError(f"{names}: required for the admin commands but not set", EXIT_USAGE)
    return Target(url=settings.admin_url.rstrip("/"), token=token.get_secret_value().strip())


# ----------------------------------------------------------------------------- the client


def _quote(segment: str) -> str:
    # Ids may hold `/` (webhook-ids are the sender's): one path segment, percent-encoded.
    return urllib.parse.quote(segment, safe="")


class AdminAPI:
    def __init__(self, target: Target, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._target, self._timeout = target, timeout

    @property
    def url(self) -> str:
        return self._target.url

    def request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: object | None = None
    ) -> Any:
        """Send one request; the decoded JSON answer of a 2xx, else `AdminAPIError` with its exit code."""
        url = self._target.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._target.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (http(s) checked)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return _decode(resp.read())
        except urllib.error.HTTPError as err:
            raw = err.read()
            raise _http_error(err.code, raw, method, path) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, DNS, a garbled answer
            reason = getattr(exc, "reason", exc)
            raise AdminAPIError(f"cannot reach the gateway at {self._target.url}: {reason}", EXIT_UNREACHABLE) from None

    # The admin API, one method per operation (openapi.yaml).

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/admin/status")

    def events(self, *, limit: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/admin/events", query={"limit": limit, "status": status})["items"]

    def event(self, event_id: str, *, source: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/admin/events/{_quote(event_id)}", query={"source": source})

    def trace(self, query: str) -> dict[str, Any]:
        return self.request("GET", "/admin/trace", query={"q": query})

    def dead_letters(self, *, limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        return self.request("GET", "/admin/dead-letters", query={"limit": limit, "offset": offset})

    def dead_letter(self, dl_id: str) -> dict[str, Any]:
        return self.request("GET", f"/admin/dead-letters/{_quote(dl_id)}")

    def replay(self, dl_id: str) -> dict[str, Any]:
        return self.request("POST", f"/admin/dead-letters/{_quote(dl_id)}/replay")

    def replay_matching(
        self, *, replay_all: bool = False, reason: str | None = None, event_type: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"all": True} if replay_all else {}
        body.update({k: v for k, v in (("reason", reason), ("type", event_type)) if v is not None})
        return self.request("POST", "/admin/dead-letters/replay", body=body)

    def resync(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/admin/resync/{_quote(kind)}", body=body)

    def reconcile_inventory(self, *, dry_run: bool) -> dict[str, Any]:
        return self.request("POST", "/admin/reconcile/inventory", query={"dry_run": "true" if dry_run else "false"})

    def initial_sync(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/admin/sync/initial", body=body)

    def jobs(self) -> list[dict[str, Any]]:
        return self.request("GET", "/admin/jobs")["items"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/admin/jobs/{_quote(job_id)}")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        # A proxy's HTML page in front of the gateway, say: not something to retry blindly or parse.
        raise AdminAPIError("the gateway answered something that is not JSON", EXIT_UNREACHABLE) from None


def _http_error(status: int, raw: bytes, method: str, path: str) -> AdminAPIError:
    try:
        detail = (Problem.model_validate_json(raw) if raw else Problem()).summary(status)
    except ValidationError:
        detail = f"HTTP {status}"
    if status == 503 and path == "/admin/status":
        # /admin/status answers 503 with the status document itself (redis unavailable), not a problem.
        detail = "Redis is not answering"
    if status == 401:
        return AdminAPIError("the gateway refused the admin token (401)", EXIT_UNAUTHORIZED, status)
    if status == 404:
        return AdminAPIError(detail, EXIT_FAILED, status)
    if status >= 500:
        return AdminAPIError(f"the gateway failed ({status}): {detail}", EXIT_UNREACHABLE, status)
    # 400, 409, 422, and any other 4xx: what was asked is wrong; asking again will not help.
    return AdminAPIError(f"{method} {path}: {detail}", EXIT_USAGE, status)
