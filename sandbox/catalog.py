"""A deterministic retail catalog shared by both sandboxes, so the same seed gives the same SKUs, categories,
attribute sets and customers in Cloud Retailer and (where seeded) in Magento.

Everything is derived from (seed, index): product i is the same whatever N is. Generating 100k products
takes about a second on a small machine and little memory (plain dataclasses with slots); the output for a
given seed is pinned by content hashes in tests/test_sandbox_cli.py.
"""

from __future__ import annotations

import _random
import gc
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@dataclass(frozen=True, slots=True)
class _Leaf:
    """What product(i) needs of its leaf category, worked out once instead of once per product."""

    id: str
    department_id: str
    noun: str
    range_name: str  # lower-case category name, for the description
    set_name: str
    wearable: bool  # Apparel and Footwear products also get a colour and a size


def _leaf(cat: CategorySpec) -> _Leaf:
    dept_name = _DEPARTMENT_NAME[cat.parent_id or ""]
    return _Leaf(
        cat.id,
        cat.parent_id or "",
        _NOUNS.get(cat.name, "Item"),
        cat.name.lower(),
        SET_FOR_DEPARTMENT[dept_name],
        dept_name in ("Apparel", "Footwear"),
    )


_LEAF_INFO = [_leaf(c) for c in _LEAVES]
_BRANDS = ["Northwind", "Contoso", "Fabrikam", "Tailspin"]
_COLORS = SHARED_ATTRIBUTES["color"] or []
_SIZES = SHARED_ATTRIBUTES["size"] or []
_MATERIALS = SHARED_ATTRIBUTES["material"] or []
_STORE_IDS = [str(store["id"]) for store in STORES]
# Wearable leaves by their first product (leaf L's first is product L, leaf 0's is product len(_LEAF_INFO)):
# styles are numbered in that order within each group.
_WEARABLE_FIRST = sorted((n or len(_LEAF_INFO)) for n, leaf in enumerate(_LEAF_INFO) if leaf.wearable)
_WEARABLE_RANK = {first % len(_LEAF_INFO): rank for rank, first in enumerate(_WEARABLE_FIRST)}


def _product_seed(i: int, seed: int) -> int:
    return seed * 1_000_003 + i


def product(i: int, seed: int = 1, *, styles: bool = False) -> ProductSpec:
    spec = _product(i, _random.Random(_product_seed(i, seed)))
    if styles and (place := style_place(i)) is not None:
        _as_variant(spec, style(place[0], seed), place[1])
    return spec


def iter_products(n: int, seed: int = 1, *, styles: bool = False) -> Iterator[ProductSpec]:
    """Products 1..n one at a time (a seeder converting each one need not hold all the specs at once).

    With `styles`, wearables come as variants of their style (see `style_place`): the same draws, then the
    colour, size and name overridden, so every other value is what the plain catalog has."""
    return _iter_products(n, seed, {} if styles else None)


def _iter_products(n: int, seed: int, made: dict[int, StyleSpec] | None) -> Iterator[ProductSpec]:
    """`made` (None: plain) collects the styles, each made from its first variant, which always comes first."""
    # One generator re-seeded per product: the same stream as a fresh one, without the allocation.
    rng = _random.Random(seed)
    for i in range(1, n + 1):
        rng.seed(_product_seed(i, seed))
        spec = _product(i, rng)
        if made is not None and (place := style_place(i)) is not None:
            number, position = place
            if position == 0:
                made[number] = _style(number, spec, seed)
            _as_variant(spec, made[number], position)
        yield spec


def products(n: int, seed: int = 1, *, styles: bool = False) -> list[ProductSpec]:
    with gc_paused():
        return list(iter_products(n, seed, styles=styles))


def styled_catalog(n: int, seed: int = 1) -> tuple[list[ProductSpec], list[StyleSpec]]:
    """`products(n, seed, styles=True)` and `styles(n, seed)` in one pass (each style from its first variant
    as generated, instead of generating that product a second time)."""
    made: dict[int, StyleSpec] = {}
    with gc_paused():
        specs = list(_iter_products(n, seed, made))
    return specs, [made[number] for number in sorted(made)]


# --- styles: wearables grouped into parents of variants ----------------------------------------------------
STYLE_SIZE = 5  # variants per style (the last style of a leaf may have fewer when the catalog ends)
STYLE_AXES = ["color", "size"]
_STYLE_SIZES = ["S", "M", "L"]


