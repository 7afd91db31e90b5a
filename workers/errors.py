"""How a handler tells the dispatcher what went wrong. Anything else it raises counts as transient."""


class PermanentError(Exception):
    """Retrying cannot help (bad data, missing attribute set...): dead-letter now, with this reason."""


class TransientError(Exception):
    """Worth retrying later (the remote system is down, rate limited, timed out)."""


class Skip(Exception):
    """The event needs no action (e.g. an order that is not complete); recorded as skipped with the reason."""
