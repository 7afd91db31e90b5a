"""A deterministic retail catalog shared by both sandboxes, so the same seed gives the same SKUs, categories,
attribute sets and customers in Cloud Retailer and (where seeded) in Magento.

Everything is derived from (seed, index): product i is the same whatever N is. Generating 100k products
takes a few seconds on a small machine and little memory (plain dataclasses with slots).
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, field

DEPARTMENTS: dict[str, list[str]] = {
    "Apparel": ["T-Shirts", "Jackets", "Trousers"],
    "Footwear": ["Running", "Boots"],
    "Home": ["Kitchen", "Bedding", "Lighting"],
    "Outdoor": ["Camping", "Cycling"],
}
# Attribute sets in Cloud Retailer. "Shoes" is deliberately absent from the sandbox Magento (a product whose
# primary set is "Shoes" must fail with a clear reason, never create the set).
ATTRIBUTE_SETS = ["Default", "Clothing", "Gear", "Shoes"]
MAGENTO_ATTRIBUTE_SETS = ["Default", "Clothing", "Gear"]
SET_FOR_DEPARTMENT = {"Apparel": "Clothing", "Footwear": "Shoes", "Home": "Default", "Outdoor": "Gear"}
# Attributes both systems have (code -> select options, or None for free text) ...
SHARED_ATTRIBUTES: dict[str, list[str] | None] = {
    "color": ["Black", "White", "Red", "Blue", "Green", "Grey"],
    "size": ["XS", "S", "M", "L", "XL"],
    "material": ["Cotton", "Wool", "Polyester", "Leather", "Steel"],
    "brand": None,
}
# ... and ones only Magento has (never sent by the gateway; admins manage them freely).
MAGENTO_ONLY_ATTRIBUTES = ["badge_text", "gift_wrap_available"]

STORES = [
    {"id": "S-1", "code": "MAIN", "name": "Main Street", "type": "store", "timezone": "America/Chicago"},
    {"id": "W-1", "code": "WEB", "name": "Web Store", "type": "ecommerce", "timezone": "UTC"},
]
LINKED_STORE_ID = "W-1"

_ADJECTIVES = ["Classic", "Urban", "Trail", "Cozy", "Bright", "Rugged", "Essential", "Premium", "Lite", "Nordic"]
_NOUNS = {
    "T-Shirts": "Tee",
    "Jackets": "Jacket",
    "Trousers": "Chinos",
    "Running": "Runner",
    "Boots": "Boot",
    "Kitchen": "Pan",
    "Bedding": "Duvet",
    "Lighting": "Lamp",
    "Camping": "Tent",
    "Cycling": "Helmet",
}
_FIRST = ["Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Isla", "Jack", "Mia", "Noah"]
_LAST = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore", "Clark"]
_REGIONS = [("US", "TX", "Austin", "78701"), ("US", "CA", "San Jose", "95113"), ("US", "NY", "Albany", "12207")]


@dataclass(slots=True)
class CategorySpec:
    id: str
    code: str
    name: str
    parent_id: str | None
    active: bool = True


@dataclass(slots=True)
class ImageSpec:
    id: str
    position: int
    primary: bool
    color: tuple[int, int, int]


@dataclass(slots=True)
class ProductSpec:
    id: str
    sku: str
    name: str
    description_html: str
    price: float
    weight: float
    web_active: bool
    department_id: str
    category_ids: list[str]
    attribute_sets: list[dict[str, object]]
    attributes: dict[str, str]
    images: list[ImageSpec] = field(default_factory=list)
    on_hand: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class CustomerSpec:
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str
    addresses: list[dict[str, object]]


def categories() -> list[CategorySpec]:
    """Departments (no parent) and their categories, ids stable: D-1.. and C-1.."""
    out: list[CategorySpec] = []
    c = 0
    for d, (dept, cats) in enumerate(DEPARTMENTS.items(), 1):
        dept_id = f"D-{d}"
        out.append(CategorySpec(dept_id, dept.upper()[:8], dept, None))
        for cat in cats:
            c += 1
            out.append(CategorySpec(f"C-{c}", f"{dept.upper()[:3]}-{cat.upper()[:5]}", cat, dept_id))
    return out


_CATEGORIES = categories()
_LEAVES = [c for c in _CATEGORIES if c.parent_id is not None]
_DEPARTMENT_NAME = {c.id: c.name for c in _CATEGORIES if c.parent_id is None}


def sku(i: int) -> str:
    return f"CR-{i:06d}"


def product(i: int, seed: int = 1) -> ProductSpec:
    rng = random.Random(seed * 1_000_003 + i)
    cat = _LEAVES[i % len(_LEAVES)]
    dept_name = _DEPARTMENT_NAME[cat.parent_id or ""]
    noun = _NOUNS.get(cat.name, "Item")
    name = f"{rng.choice(_ADJECTIVES)} {noun} {i}"
    set_name = SET_FOR_DEPARTMENT[dept_name]
    attrs: dict[str, str] = {"brand": rng.choice(["Northwind", "Contoso", "Fabrikam", "Tailspin"])}
    if dept_name in ("Apparel", "Footwear"):
        attrs["color"] = rng.choice(SHARED_ATTRIBUTES["color"] or [])
        attrs["size"] = rng.choice(SHARED_ATTRIBUTES["size"] or [])
    attrs["material"] = rng.choice(SHARED_ATTRIBUTES["material"] or [])
    images = [
        ImageSpec(f"IMG-{i}-{n}", n, n == 0, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        for n in range(1 + i % 2)
    ]
    return ProductSpec(
        id=f"P-{i}",
        sku=sku(i),
        name=name,
        description_html=f"<p>{name} from our {cat.name.lower()} range.</p><ul><li>{attrs['material']}</li></ul>",
        price=round(rng.uniform(5, 250), 2),
        weight=round(rng.uniform(0.1, 5.0), 2),
        web_active=(i % 10) != 0,  # every tenth product is not for the web: synced disabled
        department_id=cat.parent_id or "",
        category_ids=[cat.id],
        attribute_sets=[{"name": set_name, "primary": True}]
        + ([{"name": "Default", "primary": False}] if set_name != "Default" else []),
        attributes=attrs,
        images=images,
        on_hand={store["id"]: rng.randrange(0, 60) for store in STORES},
    )


def products(n: int, seed: int = 1) -> list[ProductSpec]:
    return [product(i, seed) for i in range(1, n + 1)]


def customer(i: int, seed: int = 1) -> CustomerSpec:
    rng = random.Random(seed * 7_919 + i)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    country, region, city, postcode = rng.choice(_REGIONS)
    return CustomerSpec(
        id=f"CU-{i}",
        email=f"{first.lower()}.{last.lower()}.{i}@example.com",
        first_name=first,
        last_name=last,
        phone=f"+1-512-555-{i % 10_000:04d}",
        addresses=[
            {
                "line1": f"{rng.randrange(1, 999)} Main St",
                "city": city,
                "region_code": region,
                "postcode": postcode,
                "country": country,
                "default_billing": True,
                "default_shipping": True,
            }
        ],
    )


def customers(n: int, seed: int = 1) -> list[CustomerSpec]:
    return [customer(i, seed) for i in range(1, n + 1)]


def png_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    """A real, small, valid PNG of one colour (no imaging library needed)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(color) * size
    raw = row * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
