"""A product save that carries `extension_attributes.configurable_product_options` and/or
`configurable_product_links` (Magento's `ConfigurableProduct\\Model\\Product\\SaveHandler` and the
`ProductRepositorySave` plugin): validated with the product, applied once the product has its id.

Only a configurable product takes them (the handler skips every other type). Options sent replace the set:
an attribute already used keeps its option id, one left out is dropped (and, as an option delete does, the
children are unlinked unless links are sent too). Links sent replace the children. The plugin checks the
links against the options **sent in the same body**: links sent alone are compared on no attribute at all,
so two or more of them are "the same set of attribute values" (send the options along).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.magento.configurable_rules import (
    ATTRIBUTE_NOT_FOUND,
    CONFIGURABLE,
    OptionInput,
    option_input,
    store_option,
    validate_links,
)
from sandbox.magento.errors import MagentoError, invalid_field_value
from sandbox.magento.state import MagentoState, Product


@dataclass(frozen=True, slots=True)
class ConfigurableSave:
    options: list[OptionInput] | None
    links: list[int] | None

    def apply(self, state: MagentoState, product: Product) -> None:
        store = state.configurable
        if self.options is not None:
            wanted = {o.attribute.id for o in self.options}
            existing = store.options.get(product.id, [])
            dropped = [o for o in existing if o.attribute_id not in wanted]
            store.options[product.id] = [o for o in existing if o.attribute_id in wanted]
            for option in self.options:
                store_option(state, product, option)
            if dropped and self.links is None:
                store.set_links(product.id, [])
        if self.links is not None:
            store.set_links(product.id, self.links)


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise MagentoError(400, "Decoding error.")
    return raw


def _link_id(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise invalid_field_value("configurable_product_links", raw) from None


def _option(state: MagentoState, raw: Any) -> OptionInput:
    if not isinstance(raw, dict):
        raise MagentoError(400, "Decoding error.")
    missing = MagentoError(404, ATTRIBUTE_NOT_FOUND, [raw.get("attribute_id")])
    return option_input(state, raw, missing=missing)


def plan(state: MagentoState, type_id: str, extension: dict[str, Any]) -> ConfigurableSave | None:
    raw_options = extension.get("configurable_product_options")
    raw_links = extension.get("configurable_product_links")
    if type_id != CONFIGURABLE or (raw_options is None and raw_links is None):
        return None
    options = None if raw_options is None else [_option(state, o) for o in _list(raw_options)]
    links = None if raw_links is None else [_link_id(i) for i in _list(raw_links)]
    if options or links:
        validate_links(state, [o.attribute.code for o in options or []], links or [])
    return ConfigurableSave(options, links)
