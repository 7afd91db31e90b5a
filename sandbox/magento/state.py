"""The sandbox Magento's in-memory data: the records behind every route, with the indexes the routes need.

Products keep global (store 0) values and per-store-view overrides, like the EAV tables do. Records that
exist 100k times (products, source items) are slotted dataclasses with lazily created containers so a large
seed stays small; the rarer ones (orders, invoices, shipments) are kept as the dicts the API returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.magento.config import MagentoSandboxConfig, StoreView, Website
from sandbox.magento.configurable_state import ConfigurableStore
from sandbox.magento.search_criteria import ResultCache

ADMIN_STORE_ID = 0
PRODUCT_ENTITY_TYPE_ID = 4
DEFAULT_STOCK_ID = 1


def magento_time(moment: datetime) -> str:
    """Magento's timestamp format: UTC, `Y-m-d H:i:s`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class AttributeOption:
    id: int
    label: str
    sort_order: int = 0
    is_default: bool = False
    store_labels: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class Attribute:
    id: int
    code: str
    label: str
    frontend_input: str  # text, textarea, select, multiselect, boolean, price, weight, date
    backend_type: str  # static, varchar, text, int, decimal, datetime
    scope: str  # global, website, store
    is_user_defined: bool = False
    is_required: bool = False
    top_level: bool = False  # a ProductInterface field (name, price...) rather than a custom attribute
    options: list[AttributeOption] = field(default_factory=list)
    is_wysiwyg_enabled: bool = False

    @property
    def uses_options(self) -> bool:
        return self.frontend_input in ("select", "multiselect", "boolean")


@dataclass(slots=True)
class AttributeSet:
    id: int
    name: str
    sort_order: int = 0
    entity_type_id: int = PRODUCT_ENTITY_TYPE_ID


@dataclass(slots=True)
class MediaEntry:
    id: int
    file: str
    media_type: str = "image"
    label: str | None = None
    position: int = 0
    disabled: bool = False
    types: list[str] = field(default_factory=list)
    content_type: str = "image/png"
    size: int = 0


@dataclass(slots=True)
class Product:
    id: int
    sku: str
    type_id: str
    attribute_set_id: int
    created_at: str
    updated_at: str
    values: dict[str, Any]  # global (store 0) attribute values, by attribute code
    website_ids: list[int]
    store_values: dict[int, dict[str, Any]] | None = None  # store view id -> overridden values
    category_links: dict[int, int] | None = None  # category id -> position
    media: list[MediaEntry] | None = None

    def value(self, code: str, store_id: int = ADMIN_STORE_ID) -> Any:
        if store_id and self.store_values:
            override = self.store_values.get(store_id)
            if override is not None and code in override:
                return override[code]
        return self.values.get(code)


@dataclass(slots=True)
class Category:
    id: int
    parent_id: int
    name: str
    path: str
    level: int
    position: int
    created_at: str
    updated_at: str
    is_active: bool = True
    include_in_menu: bool = True
    custom: dict[str, Any] = field(default_factory=dict)  # url_key, description, ... (custom_attributes)
    available_sort_by: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Source:
    source_code: str
    name: str
    enabled: bool = True
    country_id: str = "US"
    postcode: str = "00000"
    description: str | None = None


@dataclass(slots=True)
class SourceItem:
    sku: str
    source_code: str
    quantity: float
    status: int  # 1 in stock, 0 out of stock
    seq: int = 0  # source_item_id: the table's natural order


@dataclass(slots=True)
class Reservation:
    """A row of MSI's append-only `inventory_reservation`: what a sale still owes a stock, per SKU."""

    reservation_id: int
    stock_id: int
    sku: str
    quantity: float  # negative at placement, positive when shipped or canceled
    metadata: str  # the JSON Magento writes: event_type, object_type, object_id, object_increment_id


@dataclass(slots=True)
class CustomerGroup:
    id: int
    code: str
    tax_class_id: int = 3
    tax_class_name: str = "Retail Customer"


@dataclass(slots=True)
class Customer:
    id: int
    email: str
    firstname: str
    lastname: str
    website_id: int
    store_id: int
    group_id: int
    created_at: str
    updated_at: str
    created_in: str
    extra: dict[str, Any] = field(default_factory=dict)  # middlename, dob, gender, taxvat, ...
    addresses: list[dict[str, Any]] = field(default_factory=list)
    password_hash: str | None = None


