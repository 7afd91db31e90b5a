"""Magento's searchCriteria as query parameters: filters in one group are ORed, groups are ANDed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Condition = Literal[
    "eq", "neq", "gt", "gteq", "lt", "lteq", "like", "nlike", "in", "nin", "finset", "nfinset",
    "from", "to", "null", "notnull", "moreq",
]  # fmt: skip


@dataclass(frozen=True)
class Filter:
    field: str
    value: str | int | float | list[str | int]
    condition: Condition = "eq"


@dataclass
class SearchCriteria:
    groups: list[list[Filter]] = field(default_factory=list)
    sort: list[tuple[str, Literal["ASC", "DESC"]]] = field(default_factory=list)
    page_size: int = 100
    current_page: int = 1

    def where(
        self, field_: str, value: str | int | float | list[str | int], condition: Condition = "eq"
    ) -> SearchCriteria:
        """AND a new group holding one filter."""
        self.groups.append([Filter(field_, value, condition)])
        return self

    def any_of(self, *filters: Filter) -> SearchCriteria:
        """AND a group whose filters are ORed."""
        self.groups.append(list(filters))
        return self

    def order_by(self, field_: str, direction: Literal["ASC", "DESC"] = "ASC") -> SearchCriteria:
        self.sort.append((field_, direction))
        return self

    def params(self, page: int | None = None) -> dict[str, str]:
        p: dict[str, str] = {}
        for g, group in enumerate(self.groups):
            for f, flt in enumerate(group):
                prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
                value = ",".join(map(str, flt.value)) if isinstance(flt.value, list) else str(flt.value)
                p[f"{prefix}[field]"] = flt.field
                p[f"{prefix}[value]"] = value
                p[f"{prefix}[condition_type]"] = flt.condition
        for n, (field_, direction) in enumerate(self.sort):
            p[f"searchCriteria[sortOrders][{n}][field]"] = field_
            p[f"searchCriteria[sortOrders][{n}][direction]"] = direction
        # Always send a page size: without one Magento returns every match at once.
        p["searchCriteria[pageSize]"] = str(self.page_size)
        p["searchCriteria[currentPage]"] = str(page or self.current_page)
        return p


# A row's place in a search read by key: its time (Magento format) and entity id.
Key = tuple[str, int]
TimeField = Literal["created_at", "updated_at"]


def keyset_criteria(
    by: TimeField, since: str, after: Key | None, where: Sequence[Filter], page_size: int
) -> SearchCriteria:
    """`where` AND `by` >= since, past the row `after` when one was seen, sorted by (`by`, entity_id): always
    page 1 of what comes after the last row read (docs/magento-api-notes.md item 5)."""
    criteria = SearchCriteria(page_size=page_size)
    for f in where:
        criteria.where(f.field, f.value, f.condition)
    if after is None:
        criteria.where(by, since, "gteq")
    else:
        # (by, entity_id) > after, as the conjunction of OR groups searchCriteria can express
        at, entity_id = after
        criteria.where(by, at, "gteq")
        criteria.any_of(Filter(by, at, "gt"), Filter("entity_id", entity_id, "gt"))
    return criteria.order_by(by).order_by("entity_id")
