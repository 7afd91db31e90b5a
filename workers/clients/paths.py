"""Ids inside URL paths. A SKU, an email-derived id or a record id typed in a remote's admin can hold `/`,
`?`, `#`, `%`, spaces, `..` or a NUL; put into a path as it is, it would reach another route, add a query or
cut the URL short. So every id goes through `segment`, and only the clients build paths."""

from __future__ import annotations

from urllib.parse import quote

from workers.errors import PermanentError


class UnsafeSegment(PermanentError, ValueError):
    """An id that no encoding makes one path segment: retrying cannot help, so it is permanent."""


def segment(value: str | int) -> str:
    """`value` as exactly one path segment: everything but RFC 3986's unreserved characters
    (`A-Z a-z 0-9 - . _ ~`) percent-encoded as UTF-8."""
    text = str(value)
    # Made only of unreserved characters, these three survive encoding: empty addresses the parent
    # collection, and `.` / `..` are removed or climb a level when a server or proxy normalises the path.
    if text in ("", ".", ".."):
        raise UnsafeSegment(f"{text!r} cannot be a record id in a URL path")
    return quote(text, safe="")
