"""What makes a product configurable, as Magento's tables hold it: its super attributes
(`catalog_product_super_attribute`: one row per attribute, with a label and position) and its children
(`catalog_product_super_link`: parent id, child id). Option values are not stored at all: Magento derives
them from the linked children's values whenever it loads the options (see configurable_rules.option_view).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SuperAttribute:
    id: int  # product_super_attribute_id: the option id the REST API speaks of
    product_id: int
    attribute_id: int
    label: str
    position: int = 0
    is_use_default: bool = False


@dataclass(slots=True)
class ConfigurableStore:
    options: dict[int, list[SuperAttribute]] = field(default_factory=dict)  # parent id -> its super attributes
    links: dict[int, list[int]] = field(default_factory=dict)  # parent id -> child ids, in link order

    def options_of(self, parent_id: int) -> list[SuperAttribute]:
        return sorted(self.options.get(parent_id, []), key=lambda o: (o.position, o.id))

    def children_of(self, parent_id: int) -> list[int]:
        return list(self.links.get(parent_id, []))

    def parents_of(self, child_id: int) -> list[int]:
        return sorted(parent for parent, children in self.links.items() if child_id in children)

    def set_links(self, parent_id: int, child_ids: list[int]) -> None:
        if child_ids:
            self.links[parent_id] = list(dict.fromkeys(child_ids))
        else:
            self.links.pop(parent_id, None)

    def drop_product(self, product_id: int) -> None:
        """A deleted product: its own options and links go, and it leaves every parent (foreign keys cascade)."""
        self.options.pop(product_id, None)
        self.links.pop(product_id, None)
        for parent_id in self.parents_of(product_id):
            self.set_links(parent_id, [c for c in self.links[parent_id] if c != product_id])
