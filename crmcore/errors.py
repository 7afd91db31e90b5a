"""How long an error text may be, wherever it goes: an event's last_error, a dead letter's reason, an admin
job's error or reason, a report, a remote's state, a log line.

One length for all, so a text is cut the same way in every place that shows it (the event log and its dead
letter no longer disagree) and a remote's whole error page never reaches Redis or a log. Long enough for
Magento's message with every one of its per-field errors behind "gave up after N attempts: ".
"""

from __future__ import annotations

ERROR_TEXT_MAX = 1000
_CUT = "…"


def clip(text: str | bytes) -> str:
    """`text` as it may be kept or shown: at most ERROR_TEXT_MAX characters, ending in an ellipsis when cut.
    Bytes (a remote's body) are decoded, replacing what is not UTF-8, after slicing so a large body is not
    decoded whole."""
    if isinstance(text, bytes):
        text = text[: ERROR_TEXT_MAX * 4].decode("utf-8", "replace")
    if len(text) <= ERROR_TEXT_MAX:
        return text
    return text[: ERROR_TEXT_MAX - len(_CUT)] + _CUT
