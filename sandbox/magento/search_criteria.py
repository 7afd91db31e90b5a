"""Magento's searchCriteria, parsed from the query string and applied to in-memory records.

Semantics follow the collection layer (rest/use-rest/performing-searches.md and `Framework/Data/Collection`):
filters inside a group are ORed, groups are ANDed; `condition_type` defaults to `eq` (what one condition
means for one value is search_filters.py); no pageSize returns every match; a currentPage past the last
page returns the last page again; total_count is the number of matches, not the page length.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sandbox.magento.errors import MagentoError, bad_request, invalid_field_value, required_field
from sandbox.magento.search_filters import predicate, sort_key

T = TypeVar("T")
Getter = Callable[[T, str], Any]

CONDITIONS = frozenset(
    {"eq", "neq", "gt", "gteq", "lt", "lteq", "like", "nlike", "in", "nin", "finset", "nfinset",
     "from", "to", "null", "notnull", "moreq"}
)  # fmt: skip
PREFIX = "searchCriteria"
_TOKEN = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True, slots=True)
class Filter:
    field: str
    value: str
    condition: str  # as sent ("" when absent: Magento then applies eq and echoes no condition_type)

    @property
    def op(self) -> str:
        return self.condition or "eq"


@dataclass(frozen=True, slots=True)
class Criteria:
    groups: tuple[tuple[Filter, ...], ...] = ()
    sort: tuple[tuple[str, str], ...] = ()
    page_size: int | None = None
    current_page: int | None = None

    @property
    def selection_key(self) -> Hashable:
        """What decides the matches and their order (paging excluded)."""
        return (self.groups, self.sort)

    def echo(self) -> dict[str, Any]:
        """The `search_criteria` block of a search result: the request, echoed."""
        groups = []
        for group in self.groups:
            filters = []
            for f in group:
                item: dict[str, Any] = {"field": f.field, "value": f.value}
                if f.condition:
                    item["condition_type"] = f.condition
                filters.append(item)
            groups.append({"filters": filters})
        out: dict[str, Any] = {"filter_groups": groups}
        if self.sort:
            out["sort_orders"] = [{"field": f, "direction": d} for f, d in self.sort]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


# --- parsing ----------------------------------------------------------------------------------------------


def present(query: Mapping[str, str]) -> bool:
    return any(k == PREFIX or k.startswith(PREFIX + "[") for k in query)


def parse(query: Mapping[str, str], *, required: bool = True) -> Criteria:
    """`searchCriteria[filter_groups][G][filters][F][field]=...` (camelCase spellings accepted too)."""
    if not present(query):
        if required:
            raise required_field("searchCriteria")
        return Criteria()
    tree: dict[str, Any] = {}
    for key, value in query.items():
        if not key.startswith(PREFIX + "["):
            continue
        node = tree
        tokens = _TOKEN.findall(key[len(PREFIX) :])
        for token in tokens[:-1]:
            child = node.setdefault(token, {})
            if not isinstance(child, dict):
                raise bad_request("Decoding error.")
            node = child
        if tokens:
            node[tokens[-1]] = value
    groups = []
    for group in _indexed(_first(tree, "filter_groups", "filterGroups")):
        filters = []
        for raw in _indexed(_first(group, "filters") if isinstance(group, dict) else None):
            if not isinstance(raw, dict) or not raw.get("field"):
                raise required_field("field")
            condition = str(_first(raw, "condition_type", "conditionType") or "")
            if condition and condition not in CONDITIONS:
                raise invalid_field_value("condition_type", condition)
            filters.append(Filter(str(raw["field"]), str(raw.get("value", "")), condition))
        if filters:
            groups.append(tuple(filters))
    sort = []
    for raw in _indexed(_first(tree, "sortOrders", "sort_orders")):
        if isinstance(raw, dict) and raw.get("field"):
            direction = str(raw.get("direction") or "ASC").upper()
            sort.append((str(raw["field"]), "DESC" if direction == "DESC" else "ASC"))
    return Criteria(
        tuple(groups),
        tuple(sort),
        _int(_first(tree, "pageSize", "page_size"), "pageSize"),
        _int(_first(tree, "currentPage", "current_page"), "currentPage"),
    )


def _first(node: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in node:
            return node[key]
    return None


def _indexed(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted(node, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))]


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_field_value(name, value) from None


# --- the result -------------------------------------------------------------------------------------------


class ResultCache:
    """The ordered matches of recent selections, so paging through 100k records costs one scan. A key holds
    the collection's version, which the state bumps on every write."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, list[Any]] = OrderedDict()

    def get(self, key: Hashable) -> list[Any] | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: Hashable, value: list[Any]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def select(
    criteria: Criteria,
    records: Callable[[], Sequence[T]] | Sequence[T],
    getter: Getter[T],
    *,
    known: Callable[[str], bool],
    cache: ResultCache | None = None,
    cache_key: Hashable = None,
    lookup: Callable[[Filter], list[T] | None] | None = None,
) -> tuple[list[T], int]:
    """The requested page of the matching records, and the number of matches.

    `lookup` is the collection's index: for a filter it can serve (a SKU eq/in), the records that may match,
    in the collection's natural order; the scan then runs over those instead of everything.
    """
    for group in criteria.groups:
        for flt in group:
            if not known(flt.field):
                raise MagentoError(400, "Invalid attribute name: %1", [flt.field])
    for field, _ in criteria.sort:
        if not known(field):
            raise MagentoError(400, "Invalid attribute name: %1", [field])
    key = (cache_key, criteria.selection_key) if cache is not None and cache_key is not None else None
    ordered = cache.get(key) if cache is not None and key is not None else None
    if ordered is None:
        source = _indexed_candidates(criteria, lookup)
        if source is None:
            source = records() if callable(records) else records
        groups = [[(f.field, predicate(f.op, f.value)) for f in group] for group in criteria.groups]

        def wanted(record: T) -> bool:
            for group in groups:  # AND across groups ...
                for field, test in group:  # ... OR inside one
                    if test(getter(record, field)):
                        break
                else:
                    return False
            return True

        ordered = [r for r in source if wanted(r)] if groups else list(source)
        # Stable sorts applied last key first give a multi-key sort with mixed directions.
        for field, direction in reversed(criteria.sort):
            ordered.sort(key=lambda r, f=field: sort_key(getter(r, f)), reverse=direction == "DESC")
        if cache is not None and key is not None:
            cache.put(key, ordered)
    total = len(ordered)
    size = criteria.page_size or 0
    if size <= 0:
        return list(ordered), total
    last_page = max(1, -(-total // size))
    page = min(max(criteria.current_page or 1, 1), last_page)
    start = (page - 1) * size
    return ordered[start : start + size], total


def _indexed_candidates(criteria: Criteria, lookup: Callable[[Filter], list[T] | None] | None) -> list[T] | None:
    if lookup is None:
        return None
    for group in criteria.groups:
        if len(group) == 1:  # a lone filter must hold, so its index hits bound the matches
            candidates = lookup(group[0])
            if candidates is not None:
                return candidates
    return None


def result(items: list[Any], total: int, criteria: Criteria) -> dict[str, Any]:
    return {"items": items, "search_criteria": criteria.echo(), "total_count": total}