@dataclass(slots=True)
class StyleSpec:
    id: str
    code: str
    name: str
    description_html: str
    department_id: str
    category_ids: list[str]
    attribute_sets: list[dict[str, object]]
    axes: list[str]
    attributes: dict[str, str]
    images: list[ImageSpec]
    first_product: int  # the index of its first variant; the others follow every len(_LEAF_INFO) products


def style_place(i: int) -> tuple[int, int] | None:
    """(style number, position among its variants) of product i, or None for a product of a plain department.

    Product i and i + len(_LEAF_INFO) share a leaf; the k-th product of a wearable leaf is in group
    k // STYLE_SIZE of that leaf. Styles are numbered by their first product, so the styles of a catalog of
    any size are ST-1..ST-m and product i's style is the same whatever the catalog size."""
    leaves = len(_LEAF_INFO)
    rank = _WEARABLE_RANK.get(i % leaves)
    if rank is None:
        return None
    k = (i - 1) // leaves
    return (k // STYLE_SIZE) * len(_WEARABLE_RANK) + rank + 1, k % STYLE_SIZE


def style_count(n_products: int) -> int:
    """How many styles a catalog of n products has (a style exists once its first variant does)."""
    count = 0
    while (first := style_first_product(count + 1)) is not None and first <= n_products:
        count += 1
    return count


def style_first_product(number: int) -> int | None:
    if not _WEARABLE_FIRST:
        return None
    group, rank = divmod(number - 1, len(_WEARABLE_FIRST))
    return group * STYLE_SIZE * len(_LEAF_INFO) + _WEARABLE_FIRST[rank]


def style(number: int, seed: int = 1) -> StyleSpec:
    first = style_first_product(number)
    assert first is not None, "the catalog has no wearable leaf"
    return _style(number, _product(first, _random.Random(_product_seed(first, seed))), seed)


def styles(n_products: int, seed: int = 1) -> list[StyleSpec]:
    """The styles of a catalog of n products, ST-1 first."""
    return [style(number, seed) for number in range(1, style_count(n_products) + 1)]


def _style(number: int, first: ProductSpec, seed: int) -> StyleSpec:
    """Style `number`, derived from its first variant as the plain catalog draws it (never from the stream,
    which stays exactly what the plain catalog uses)."""
    name = first.name.rsplit(" ", 1)[0]  # "Urban Tee 51" -> "Urban Tee"
    leaf = _LEAF_INFO[int(first.id.removeprefix("P-")) % len(_LEAF_INFO)]
    attrs = {"brand": first.attributes["brand"], "material": first.attributes["material"]}
    return StyleSpec(
        id=f"ST-{number}",
        code=style_code(number),
        name=name,
        description_html=f"<p>{name}: our {leaf.range_name} style.</p><ul><li>{attrs['material']}</li></ul>",
        department_id=first.department_id,
        category_ids=list(first.category_ids),
        attribute_sets=[dict(s) for s in first.attribute_sets],
        axes=list(STYLE_AXES),
        attributes=attrs,
        images=[ImageSpec(f"SIMG-{number}-0", 0, True, _style_color(number, seed))],
        first_product=int(first.id.removeprefix("P-")),
    )


def style_code(number: int) -> str:
    return f"STY-{number:06d}"


def style_colors(number: int) -> tuple[str, str]:
    """The two colours of a style's variants; consecutive styles differ."""
    return _COLORS[number % len(_COLORS)], _COLORS[(number + 1) % len(_COLORS)]


def _as_variant(spec: ProductSpec, parent: StyleSpec, position: int) -> None:
    """Overrides only what makes product `spec` variant `position` of `parent`: (colour 0, S), (0, M),
    (0, L), (1, S), (1, M); each combination once per style."""
    color = style_colors(int(parent.id.removeprefix("ST-")))[position // len(_STYLE_SIZES)]
    size = _STYLE_SIZES[position % len(_STYLE_SIZES)]
    spec.attributes["color"], spec.attributes["size"] = color, size
    spec.name = f"{parent.name} {color} {size}"


def _style_color(number: int, seed: int) -> tuple[int, int, int]:
    # A hash rather than a draw: the product stream must stay untouched.
    h = zlib.crc32(f"style:{seed}:{number}".encode())
    return (h >> 16) & 0xFF, (h >> 8) & 0xFF, h & 0xFF


def _product(i: int, rng: _random.Random) -> ProductSpec:
    """Product i, drawn from `rng` seeded with _product_seed(i, seed): the same values in the same order as

        rng = random.Random(seed * 1_000_003 + i)
        name = f"{rng.choice(_ADJECTIVES)} {noun} {i}"; brand = rng.choice(_BRANDS)
        [color = rng.choice(_COLORS); size = rng.choice(_SIZES)]  # wearables only
        material = rng.choice(_MATERIALS); per image: 3 x rng.randrange(256)
        price = round(rng.uniform(5, 250), 2); weight = round(rng.uniform(0.1, 5.0), 2)
        per store: rng.randrange(0, 60)

    It uses the C generator underneath random.Random directly, and spells out what random.Random does for
    choice/randrange (`_randbelow`: draw n.bit_length() bits, retry while >= n) and uniform (a + (b-a) *
    random()): the Python-level wrappers were most of what a product used to cost. The tests pin the output
    (tests/test_sandbox_cli.py), so a change here that alters any value fails there.
    """
    bits = rng.getrandbits
    leaf = _LEAF_INFO[i % len(_LEAF_INFO)]
    while (r := bits(4)) >= 10:  # choice of 10 adjectives
        pass
    name = f"{_ADJECTIVES[r]} {leaf.noun} {i}"
    while (r := bits(3)) >= 4:  # choice of 4 brands
        pass
    attrs: dict[str, str] = {"brand": _BRANDS[r]}
    if leaf.wearable:
        while (r := bits(3)) >= 6:  # 6 colours
            pass
        attrs["color"] = _COLORS[r]
        while (r := bits(3)) >= 5:  # 5 sizes
            pass
        attrs["size"] = _SIZES[r]
    while (r := bits(3)) >= 5:  # 5 materials
        pass
    material = attrs["material"] = _MATERIALS[r]
    # Tuple items are evaluated left to right: red, green, blue, as the original generator expression drew them.
    images = [ImageSpec(f"IMG-{i}-0", 0, True, (_byte(bits), _byte(bits), _byte(bits)))]
    if i % 2:
        images.append(ImageSpec(f"IMG-{i}-1", 1, False, (_byte(bits), _byte(bits), _byte(bits))))
    price = round(5 + 245 * rng.random(), 2)
    weight = round(0.1 + (5.0 - 0.1) * rng.random(), 2)
    on_hand = {}
    for store_id in _STORE_IDS:
        while (r := bits(6)) >= 60:  # randrange(0, 60)
            pass
        on_hand[store_id] = r
    set_name = leaf.set_name
    return ProductSpec(
        id=f"P-{i}",
        sku=f"CR-{i:06d}",
        name=name,
        description_html=f"<p>{name} from our {leaf.range_name} range.</p><ul><li>{material}</li></ul>",
        price=price,
        weight=weight,
        web_active=(i % 10) != 0,  # every tenth product is not for the web: synced disabled
        department_id=leaf.department_id,
        category_ids=[leaf.id],
        attribute_sets=[{"name": set_name, "primary": True}]
        + ([{"name": "Default", "primary": False}] if set_name != "Default" else []),
        attributes=attrs,
        images=images,
        on_hand=on_hand,
    )


PRICE_LEVELS = ("A", "B", "C")


def price_levels(spec: ProductSpec) -> dict[str, float]:
    """The price levels product `spec` has: every third product has level A, every sixth B as well, every
    twelfth all three, each a fixed cut of its (seed-dependent) regular price. Derived rather than drawn, so
    the generator's stream, and with it every other value a seed gives, stays what the tests pin."""
    i = int(spec.id.removeprefix("P-"))
    cuts = (("A", 3, 0.9), ("B", 6, 0.8), ("C", 12, 0.7))
    return {level: round(spec.price * cut, 2) for level, every, cut in cuts if i % every == 0}


def _byte(bits: Callable[[int], int]) -> int:
    """randrange(256): 256.bit_length() is 9 bits, drawn again while >= 256."""
    while (r := bits(9)) >= 256:
        pass
    return r


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
    with gc_paused():
        return [customer(i, seed) for i in range(1, n + 1)]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while a seeder allocates: a 100k catalog is about a million objects, none of
    them garbage, and the collector would rescan them over and over (roughly as long as generating them)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def png_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    """A real, small, valid PNG of one colour (no imaging library needed)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(color) * size
    raw = row * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
