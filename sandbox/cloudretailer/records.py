"""The records the sandbox keeps, and their JSON form (the resource shapes of docs/cloudretailer-api.md).

Plain slotted dataclasses: 100k products with their images and two stock rows each must stay small."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.catalog import PRICE_LEVELS, png_bytes
from sandbox.cloudretailer.paging import Key, iso

PNG = "image/png"
JPEG = "image/jpeg"


@dataclass(slots=True)
class Image:
    id: str
    position: int
    primary: bool
    # Seeded images keep only their colour and are drawn on demand; uploaded ones keep their bytes.
    color: tuple[int, int, int] | None = None
    content: bytes | None = None
    content_type: str = PNG
    _sha256: str | None = None

    def data(self) -> bytes:
        if self.content is not None:
            return self.content
        assert self.color is not None
        return png_bytes(self.color)

    def sha256(self) -> str:
        # Lazy: hashing 150k seeded images up front would double the seeding time of a 100k catalog.
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.data()).hexdigest()
        return self._sha256

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "sha256": self.sha256(), "position": self.position, "primary": self.primary}


@dataclass(slots=True)
class Product:
    id: str
    sku: str
    name: str
    description_html: str
    price: float
    weight: float | None
    web_active: bool
    department_id: str | None
    category_ids: list[str]
    attribute_sets: list[dict[str, Any]]
    attributes: dict[str, Any]
    images: list[Image]
    updated_at: int = 0
    deleted: bool = False
    # Only the levels that are set: a level not set is answered as null.
    price_levels: dict[str, float] = field(default_factory=dict)
    style_id: str | None = None  # the style this product is a variant of

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "description_html": self.description_html,
            "price": self.price,
            "price_levels": {level: self.price_levels.get(level) for level in PRICE_LEVELS},
            "weight": self.weight,
            "web_active": self.web_active,
            "department_id": self.department_id,
            "category_ids": list(self.category_ids),
            "attribute_sets": [dict(s) for s in self.attribute_sets],
            "attributes": dict(self.attributes),
            "images": [i.to_json() for i in self.images],
            "style_id": self.style_id,
            "updated_at": iso(self.updated_at),
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class Style:
    """The parent of variants (products whose style_id is this id); Magento's configurable product."""

    id: str
    code: str
    name: str
    description_html: str
    department_id: str | None
    category_ids: list[str]
    attribute_sets: list[dict[str, Any]]
    axes: list[str]
    attributes: dict[str, Any]
    images: list[Image]
    updated_at: int = 0
    deleted: bool = False

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self, variant_ids: list[str]) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "description_html": self.description_html,
            "department_id": self.department_id,
            "category_ids": list(self.category_ids),
            "attribute_sets": [dict(s) for s in self.attribute_sets],
            "axes": list(self.axes),
            "attributes": dict(self.attributes),
            "images": [i.to_json() for i in self.images],
            "variant_ids": variant_ids,
            "updated_at": iso(self.updated_at),
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class StockLevel:
    sku: str
    store_id: str
    on_hand: float
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.sku)

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "store_id": self.store_id, "on_hand": self.on_hand, "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class Category:
    id: str
    code: str
    name: str
    parent_id: str | None
    active: bool
    level: int
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "parent_id": self.parent_id,
            "level": self.level,
            "active": self.active,
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class Customer:
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    addresses: list[dict[str, Any]]
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "addresses": [dict(a) for a in self.addresses],
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class Store:
    id: str
    code: str
    name: str
    type: str
    timezone: str
    address: dict[str, Any]
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "type": self.type,
            "timezone": self.timezone,
            "address": dict(self.address),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class AttributeSet:
    id: str
    name: str
    attributes: list[dict[str, Any]]
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "attributes": self.attributes, "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class Tender:
    id: str
    name: str
    display_order: int
    updated_at: int = 0

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        order = self.display_order
        return {"id": self.id, "name": self.name, "display_order": order, "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class Sale:
    id: str
    store_id: str
    external_ref: str
    customer_id: str | None
    lines: list[dict[str, Any]]
    shipping: float
    tax_total: float
    total: float
    tenders: list[dict[str, Any]]
    completed_at: int
    updated_at: int = 0  # when it was recorded; sales never change afterwards

    @property
    def key(self) -> Key:
        return (self.updated_at, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "store_id": self.store_id,
            "external_ref": self.external_ref,
            "customer_id": self.customer_id,
            "lines": [dict(line) for line in self.lines],
            "shipping": self.shipping,
            "tax_total": self.tax_total,
            "total": self.total,
            "tenders": [dict(t) for t in self.tenders],
            "completed_at": iso(self.completed_at),
            "created_at": iso(self.updated_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class DepartmentTotals:
    quantity: float = 0
    net_cents: int = 0
    tax_cents: int = 0


@dataclass(slots=True)
class SalesTotals:
    """Kept in cents so thousands of sales add up without float drift."""

    store_id: str
    sales_count: int = 0
    gross_cents: int = 0
    net_cents: int = 0
    discount_cents: int = 0
    shipping_cents: int = 0
    tax_cents: int = 0
    by_tender: dict[str, int] = field(default_factory=dict)
    by_department: dict[str, DepartmentTotals] = field(default_factory=dict)
    updated_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "sales_count": self.sales_count,
            "gross": cents(self.gross_cents),
            "net": cents(self.net_cents),
            "discount": cents(self.discount_cents),
            "shipping": cents(self.shipping_cents),
            "tax": cents(self.tax_cents),
            "by_tender": {name: cents(v) for name, v in sorted(self.by_tender.items())},
            "by_department": {
                dept: {"quantity": d.quantity, "net": cents(d.net_cents), "tax": cents(d.tax_cents)}
                for dept, d in sorted(self.by_department.items())
            },
            "updated_at": iso(self.updated_at) if self.updated_at else None,
        }


def to_cents(amount: float) -> int:
    return round(amount * 100)


def cents(value: int) -> float:
    return value / 100
