"""The Cloud Retailer records the connector reads (docs/cloudretailer-api.md), as pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Store(_Record):
    id: str
    code: str
    name: str
    type: str
    timezone: str | None = None


class ImageRef(_Record):
    id: str
    sha256: str
    position: int = 0
    primary: bool = False


class AttributeSetRef(_Record):
    name: str
    primary: bool = False


class PriceLevels(_Record):
    """Cloud Retailer's price levels; a level absent or null is not set."""

    A: float | None = None
    B: float | None = None
    C: float | None = None

    def get(self, level: str) -> float | None:
        value = getattr(self, level, None)
        return float(value) if value is not None else None


class Product(_Record):
    id: str
    sku: str
    name: str
    description_html: str | None = None
    price: float
    price_levels: PriceLevels = Field(default_factory=PriceLevels)
    weight: float | None = None
    web_active: bool = False
    department_id: str | None = None
    category_ids: list[str] = Field(default_factory=list)
    attribute_sets: list[AttributeSetRef] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    images: list[ImageRef] = Field(default_factory=list)
    style_id: str | None = None  # the style this product is a variant of
    updated_at: str | None = None
    deleted: bool = False

    @field_validator("price_levels", mode="before")
    @classmethod
    def _null_levels(cls, value: object) -> object:
        return {} if value is None else value

    @property
    def primary_attribute_set(self) -> str | None:
        return next((s.name for s in self.attribute_sets if s.primary), None)


class Style(_Record):
    """A parent of variants (Magento's configurable product, SKU `code`); `axes` are what variants differ in."""

    id: str
    code: str
    name: str
    description_html: str | None = None
    department_id: str | None = None
    category_ids: list[str] = Field(default_factory=list)
    attribute_sets: list[AttributeSetRef] = Field(default_factory=list)
    axes: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    images: list[ImageRef] = Field(default_factory=list)
    variant_ids: list[str] = Field(default_factory=list)
    updated_at: str | None = None
    deleted: bool = False

    @property
    def primary_attribute_set(self) -> str | None:
        return next((s.name for s in self.attribute_sets if s.primary), None)


class InventoryLevel(_Record):
    sku: str
    store_id: str
    on_hand: float
    updated_at: str | None = None


class Category(_Record):
    id: str
    code: str | None = None
    name: str
    parent_id: str | None = None
    active: bool = True
    updated_at: str | None = None


class Address(_Record):
    line1: str
    line2: str | None = None
    city: str
    region_code: str | None = None
    postcode: str | None = None
    country: str
    default_billing: bool = False
    default_shipping: bool = False


class Customer(_Record):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    updated_at: str | None = None


class SaleLine(_Record):
    sku: str
    quantity: float
    unit_price: float
    discount: float = 0
    tax: float = 0


class Tender(_Record):
    type: str
    amount: float


class Sale(_Record):
    id: str | None = None
    store_id: str
    external_ref: str
    customer_id: str | None = None
    lines: list[SaleLine]
    shipping: float = 0
    tax_total: float = 0
    total: float
    tenders: list[Tender]
    completed_at: str
