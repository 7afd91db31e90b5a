"""The Magento records the connector reads, as pydantic models. Unknown fields are kept (extra="allow"):
Magento adds fields by version and extension, and a save must not drop what it did not understand."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CustomAttribute(_Record):
    attribute_code: str
    value: Any = None


class MediaEntry(_Record):
    id: int | None = None
    media_type: str = "image"
    label: str | None = None
    position: int = 0
    disabled: bool = False
    types: list[str] = Field(default_factory=list)
    file: str | None = None


class Product(_Record):
    id: int | None = None
    sku: str
    name: str | None = None
    attribute_set_id: int | None = None
    price: float | None = None
    status: int | None = None
    visibility: int | None = None
    type_id: str | None = None
    weight: float | None = None
    created_at: str | None = None
    updated_at: str | None = None
    extension_attributes: dict[str, Any] = Field(default_factory=dict)
    custom_attributes: list[CustomAttribute] = Field(default_factory=list)
    media_gallery_entries: list[MediaEntry] = Field(default_factory=list)

    def attribute(self, code: str) -> Any:
        return next((a.value for a in self.custom_attributes if a.attribute_code == code), None)


class ConfigurableOption(_Record):
    """A configurable product's option (its axis): the attribute and the option ids (`value_index`) it takes.
    Magento answers `values` as `[{"value_index": n}]` and derives them from the linked children, so an option
    without children reads back with no values (docs/magento-api-notes.md item 16)."""

    id: int | None = None
    attribute_id: int
    label: str | None = None
    position: int = 0
    values: list[int] = Field(default_factory=list)

    @field_validator("values", mode="before")
    @classmethod
    def _value_indexes(cls, value: Any) -> Any:
        if value is None:
            return []
        return [v.get("value_index") if isinstance(v, dict) else v for v in value]

    def body(self) -> dict[str, Any]:
        """The `option` Magento takes: attribute_id as the string its schema declares, values as objects."""
        out: dict[str, Any] = {
            "attribute_id": str(self.attribute_id),
            "position": self.position,
            "values": [{"value_index": v} for v in self.values],
        }
        if self.label is not None:
            out["label"] = self.label
        if self.id is not None:
            out["id"] = self.id
        return out


class TierPrice(_Record):
    """A row of the price storage API (`/V1/products/tier-prices*`). The group is named by its code, not id."""

    price: float
    price_type: str = "fixed"
    website_id: int
    sku: str
    customer_group: str
    quantity: float


class PriceUpdateResult(_Record):
    """An item the price storage API refused. `parameters` fill the message's `%name` placeholders: as a list
    they come in the order Magento built them, each name where it last appears (the "Row ID: SKU = %SKU,
    Website ID: %websiteId, ..." suffix ends every message), which is how this reads them."""

    message: str
    parameters: list[Any] | dict[str, Any] = Field(default_factory=list)

    def text(self) -> str:
        if isinstance(self.parameters, dict):
            values = {str(k): v for k, v in self.parameters.items()}
        else:
            names = re.findall(r"%([A-Za-z]\w*)", self.message)
            ordered = list(dict.fromkeys(reversed(names)))[::-1]
            values = dict(zip(ordered, self.parameters, strict=False))
        return re.sub(r"%([A-Za-z]\w*)", lambda m: str(values.get(m.group(1), m.group(0))), self.message)


class CustomerGroup(_Record):
    id: int
    code: str
    tax_class_id: int | None = None


class SourceItem(_Record):
    sku: str
    source_code: str
    quantity: float
    status: int  # 1 in stock, 0 out of stock


class StockItem(_Record):
    """A legacy CatalogInventory stock item (a store without MSI)."""

    item_id: int
    product_id: int | None = None
    qty: float | None = None
    is_in_stock: bool | None = None


class Category(_Record):
    id: int
    parent_id: int | None = None
    name: str | None = None  # a list answer may leave it out
    is_active: bool | None = None
    position: int | None = None
    level: int | None = None
    children_data: list[Category] = Field(default_factory=list)


class Region(_Record):
    region_code: str | None = None
    region: str | None = None
    region_id: int | None = None


class Address(_Record):
    id: int | None = None
    customer_id: int | None = None
    region: Region | None = None
    region_id: int | None = None
    country_id: str
    street: list[str]
    telephone: str | None = None
    postcode: str | None = None
    city: str
    firstname: str
    lastname: str
    default_shipping: bool | None = None
    default_billing: bool | None = None


class Customer(_Record):
    id: int | None = None
    group_id: int | None = None
    email: str
    firstname: str
    lastname: str
    website_id: int | None = None
    store_id: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    addresses: list[Address] = Field(default_factory=list)


class OrderItem(_Record):
    item_id: int | None = None
    parent_item_id: int | None = None
    sku: str
    name: str | None = None
    product_type: str | None = None
    qty_ordered: float = 0
    price: float = 0
    row_total: float | None = None
    discount_amount: float | None = 0
    tax_amount: float | None = 0
    parent_item: dict[str, Any] | None = None


class Order(_Record):
    entity_id: int
    increment_id: str
    state: str | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    customer_id: int | None = None
    customer_email: str | None = None
    customer_is_guest: int | bool | None = None
    customer_firstname: str | None = None
    customer_lastname: str | None = None
    grand_total: float = 0
    subtotal: float | None = None
    tax_amount: float | None = 0
    discount_amount: float | None = 0
    shipping_amount: float | None = 0
    order_currency_code: str | None = None
    items: list[OrderItem] = Field(default_factory=list)


class Page(_Record):
    """One page of a searchCriteria list."""

    items: list[dict[str, Any]] = Field(default_factory=list)
    total_count: int = 0

    @field_validator("items", "total_count", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        # Some Magento versions and extensions answer an empty search with nulls rather than [] and 0.
        if value is None:
            return [] if info.field_name == "items" else 0
        return value
