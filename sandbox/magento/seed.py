"""The initial state of a sandbox Magento, derived from its config alone (same config, same store).

A fresh install's fixtures (admin store, root categories, customer groups, the `default` source, the
Default attribute set with id 4), the seeded catalog's attribute sets and attributes, and optionally
pre-existing products (with their on-hand as source items) and customers from sandbox.catalog.
"""

from __future__ import annotations

from sandbox import catalog
from sandbox.magento import url_keys
from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.directory import find_region
from sandbox.magento.eav import seed_attributes
from sandbox.magento.state import (
    AttributeSet,
    Category,
    Customer,
    CustomerGroup,
    MagentoState,
    Product,
    Source,
    SourceItem,
)

DEFAULT_ATTRIBUTE_SET_ID = 4  # "Default" in every Magento install
# Magento's four, and a fifth made by hand, so three price levels have three groups of their own.
SOURCE_NAMES = {"default": "Default Source", "main_street": "Main Street"}
CUSTOMER_GROUPS = [(0, "NOT LOGGED IN"), (1, "General"), (2, "Wholesale"), (3, "Retailer"), (4, "VIP")]


def build_state(config: MagentoSandboxConfig) -> MagentoState:
    state = MagentoState(config)
    now = state.now()
    _attribute_sets(state)
    seed_attributes(state)
    state.categories[1] = Category(1, 0, "Root Catalog", "1", 0, 0, now, now)
    state.categories[2] = Category(2, 1, "Default Category", "1/2", 1, 1, now, now)
    state.categories[2].custom = {"url_key": "default-category", "display_mode": "PRODUCTS", "is_anchor": "1"}
    # Without MSI there are no sources to speak of: only `default` (the legacy stock item's storage) and the seed's.
    for code in config.source_codes if config.msi else dict.fromkeys(["default", config.seed_source_code]):
        state.sources[code] = Source(code, SOURCE_NAMES.get(code) or code.replace("_", " ").title())
        state.source_items[code] = {}
    for group_id, code in CUSTOMER_GROUPS:
        state.customer_groups[group_id] = CustomerGroup(group_id, code)
    with catalog.gc_paused():  # a 100k seed allocates millions of objects, none of them garbage
        _products(state, config.products, config.seed, now)
        _customers(state, config.customers, config.seed, now)
    return state


def _attribute_sets(state: MagentoState) -> None:
    for n, name in enumerate(catalog.MAGENTO_ATTRIBUTE_SETS):
        set_id = DEFAULT_ATTRIBUTE_SET_ID if name == "Default" else state.ids.next("eav_attribute_set")
        state.attribute_sets[set_id] = AttributeSet(set_id, name, sort_order=n + 1)


def _products(state: MagentoState, count: int, seed: int, now: str) -> None:
    """`count` products as if synced before: global values, every website, on-hand at the seed source."""
    set_ids = {s.name: s.id for s in state.attribute_sets.values()}
    option_ids = {
        code: {o.label: str(o.id) for o in attr.options} for code, attr in state.attributes.items() if attr.uses_options
    }
    website_ids = sorted(state.websites)
    items = state.source_items[state.config.seed_source_code]
    for spec in catalog.iter_products(count, seed):
        primary = next((str(s["name"]) for s in spec.attribute_sets if s.get("primary")), "Default")
        values: dict[str, object] = {
            "name": spec.name,
            "price": spec.price,
            "status": 1 if spec.web_active else 2,
            "visibility": 4,
            "weight": spec.weight,
            "description": spec.description_html,
            "url_key": url_keys.slug(spec.name),
            "tax_class_id": "2",
        }
        for code, label in spec.attributes.items():
            values[code] = option_ids[code].get(label, label) if code in option_ids else label
        product_id = state.ids.next("catalog_product_entity")
        product = Product(
            product_id,
            spec.sku,
            "simple",
            set_ids.get(primary, DEFAULT_ATTRIBUTE_SET_ID),
            now,
            now,
            values,
            website_ids,  # shared list: never mutated in place, a save assigns a new one
        )
        state.add_product(product)
        url_keys.index(state, product)
        quantity = spec.on_hand.get(catalog.LINKED_STORE_ID, 0)
        items[spec.sku.lower()] = SourceItem(
            spec.sku,
            state.config.seed_source_code,
            float(quantity),
            int(quantity > 0),
            state.ids.next("inventory_source_item"),
        )


def _customers(state: MagentoState, count: int, seed: int, now: str) -> None:
    view = state.views_by_code["default"]
    for i in range(1, count + 1):
        spec = catalog.customer(i, seed)
        customer = Customer(
            state.ids.next("customer_entity"),
            spec.email,
            spec.first_name,
            spec.last_name,
            view.website_id,
            view.id,
            1,
            now,
            now,
            view.name,
        )
        for raw in spec.addresses:
            country = str(raw["country"])
            region = find_region(country, region_id=None, code=str(raw["region_code"]), name=None)
            address: dict[str, object] = {
                "id": state.ids.next("customer_address_entity"),
                "customer_id": customer.id,
                "firstname": spec.first_name,
                "lastname": spec.last_name,
                "street": [str(raw["line1"])],
                "city": str(raw["city"]),
                "postcode": str(raw["postcode"]),
                "country_id": country,
                "telephone": spec.phone,
                "default_billing": bool(raw.get("default_billing")),
                "default_shipping": bool(raw.get("default_shipping")),
            }
            if region is not None:
                address["region"] = {"region_code": region.code, "region": region.name, "region_id": region.id}
                address["region_id"] = region.id
            customer.addresses.append(address)
        state.customers[customer.id] = customer
        state.customer_emails[(customer.website_id, customer.email.lower())] = customer.id
