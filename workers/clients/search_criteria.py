"""Magento's searchCriteria as query parameters: filters in one group are ORed, groups are ANDed."""

from __future__ import annotations

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
