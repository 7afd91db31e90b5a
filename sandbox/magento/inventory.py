"""Routes: MSI sources, source items and salable quantity, and the legacy stock item API (default source only).

The MSI routes exist only when the config's `msi` is on; without it they are unknown routes (404 "Request
does not match any route."), like a store whose Magento_Inventory* modules were removed. How orders move
stock in each mode: stock_moves.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.magento import search_criteria, stock_moves
from sandbox.magento.errors import MagentoError, product_not_found, required_field
from sandbox.magento.routing import RestRoutes, int_param, json_response, read_json, read_param, state_of
from sandbox.magento.state import MagentoState, Product, Source, SourceItem
from sandbox.magento.stock import apply_stock_item, stock_item_view

SOURCES = "Magento_InventoryApi::source"
SOURCE_ITEMS = "Magento_InventoryApi::source_item"
LEGACY = "Magento_CatalogInventory::cataloginventory"
SALES_STOCK = "Magento_InventorySalesApi::stock"
SOURCE_FIELDS = frozenset({"source_code", "name", "enabled", "country_id", "postcode"})
ITEM_FIELDS = frozenset({"sku", "source_code", "quantity", "status"})


def register_msi(routes: RestRoutes) -> None:
    routes.add("GET", "/inventory/sources", list_sources, SOURCES)
    routes.add("GET", "/inventory/source-items", list_source_items, SOURCE_ITEMS)
    routes.add("POST", "/inventory/source-items", save_source_items, SOURCE_ITEMS)
    routes.add("GET", "/inventory/get-product-salable-quantity/{sku}/{stockId}", get_salable_qty, SALES_STOCK)


def register_legacy(routes: RestRoutes) -> None:
    routes.add("GET", "/stockItems/{productSku}", get_stock_item, LEGACY)
    routes.add("PUT", "/products/{productSku}/stockItems/{itemId}", update_stock_item, LEGACY)


def source_view(source: Source) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source_code": source.source_code,
        "name": source.name,
        "enabled": source.enabled,
        "country_id": source.country_id,
        "postcode": source.postcode,
        "use_default_carrier_config": True,
        "carrier_links": [],
    }
    if source.description:
        out["description"] = source.description
    return out


async def list_sources(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query, required=False)  # the one list where it is optional
    page, total = search_criteria.select(
        criteria, list(state.sources.values()), lambda s, f: getattr(s, f), known=SOURCE_FIELDS.__contains__
    )
    return json_response(search_criteria.result([source_view(s) for s in page], total, criteria))


def sku_lookup(state: MagentoState) -> Callable[[search_criteria.Filter], list[SourceItem] | None]:
    """The SKU index: source items a `sku` eq/in filter can match, in source_item_id order."""

    def lookup(flt: search_criteria.Filter) -> list[SourceItem] | None:
        if flt.field != "sku" or flt.op not in ("eq", "in"):
            return None
        keys = {sku.strip().lower() for sku in (flt.value.split(",") if flt.op == "in" else [flt.value])}
        found = [items[k] for items in state.source_items.values() for k in keys if k in items]
        return sorted(found, key=lambda item: item.seq)

    return lookup


async def list_source_items(request: web.Request) -> web.Response:
    state = state_of(request)
    criteria = search_criteria.parse(request.query)
    page, total = search_criteria.select(
        criteria,
        state.all_source_items,
        lambda item, f: getattr(item, f),
        known=ITEM_FIELDS.__contains__,
        cache=state.search_cache,
        cache_key=("source_items", state.versions["source_items"]),
        lookup=sku_lookup(state),
    )
    items = [{"sku": i.sku, "source_code": i.source_code, "quantity": i.quantity, "status": i.status} for i in page]
    return json_response(search_criteria.result(items, total, criteria))


def _validate_item(state: MagentoState, raw: Any) -> tuple[str, str, float, int]:
    if not isinstance(raw, dict):
        raise MagentoError(400, "Decoding error.")
    errors = []
    for field in ("sku", "source_code"):
        if not str(raw.get(field) or "").strip():
            errors.append({"message": '"%field" can not be empty.', "parameters": {"field": field}})
    quantity = raw.get("quantity", 0)
    try:
        quantity = float(quantity)
    except (TypeError, ValueError):
        errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}})
    status = raw.get("status")
    if status is None:
        status = 1 if isinstance(quantity, float) and quantity > 0 else 0
    elif str(status) not in ("0", "1"):
        errors.append({"message": '"%field" should a known status.', "parameters": {"field": "status"}})
    if errors:
        raise MagentoError(400, "Validation Failed", errors=errors)
    if str(raw["source_code"]) not in state.sources:
        raise MagentoError(400, "Could not save Source Item")
    return str(raw["sku"]).strip(), str(raw["source_code"]), float(quantity), int(status)


async def save_source_items(request: web.Request) -> web.Response:
    """Many SKUs per call; validated as a whole, then stored (an upsert per SKU and source). Answers `[]`."""
    body = await read_json(request)
    raw_items = body.get("sourceItems") if isinstance(body, dict) else None
    if raw_items is None:
        raise required_field("sourceItems")
    if not isinstance(raw_items, list) or not raw_items:
        raise MagentoError(400, "Input data is empty")
    state = state_of(request)
    valid = [_validate_item(state, raw) for raw in raw_items]
    for sku, source_code, quantity, status in valid:
        state.put_source_item(sku, source_code, quantity, status)
    return json_response([])


async def get_salable_qty(request: web.Request) -> web.Response:
    """A bare number: on-hand in the stock's sources less what open orders reserve."""
    state = state_of(request)
    stock_id = int_param(request, "stockId")
    return json_response(stock_moves.salable_qty(state, request.match_info["sku"], stock_id))


def _product(state: MagentoState, sku: str) -> Product:
    product = state.product(sku)
    if product is None:
        raise product_not_found()
    return product


async def get_stock_item(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(stock_item_view(state, _product(state, request.match_info["productSku"])))


async def update_stock_item(request: web.Request) -> web.Response:
    """`StockRegistry::updateStockItemBySku`: the item is found by SKU; answers the item id."""
    data = await read_param(request, "stockItem")
    state = state_of(request)
    product = _product(state, request.match_info["productSku"])
    apply_stock_item(state, product, data)
    return json_response(stock_item_view(state, product)["item_id"])
