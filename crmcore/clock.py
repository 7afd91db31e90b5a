"""Our clock and the one way we write a moment: UTC, ISO 8601, milliseconds, `Z`.

Redis holds times as epoch milliseconds (`*_ms` fields, zset scores), so the millisecond is the finest
precision any of our times has; every time the admin API, the reports, the job records and the CLI show is
`iso_ms` of one of them. Times in a remote's own format (Magento's, a Cloud Retailer cursor) are the clients'
business and are not written here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: float) -> str:
    """`2026-12-03T14:02:11.123Z` for epoch milliseconds."""
    return iso(datetime.fromtimestamp(ms / 1000, tz=UTC))


def iso(moment: datetime) -> str:
    """An aware moment in the one format (a naive one is taken for UTC)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utc_now_iso() -> str:
    return iso_ms(now_ms())


def id_stamp() -> str:
    """`20261203140211`: the moment part of a job or run id (sorts by time, and has no colon, which an id of
    ours may not hold: crmcore/jobrecords.py FeedOrigin)."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")
