"""What a remote call can fail with. Transient ones are retried (here, then by the job); permanent ones are
not. Messages carry the remote system's own text, placeholders filled, and never a credential."""

from __future__ import annotations

from typing import Any

from workers.errors import MisconfiguredError, PermanentError, TransientError


class ApiError(Exception):
    def __init__(self, system: str, status: int | None, message: str, *, method: str = "", path: str = "") -> None:
        self.system, self.status, self.message, self.method, self.path = system, status, message, method, path
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{system} {status or 'error'}{where}: {message}")


class TransientApiError(ApiError, TransientError):
    """Rate limited, 5xx, timeout or connection failure, still failing after the client's retries."""


class RemoteUnavailable(TransientApiError):
    """The remote looks down rather than this request being wrong: connection refused or reset, a timeout,
    502/503/504, 429 after every retry, or a page that is not JSON (a maintenance page behind a proxy).
    The dispatcher confirms it with a probe: if the remote does not answer the probe either, the job is
    parked without spending an attempt (workers/availability/)."""


class PermanentApiError(ApiError, PermanentError):
    """The request itself is wrong (4xx): sending it again cannot help."""


class NotFound(PermanentApiError):
    pass


class Conflict(PermanentApiError):
    """409 (Cloud Retailer: the email or external_ref exists). `body` holds the existing record."""

    def __init__(self, *args: Any, body: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body = body


class Unauthorized(PermanentApiError):
    pass


def remote_condition(exc: BaseException) -> str | None:
    """The remote an error may be about as a whole (down, refusing our credentials, or a setting of it wrong)
    rather than about one record: the dispatcher parks such a job instead of failing its record (a probe decides
    for the first two). None for a record's own error."""
    if isinstance(exc, RemoteUnavailable | Unauthorized):
        return exc.system
    if isinstance(exc, MisconfiguredError) and exc.remote is not None:
        return exc.remote.value
    return None
