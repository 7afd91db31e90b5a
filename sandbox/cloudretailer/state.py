"""In-memory state of the sandbox Cloud Retailer, seeded deterministically from sandbox/catalog.py."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar

from sandbox import catalog
from sandbox.cloudretailer.paging import Clock, Key, KeysetIndex, PageQuery
from sandbox.cloudretailer.records import (
    AttributeSet,
    Category,
    Customer,
    Image,
    Product,
    Sale,
    SalesTotals,
    StockLevel,
    Store,
    Style,
    Tender,
)

# Seeded records carry fixed timestamps from here on (one microsecond apart), so the same seed gives the
# same bytes on every run; every later write takes the wall clock, which is always later.
SEED_TIME_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z

# Cloud Retailer's payment methods ("tenders"), in display order. Web orders are paid with "Web Orders".
TENDERS = ["Cash", "Credit", "Debit", "Check", "Gift Certificate", "Store Credit", "On Account", "Web Orders"]
WEB_ORDERS = "Web Orders"

SET_ATTRIBUTES: dict[str, list[str]] = {
    "Default": ["brand", "material"],
    "Clothing": ["brand", "color", "size", "material"],
    "Gear": ["brand", "material"],
    "Shoes": ["brand", "color", "size", "material"],
}

# catalog.STORES has no addresses; locations in Cloud Retailer always have one.
STORE_ADDRESSES: dict[str, dict[str, Any]] = {
    "S-1": {"line1": "100 Main St", "city": "Austin", "region_code": "TX", "postcode": "78701", "country": "US"},
    "W-1": {"line1": "1 Commerce Way", "city": "Austin", "region_code": "TX", "postcode": "78702", "country": "US"},
}
DEFAULT_ADDRESS = {"line1": "1 Depot Rd", "city": "Austin", "region_code": "TX", "postcode": "78703", "country": "US"}


class Row(Protocol):
    updated_at: int

    @property
    def key(self) -> Key: ...


R = TypeVar("R", bound=Row)


class Table(Generic[R]):
    """Records by id plus their (updated_at, id) index; every write goes through `insert` or `touch` so the
    index and the timestamps stay in step."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[str, R] = {}
        self.index = KeysetIndex()

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, row_id: str) -> R | None:
        return self.rows.get(row_id)

    def insert(self, row: R) -> R:
        row.updated_at = self.clock.next()
        self.rows[row.key[1]] = row
        self.index.add(row.key)
        return row

    def touch(self, row: R) -> None:
        """Record a change: a new, larger updated_at moves the row to the end of every listing."""
        old = row.key
        row.updated_at = self.clock.next()
        self.index.move(old, row.key)

    def page(self, query: PageQuery) -> tuple[list[R], Key | None]:
        keys, next_key = self.index.page(query)
        return [self.rows[k[1]] for k in keys], next_key

    def seed(self, rows: Iterable[R]) -> None:
        """Bulk load into an empty table: timestamps ascend, so the index is built already sorted."""
        assert not self.rows, "seed only an empty table"
        at = SEED_TIME_US
        for row in rows:
            row.updated_at = at
            key = row.key
            self.rows[key[1]] = row
            self.index.keys.append(key)
            at += 1


