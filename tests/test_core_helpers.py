"""The helpers every side shares instead of its own copy: the clock's one format (crmcore/clock.py) and the
one length of an error text (crmcore/errors.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from crmcore import clock
from crmcore.errors import ERROR_TEXT_MAX, clip


def test_every_moment_is_written_in_utc_with_milliseconds_and_z() -> None:
    assert clock.iso_ms(1_764_417_600_123) == "2025-11-29T12:00:00.123Z"
    assert clock.iso_ms(1_764_417_600_000) == "2025-11-29T12:00:00.000Z"  # fixed width: string order is time order
    plus_two = datetime(2025, 11, 29, 14, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=2)))
    assert clock.iso(plus_two) == "2025-11-29T12:00:00.123Z"
    assert clock.iso(datetime(2025, 11, 29, 12, 0)) == "2025-11-29T12:00:00.000Z"  # naive: taken for UTC
    now = clock.now_ms()
    assert abs(datetime.fromisoformat(clock.utc_now_iso()).timestamp() * 1000 - now) < 5_000
    assert len(clock.id_stamp()) == 14 and clock.id_stamp().isdigit()


def test_an_error_text_is_cut_at_one_length_and_says_so() -> None:
    short = "magento 400: The attribute set does not exist."
    assert clip(short) == short
    assert clip("x" * ERROR_TEXT_MAX) == "x" * ERROR_TEXT_MAX
    cut = clip("x" * (ERROR_TEXT_MAX + 1))
    assert len(cut) == ERROR_TEXT_MAX and cut.endswith("…")
    # A remote's body: decoded, whatever it holds, without decoding all of a large one.
    assert clip(b"<html>\xff</html>") == "<html>\ufffd</html>"
    assert len(clip(b"y" * 10_000_000)) == ERROR_TEXT_MAX
