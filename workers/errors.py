"""How a handler tells the dispatcher what went wrong: the four kinds of failure, and two that are not.

    TransientError        worth retrying later: the dispatcher retries with backoff, then dead-letters
    RemoteUnavailable     (workers/clients/errors.py) the remote looks down: a probe confirms it, the job parks
    PermanentError        retrying cannot help (bad data): dead letter now, with the reason
    MisconfiguredError    a setting is wrong: the remote it belongs to is marked misconfigured, the job parks
    Skip                  nothing to do (not failed)
    StaleJob              this job lost its entity (not failed: it stops)

Anything else a handler raises counts as transient.
"""

from __future__ import annotations

from crmcore.remotes import Remote


class PermanentError(Exception):
    """Retrying cannot help (bad data, missing attribute set...): dead-letter now, with this reason."""


class TransientError(Exception):
    """Worth retrying later (the remote system is down, rate limited, timed out)."""


class MisconfiguredError(PermanentError):
    """A setting is missing or wrong (no Cloud Retailer store linked, no Magento address...). The message names
    the setting, `setting` holds its variable's name, never its value; `remote` is the remote it belongs to.

    Handled like a remote whose start-up check found a wrong setting, not like bad data: the remote is marked
    `misconfigured` with the setting (status, metrics and dashboard show it) and the job is parked, its events
    kept in order and no attempt spent. A setting is fixed by a restart, and the restarted worker's start-up
    check finds the remote up and drains what waited; a dead letter would instead need every one of those
    events replayed by hand, and would fill with the same reason once per entity until then. Without a
    remote to park on (`remote` None, or a dispatcher without a monitor) it falls back to what it is a kind
    of, a PermanentError: a dead letter naming the setting. Admin jobs and periodic runs fail with it."""

    def __init__(self, setting: str, detail: str, *, remote: Remote | None = None) -> None:
        super().__init__(f"{setting}: {detail}")
        self.setting, self.detail, self.remote = setting, detail, remote


class Skip(Exception):
    """The event needs no action (e.g. an order that is not complete); recorded as skipped with the reason."""


class StaleJob(Exception):
    """This job no longer owns its entity (a live worker took it over while this one was frozen or cut off):
    it must stop without writing anything, and without touching the events the new job now holds."""
