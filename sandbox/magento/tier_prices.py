"""Routes: /V1/products/tier-prices (add or update), -information (read) and -delete, the price storage API
(`Catalog/Model/Product/Price/TierPriceStorage`), and /V1/customerGroups/{id}.

As in Magento, an item it refuses (unknown SKU, group or website, bad price, type or quantity) is left out and
reported in the answer, `[]` when every item was taken; the group is named by its code, case-insensitively,
or `all groups`. A delete only removes a row whose price matches too (`retrieveAffectedPriceIds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.magento.errors import MagentoError, no_such_entity
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_json, state_of
from sandbox.magento.state import MagentoState

RESOURCE = "Magento_Catalog::products"
GROUP_RESOURCE = "Magento_Customer::group"
ALL_GROUPS = "all groups"
NO_GROUP_ID = -1  # group ids start at 0 (NOT LOGGED IN), so 0 cannot mean "none"
PRICE_TYPES = ("fixed", "discount")
ROW = "Row ID: SKU = %SKU, Website ID: %websiteId, Customer Group: %customerGroup, Quantity: %qty."
INVALID_SKU = "Invalid attribute SKU = %SKU. " + ROW
INVALID_PRICE = "Invalid attribute Price = %price. " + ROW
INVALID_TYPE = "Invalid attribute Price Type = %priceType. " + ROW
INVALID_QTY = "Invalid attribute Quantity = %qty. " + ROW
INVALID_WEBSITE = "Invalid attribute Website ID = %websiteId. " + ROW
NO_GROUP = "No such entity with Customer Group = %customerGroup. " + ROW
DUPLICATE = (
    "We found a duplicate website, tier price, customer group and quantity: Customer Group = %customerGroup, "
    "Website ID = %websiteId, Quantity = %qty. " + ROW
)
# (website id, customer group id or None for all groups, quantity)
Key = tuple[int, int | None, float]


@dataclass(slots=True)
class TierPrice:
    price: float
    price_type: str


def register(routes: RestRoutes) -> None:
    """Registered before /products/{sku} so the SKU pattern cannot swallow them."""
    routes.add("POST", "/products/tier-prices", update, RESOURCE)
    routes.add("POST", "/products/tier-prices-information", information, RESOURCE)
    routes.add("POST", "/products/tier-prices-delete", delete, RESOURCE)


def register_groups(routes: RestRoutes) -> None:
    routes.add("GET", "/customerGroups/{id}", get_group, GROUP_RESOURCE)


async def get_group(request: web.Request) -> web.Response:
    group_id = int_param(request, "id")
    group = state_of(request).customer_groups.get(group_id)
    if group is None:
        raise no_such_entity("id", group_id)
    return json_response(
        {"id": group.id, "code": group.code, "tax_class_id": group.tax_class_id, "tax_class_name": group.tax_class_name}
    )


def _text(value: Any) -> str:
    """PHP's string form of a parameter: 1.0 is "1", None is ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _group_id(state: MagentoState, code: Any) -> int | None:
    """The group a code names: None for all groups, NO_GROUP_ID when no group has it."""
    name = str(code or "").lower()
    if name == ALL_GROUPS:
        return None
    return next((g.id for g in state.customer_groups.values() if g.code.lower() == name), NO_GROUP_ID)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _failures(state: MagentoState, item: dict[str, Any], batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every check Magento's TierPriceValidator makes on one item, in its order."""
    sku, website, group, qty = item.get("sku"), item.get("website_id"), item.get("customer_group"), item.get("quantity")
    row = [_text(sku), _text(website), _text(group), _text(qty)]
    out: list[dict[str, Any]] = []
    if not sku or state.product(str(sku)) is None:
        out.append({"message": INVALID_SKU, "parameters": row})
    price, quantity = _number(item.get("price")), _number(qty)
    price_type = item.get("price_type")
    if price is None or price < 0 or (price_type == "discount" and price > 100):
        out.append({"message": INVALID_PRICE, "parameters": [_text(item.get("price")), *row]})
    if price_type not in PRICE_TYPES:
        out.append({"message": INVALID_TYPE, "parameters": [_text(price_type), *row]})
    if quantity is None or quantity < 1:
        out.append({"message": INVALID_QTY, "parameters": row})
    if _website(state, website) is None:
        out.append({"message": INVALID_WEBSITE, "parameters": row})
    elif _clashes(state, item, batch):
        out.append({"message": DUPLICATE, "parameters": row})
    if _group_id(state, group) == NO_GROUP_ID:
        out.append({"message": NO_GROUP, "parameters": row})
    return out


def _website(state: MagentoState, value: Any) -> int | None:
    website = _number(value)
    if website is None or not website.is_integer() or (website != 0 and int(website) not in state.websites):
        return None
    return int(website)


def _clashes(state: MagentoState, item: dict[str, Any], batch: list[dict[str, Any]]) -> bool:
    """One price for all websites and one for a single website, same group and quantity: Magento refuses
    the second (`checkUnique`), against the batch and against the rows stored."""
    website, group, qty = (
        _website(state, item.get("website_id")),
        _group_id(state, item.get("customer_group")),
        item.get("quantity"),
    )
    sku = str(item.get("sku") or "").lower()
    others: list[tuple[int | None, int | None, Any]] = [
        (_website(state, o.get("website_id")), _group_id(state, o.get("customer_group")), o.get("quantity"))
        for o in batch
        if str(o.get("sku") or "").lower() == sku
    ]
    others += [(w, g, q) for (w, g, q) in state.tier_prices.get(sku, {})]
    return any(
        g == group and _number(q) == _number(qty) and (w == 0 or website == 0) and w != website for w, g, q in others
    )


def _key(state: MagentoState, item: dict[str, Any]) -> Key:
    group = _group_id(state, item.get("customer_group"))
    return (int(item["website_id"]), group, float(item["quantity"]))


async def _prices(request: web.Request) -> list[dict[str, Any]]:
    body = await read_json(request)
    prices = body.get("prices") if isinstance(body, dict) else None
    if prices is None:
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "prices"})
    if not isinstance(prices, list) or not all(isinstance(p, dict) for p in prices):
        raise MagentoError(400, "Decoding error.")
    return prices


