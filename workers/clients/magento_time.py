"""Magento's times: `Y-m-d H:i:s` in UTC without a zone (docs/magento-api-notes.md item 7). Cursors, keyset
keys and search filters are written this way, and every time Magento answers is read with `parse_time`."""

from __future__ import annotations

from datetime import UTC, datetime

MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"


def parse_time(value: str) -> datetime:
    """Magento's `Y-m-d H:i:s` (UTC) or any ISO-8601 time (a newer Magento or a proxy may answer one); a time
    without a zone is UTC."""
    text = value.strip()
    try:
        moment = datetime.strptime(text[:19], MAGENTO_TIME)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def magento_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(MAGENTO_TIME)
