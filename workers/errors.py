"""How a handler tells the dispatcher what went wrong. Anything else it raises counts as transient."""


class PermanentError(Exception):
    """Retrying cannot help (bad data, missing attribute set...): dead-letter now, with this reason."""


class TransientError(Exception):
    """Worth retrying later (the remote system is down, rate limited, timed out)."""


class Skip(Exception):
    """The event needs no action (e.g. an order that is not complete); recorded as skipped with the reason."""


class StaleJob(Exception):
    """This job no longer owns its entity (a live worker took it over while this one was frozen or cut off):
    it must stop without writing anything, and without touching the events the new job now holds."""