class Ids:
    """Auto-increment counters per table."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self._last: Counter[str] = Counter(start or {})

    def next(self, table: str) -> int:
        self._last[table] += 1
        return self._last[table]

    def peek(self, table: str) -> int:
        return self._last[table]


class MagentoState:
    def __init__(self, config: MagentoSandboxConfig, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.websites: dict[int, Website] = {w.id: w for w in config.websites}
        self.groups = {g.id: g for g in config.store_groups}
        self.views: dict[int, StoreView] = {v.id: v for v in config.store_views}
        self.views_by_code: dict[str, StoreView] = {v.code: v for v in config.store_views}
        self.ids = Ids({"catalog_category_entity": 2, "eav_attribute_set": 8})

        self.attribute_sets: dict[int, AttributeSet] = {}
        self.attributes: dict[str, Attribute] = {}
        self.option_ids = Ids()

        self.products: dict[str, Product] = {}  # by lower-cased SKU: Magento's SKU lookup ignores case
        self.products_by_id: dict[int, Product] = {}
        # url_key -> the lower-cased SKU (or SKUs) using it in some scope; see url_keys.py
        self.url_keys: dict[str, str | set[str]] = {}
        self.media_files: set[str] = set()
        # lower SKU -> (website id, customer group id or None for all groups, qty) -> tier price
        self.tier_prices: dict[str, dict[tuple[int, int | None, float], Any]] = {}
        self.configurable = ConfigurableStore()

        self.categories: dict[int, Category] = {}
        self.category_products: dict[int, dict[str, int]] = {}  # category id -> {lower SKU: position}

        self.sources: dict[str, Source] = {}
        self.source_items: dict[str, dict[str, SourceItem]] = {}  # source code -> lower SKU -> item
        self.stock_flags: dict[str, dict[str, Any]] = {}  # lower SKU -> legacy stock item settings sent
        self.reservations: list[Reservation] = []
        self.reserved: dict[tuple[int, str], float] = {}  # (stock id, lower SKU) -> sum of its reservations

        self.customers: dict[int, Customer] = {}
        self.customer_emails: dict[tuple[int, str], int] = {}  # (website id, lower email) -> customer id
        self.customer_groups: dict[int, CustomerGroup] = {}

        self.orders: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}

        self.versions: Counter[str] = Counter()
        self.search_cache = ResultCache()

    # --- time and versions --------------------------------------------------------------------------------
    def now(self) -> str:
        return magento_time(self.clock())

    def touched(self, collection: str) -> None:
        """A write happened: cached search results over this collection are stale."""
        self.versions[collection] += 1

    # --- stores -------------------------------------------------------------------------------------------
    def views_of_website(self, website_id: int) -> list[StoreView]:
        return [v for v in self.views.values() if v.website_id == website_id]

    def root_category_of(self, store_id: int) -> int:
        view = self.views.get(store_id)
        return self.groups[view.store_group_id].root_category_id if view else 1

    # --- products -----------------------------------------------------------------------------------------
    def product(self, sku: str) -> Product | None:
        return self.products.get(sku.lower())

    def iter_products(self) -> Iterator[Product]:
        return iter(self.products_by_id.values())

    def add_product(self, product: Product) -> None:
        self.products[product.sku.lower()] = product
        self.products_by_id[product.id] = product

    def remove_product(self, product: Product) -> None:
        key = product.sku.lower()
        self.products.pop(key, None)
        self.products_by_id.pop(product.id, None)
        for category_id in product.category_links or {}:
            self.category_products.get(category_id, {}).pop(key, None)
        for items in self.source_items.values():
            items.pop(key, None)
        self.stock_flags.pop(key, None)
        self.tier_prices.pop(key, None)
        for entry in product.media or []:
            self.media_files.discard(entry.file)
        self.configurable.drop_product(product.id)

    def set_category_link(self, product: Product, category_id: int, position: int) -> None:
        if product.category_links is None:
            product.category_links = {}
        product.category_links[category_id] = position
        self.category_products.setdefault(category_id, {})[product.sku.lower()] = position

    def remove_category_link(self, product: Product, category_id: int) -> bool:
        if not product.category_links or category_id not in product.category_links:
            return False
        del product.category_links[category_id]
        self.category_products.get(category_id, {}).pop(product.sku.lower(), None)
        if not product.category_links:
            product.category_links = None
        return True

    # --- inventory ----------------------------------------------------------------------------------------
    def source_item(self, sku: str, source_code: str) -> SourceItem | None:
        return self.source_items.get(source_code, {}).get(sku.lower())

    def put_source_item(self, sku: str, source_code: str, quantity: float, status: int) -> SourceItem:
        items = self.source_items.setdefault(source_code, {})
        key = sku.lower()
        item = items.get(key)
        if item is None:
            item = items[key] = SourceItem(sku, source_code, quantity, status, self.ids.next("inventory_source_item"))
        else:
            item.quantity, item.status = quantity, status
        self.touched("source_items")
        return item

    def all_source_items(self) -> list[SourceItem]:
        """Every source item in source_item_id order."""
        out = [item for items in self.source_items.values() for item in items.values()]
        if len(self.source_items) > 1:
            out.sort(key=lambda item: item.seq)
        return out

    def add_reservation(self, stock_id: int, sku: str, quantity: float, metadata: str) -> Reservation:
        reservation = Reservation(self.ids.next("inventory_reservation"), stock_id, sku, quantity, metadata)
        self.reservations.append(reservation)
        key = (stock_id, sku.lower())
        self.reserved[key] = self.reserved.get(key, 0.0) + quantity
        return reservation

    def reserved_qty(self, sku: str, stock_id: int = DEFAULT_STOCK_ID) -> float:
        return self.reserved.get((stock_id, sku.lower()), 0.0)