class State:
    def __init__(self) -> None:
        self.clock = Clock()
        self.stores: Table[Store] = Table(self.clock)
        self.products: Table[Product] = Table(self.clock)
        self.product_by_sku: dict[str, str] = {}
        self.styles: Table[Style] = Table(self.clock)
        self.style_by_code: dict[str, str] = {}
        # style id -> ids of every product whose style_id it is (deleted ones too), kept in step by set_style
        self.style_members: dict[str, set[str]] = {}
        self.stock: dict[str, Table[StockLevel]] = {}
        self.categories: Table[Category] = Table(self.clock)
        self.category_by_code: dict[str, str] = {}  # casefolded code -> id
        self.attribute_sets: Table[AttributeSet] = Table(self.clock)
        self.tenders: Table[Tender] = Table(self.clock)
        self.customers: Table[Customer] = Table(self.clock)
        self.customer_by_email: dict[str, str] = {}  # casefolded email -> id
        self.sales: Table[Sale] = Table(self.clock)
        self.sale_by_ref: dict[str, str] = {}
        self.totals: dict[str, SalesTotals] = {}
        self._counters: dict[str, int] = {}

    def next_id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}{self._counters[prefix]}"

    # --- seeding ----------------------------------------------------------------------------------
    def seed(self, seed: int, n_products: int, n_customers: int, *, styles: bool = False) -> None:
        # Seeding creates about ten objects per product and none of them is garbage: the cyclic collector
        # would only rescan them again and again (a third of the time of a 100k catalog).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._seed(seed, n_products, n_customers, styles)
        finally:
            if was_enabled:
                gc.enable()

    def _seed(self, seed: int, n_products: int, n_customers: int, styles: bool) -> None:
        self.stores.seed(
            Store(s["id"], s["code"], s["name"], s["type"], s["timezone"], _store_address(s["id"]))
            for s in catalog.STORES
        )
        for store_id in self.stores.rows:
            self.stock[store_id] = Table(self.clock)
            self.totals[store_id] = SalesTotals(store_id)
        self._seed_reference_data()
        specs, style_specs = (
            catalog.styled_catalog(n_products, seed) if styles else (catalog.products(n_products, seed), [])
        )
        self._counters["P-"] = n_products
        self._seed_styles(style_specs)
        self.products.seed(_product(spec, styles) for spec in specs)
        self.product_by_sku = {p.sku: p.id for p in self.products.rows.values()}
        for product in self.products.rows.values():
            if product.style_id is not None:
                self.style_members[product.style_id].add(product.id)
        for store_id, table in self.stock.items():
            table.seed(StockLevel(spec.sku, store_id, spec.on_hand.get(store_id, 0)) for spec in specs)
        self._counters["CU-"] = n_customers
        self.customers.seed(
            Customer(c.id, c.email, c.first_name, c.last_name, c.phone, [_address(a) for a in c.addresses])
            for c in catalog.customers(n_customers, seed)
        )
        self.customer_by_email = {c.email.casefold(): c.id for c in self.customers.rows.values()}

    def _seed_styles(self, specs: list[catalog.StyleSpec]) -> None:
        self._counters["ST-"] = len(specs)
        self.styles.seed(_style(spec) for spec in specs)
        self.style_by_code = {s.code: s.id for s in self.styles.rows.values()}
        self.style_members = {style_id: set() for style_id in self.styles.rows}

    def _seed_reference_data(self) -> None:
        specs = catalog.categories()
        parents = {c.id: c.parent_id for c in specs}
        self.categories.seed(
            Category(c.id, c.code, c.name, c.parent_id, c.active, _depth(c.id, parents)) for c in specs
        )
        self.category_by_code = {c.code.casefold(): c.id for c in self.categories.rows.values()}
        self._counters["D-"] = sum(1 for c in specs if c.parent_id is None)
        self._counters["C-"] = sum(1 for c in specs if c.parent_id is not None)
        self.attribute_sets.seed(
            AttributeSet(f"AS-{n}", name, [_attribute(code) for code in SET_ATTRIBUTES.get(name, ["brand"])])
            for n, name in enumerate(catalog.ATTRIBUTE_SETS, 1)
        )
        self.tenders.seed(Tender(f"T-{n}", name, n) for n, name in enumerate(TENDERS, 1))

    # --- lookups ----------------------------------------------------------------------------------
    def product_for_sku(self, sku: str) -> Product | None:
        product_id = self.product_by_sku.get(sku)
        return self.products.get(product_id) if product_id else None

    def style_for_code(self, code: str) -> Style | None:
        style_id = self.style_by_code.get(code)
        return self.styles.get(style_id) if style_id else None

    def members(self, style_id: str) -> list[Product]:
        """Every product whose style_id is `style_id`, deleted ones included, by id number."""
        found = (self.products.rows[p] for p in self.style_members.get(style_id, ()))
        return sorted(found, key=lambda p: int(p.id.removeprefix("P-")))

    def variants(self, style_id: str) -> list[Product]:
        """The style's variants: its members that are not deleted, by id number."""
        return [p for p in self.members(style_id) if not p.deleted]

    def style_json(self, style: Style) -> dict[str, Any]:
        return style.to_json([p.id for p in self.variants(style.id)])

    def set_style(self, product: Product, style_id: str | None) -> None:
        """Move a product to another style (or none), keeping style_members in step."""
        if product.style_id is not None:
            self.style_members.get(product.style_id, set()).discard(product.id)
        product.style_id = style_id
        if style_id is not None:
            self.style_members.setdefault(style_id, set()).add(product.id)

    def department_of(self, category_id: str) -> str | None:
        """The top ancestor (the department) of a category."""
        seen: set[str] = set()
        current = self.categories.get(category_id)
        while current is not None and current.parent_id is not None and current.id not in seen:
            seen.add(current.id)
            current = self.categories.get(current.parent_id)
        return current.id if current is not None else None

    def attribute_set_names(self) -> set[str]:
        return {s.name for s in self.attribute_sets.rows.values()}


def _store_address(store_id: str) -> dict[str, Any]:
    return dict(STORE_ADDRESSES.get(store_id, DEFAULT_ADDRESS))


def _product(spec: catalog.ProductSpec, styles: bool) -> Product:
    # The spec's lists and dicts are fresh objects per call, so they are taken over rather than copied.
    place = catalog.style_place(int(spec.id.removeprefix("P-"))) if styles else None
    return Product(
        id=spec.id,
        sku=spec.sku,
        name=spec.name,
        description_html=spec.description_html,
        price=spec.price,
        weight=spec.weight,
        web_active=spec.web_active,
        department_id=spec.department_id or None,
        category_ids=spec.category_ids,
        attribute_sets=spec.attribute_sets,
        attributes=spec.attributes,
        images=[Image(i.id, i.position, i.primary, color=i.color) for i in spec.images],
        price_levels=catalog.price_levels(spec),
        style_id=f"ST-{place[0]}" if place is not None else None,
    )


def _style(spec: catalog.StyleSpec) -> Style:
    return Style(
        id=spec.id,
        code=spec.code,
        name=spec.name,
        description_html=spec.description_html,
        department_id=spec.department_id,
        category_ids=spec.category_ids,
        attribute_sets=spec.attribute_sets,
        axes=spec.axes,
        attributes=spec.attributes,
        images=[Image(i.id, i.position, i.primary, color=i.color) for i in spec.images],
    )


ADDRESS_FIELDS = ("line1", "line2", "city", "region_code", "postcode", "country", "default_billing", "default_shipping")


def _address(spec: dict[str, Any]) -> dict[str, Any]:
    """The API's address shape, every field present (the catalog leaves out the empty ones)."""
    out = {name: spec.get(name) for name in ADDRESS_FIELDS}
    out["default_billing"] = bool(out["default_billing"])
    out["default_shipping"] = bool(out["default_shipping"])
    return out


def _depth(category_id: str, parents: dict[str, str | None]) -> int:
    depth, current = 1, parents.get(category_id)
    while current is not None:
        depth += 1
        current = parents.get(current)
    return depth


def _attribute(code: str) -> dict[str, Any]:
    options = catalog.SHARED_ATTRIBUTES.get(code)
    return {"code": code, "type": "select" if options else "text", "options": list(options or [])}
