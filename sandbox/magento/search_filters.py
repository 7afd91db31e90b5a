"""What one searchCriteria filter means for one stored value, and how values sort, the way MySQL does it.

Values are compared by the type they are stored with, as MySQL compares by column type: numbers
numerically, text case-insensitively (the default collation), NULL never matching (three-valued logic) and
sorting first. Text holding a number is compared numerically only by the ordering conditions (gt, lteq...),
which is what a numeric EAV column would do. A predicate is built once per filter, so an `in` list of 500
SKUs is parsed once and not once per record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Predicate = Callable[[Any], bool]
_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_ORDER: dict[str, Callable[[int], bool]] = {
    "gt": lambda r: r > 0,
    "gteq": lambda r: r >= 0,
    "moreq": lambda r: r >= 0,
    "from": lambda r: r >= 0,
    "lt": lambda r: r < 0,
    "lteq": lambda r: r <= 0,
    "to": lambda r: r <= 0,
}


def number(text: str) -> float | None:
    """Plain decimal numbers only: "inf", "nan" or "1_000" are text to MySQL."""
    text = text.strip()
    return float(text) if _NUMERIC.fullmatch(text) else None


@dataclass(frozen=True, slots=True)
class Wanted:
    text: str  # case-folded
    number: float | None

    @classmethod
    def of(cls, raw: str) -> Wanted:
        return cls(raw.strip().casefold(), number(raw))


def compare(actual: Any, wanted: Wanted, *, ordering: bool) -> int | None:
    """-1/0/1, None for NULL."""
    if actual is None:
        return None
    if isinstance(actual, bool):
        actual = int(actual)
    if isinstance(actual, int | float):
        if wanted.number is not None:
            return (actual > wanted.number) - (actual < wanted.number)
        text = str(actual)
    else:
        text = actual if isinstance(actual, str) else str(actual)
        if ordering and wanted.number is not None:
            value = number(text)
            if value is not None:
                return (value > wanted.number) - (value < wanted.number)
    folded = text.casefold()
    return (folded > wanted.text) - (folded < wanted.text)


def _values(actual: Any) -> list[Any]:
    """A multi-valued field (category ids, website ids) matches when one of its values does."""
    return list(actual) if isinstance(actual, list | tuple | set | frozenset) else [actual]


def is_empty(actual: Any) -> bool:
    return actual is None or actual == [] or actual == ""


@lru_cache(maxsize=256)
def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=1024)
def predicate(op: str, raw: str) -> Predicate:
    """The test of condition `op` with value `raw` (see search_criteria.CONDITIONS)."""
    if op == "null":
        return is_empty
    if op == "notnull":
        return lambda actual: not is_empty(actual)
    if op in ("finset", "nfinset"):
        return _finset(raw, op == "finset")
    if op in ("in", "nin"):
        return _in(raw, op == "in")
    if op in ("like", "nlike"):
        return _like_test(raw, op == "like")
    if op in ("eq", "neq"):
        return _eq(Wanted.of(raw), op == "eq")
    return _ordering(Wanted.of(raw), _ORDER[op])


def _eq(wanted: Wanted, positive: bool) -> Predicate:
    def test(actual: Any) -> bool:
        if actual is None:
            return False
        if isinstance(actual, str):  # the common case, kept cheap
            return (actual.casefold() == wanted.text) == positive
        results = [compare(v, wanted, ordering=False) for v in _values(actual)]
        known = [r for r in results if r is not None]
        return bool(known) and (0 in known) == positive

    return test


def _ordering(wanted: Wanted, holds: Callable[[int], bool]) -> Predicate:
    def test(actual: Any) -> bool:
        if actual is None:
            return False
        for value in _values(actual):
            result = compare(value, wanted, ordering=True)
            if result is not None and holds(result):
                return True
        return False

    return test


def _in(raw: str, positive: bool) -> Predicate:
    wanted = [w.strip() for w in raw.split(",")]
    texts = {w.casefold() for w in wanted}
    numbers = {n for n in (number(w) for w in wanted) if n is not None}

    def member(value: Any) -> bool:
        if isinstance(value, str):
            return value.casefold() in texts
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            return value in numbers
        return str(value).casefold() in texts

    def test(actual: Any) -> bool:
        if actual is None:
            return False
        return any(member(v) for v in _values(actual) if v is not None) == positive

    return test


def _like_test(raw: str, positive: bool) -> Predicate:
    pattern = _like(raw)

    def test(actual: Any) -> bool:
        if actual is None:
            return False
        return any(pattern.fullmatch(str(v)) is not None for v in _values(actual)) == positive

    return test


def _finset(raw: str, positive: bool) -> Predicate:
    def test(actual: Any) -> bool:
        if actual is None:
            return False
        members = actual if isinstance(actual, list) else str(actual).split(",")
        return (raw in {str(m).strip() for m in members}) == positive

    return test


def sort_key(value: Any) -> tuple[int, float, str]:
    """NULL first, then numbers by value, then text case-insensitively."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float):
        return (1, float(value), "")
    return (2, 0.0, str(value).casefold())