async def update(request: web.Request) -> web.Response:
    state = state_of(request)
    prices = await _prices(request)
    failed: list[dict[str, Any]] = []
    accepted = []
    for item in prices:
        problems = _failures(state, item, prices)
        failed += problems
        if not problems:
            accepted.append(item)
    for item in accepted:
        sku = state.product(str(item["sku"]))
        assert sku is not None  # checked above
        rows = state.tier_prices.setdefault(sku.sku.lower(), {})
        rows[_key(state, item)] = TierPrice(float(item["price"]), str(item["price_type"]))
    if accepted:
        state.touched("products")
    return json_response(failed)


async def delete(request: web.Request) -> web.Response:
    state = state_of(request)
    prices = await _prices(request)
    failed: list[dict[str, Any]] = []
    for item in prices:
        problems = _failures(state, item, [])
        failed += problems
        if problems:
            continue
        product = state.product(str(item["sku"]))
        assert product is not None  # checked above
        rows = state.tier_prices.get(product.sku.lower(), {})
        key = _key(state, item)
        stored = rows.get(key)
        # Magento matches the row by its price too: a delete naming another price removes nothing.
        if stored is not None and stored.price == float(item["price"]) and stored.price_type == item["price_type"]:
            del rows[key]
            state.touched("products")
    return json_response(failed)


async def information(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request)
    skus = body.get("skus") if isinstance(body, dict) else None
    if skus is None:
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "skus"})
    if not isinstance(skus, list):
        raise MagentoError(400, "Decoding error.")
    found = {str(sku).lower(): state.product(str(sku)) for sku in skus}
    missing = [str(sku) for sku in skus if found[str(sku).lower()] is None]
    if missing:
        # InvalidSkuProcessor::filterSkuList: one unknown SKU fails the whole read.
        raise MagentoError(404, "Requested products don't exist: %sku", {"sku": ", ".join(dict.fromkeys(missing))})
    out: list[dict[str, Any]] = []
    for product in found.values():
        assert product is not None
        for (website, group, qty), row in sorted(
            state.tier_prices.get(product.sku.lower(), {}).items(), key=lambda kv: (kv[0][0], kv[0][1] or -1, kv[0][2])
        ):
            out.append(
                {
                    "price": row.price,
                    "price_type": row.price_type,
                    "website_id": website,
                    "sku": product.sku,
                    "customer_group": ALL_GROUPS if group is None else state.customer_groups[group].code,
                    "quantity": qty,
                }
            )
    return json_response(out)
