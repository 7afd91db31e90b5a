"""Legacy CatalogInventory stock items. With MSI a legacy stock item is a view of the `default` source item
(the legacy save updates only that source), plus the item's settings; without MSI the same storage serves."""

from __future__ import annotations

from typing import Any

from sandbox.magento.errors import MagentoError
from sandbox.magento.state import DEFAULT_STOCK_ID, MagentoState, Product

DEFAULT_SOURCE = "default"
# A stock item's settings as a fresh install has them (config values in use).
DEFAULT_SETTINGS: dict[str, Any] = {
    "is_qty_decimal": False,
    "show_default_notification_message": False,
    "use_config_min_qty": True,
    "min_qty": 0,
    "use_config_min_sale_qty": 1,
    "min_sale_qty": 1,
    "use_config_max_sale_qty": True,
    "max_sale_qty": 10000,
    "use_config_backorders": True,
    "backorders": 0,
    "use_config_notify_stock_qty": True,
    "notify_stock_qty": 1,
    "use_config_qty_increments": True,
    "qty_increments": 0,
    "use_config_enable_qty_inc": True,
    "enable_qty_increments": False,
    "use_config_manage_stock": True,
    "manage_stock": True,
    "low_stock_date": None,  # Magento sends null here although the schema says string
    "is_decimal_divided": False,
    "stock_status_changed_auto": 0,
}
_BOOL = {k for k, v in DEFAULT_SETTINGS.items() if isinstance(v, bool)}
_NUMBER = {k for k, v in DEFAULT_SETTINGS.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def stock_item_view(state: MagentoState, product: Product) -> dict[str, Any]:
    item = state.source_item(product.sku, DEFAULT_SOURCE)
    qty = item.quantity if item else 0.0
    out: dict[str, Any] = {
        "item_id": product.id,  # one legacy stock item per product on the default stock
        "product_id": product.id,
        "stock_id": DEFAULT_STOCK_ID,
        "qty": qty,
        "is_in_stock": bool(item.status) if item else False,
    }
    out.update(DEFAULT_SETTINGS)
    out.update(state.stock_flags.get(product.sku.lower(), {}))
    return out


def apply_stock_item(state: MagentoState, product: Product, data: dict[str, Any]) -> None:
    """A legacy stock item save: qty and is_in_stock go to the default source item, settings are kept."""
    if not isinstance(data, dict):
        raise MagentoError(400, "Decoding error.")
    current = state.source_item(product.sku, DEFAULT_SOURCE)
    qty = current.quantity if current else 0.0
    in_stock = bool(current.status) if current else False
    if data.get("qty") is not None:
        try:
            qty = float(data["qty"])
        except (TypeError, ValueError):
            raise MagentoError(
                400,
                'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
                {"value": data["qty"], "type": "float"},
            ) from None
        if "is_in_stock" not in data:
            in_stock = qty > 0  # the stock status is recalculated from qty when not sent
    if data.get("is_in_stock") is not None:
        in_stock = bool(data["is_in_stock"])
    state.put_source_item(product.sku, DEFAULT_SOURCE, qty, int(in_stock))
    settings = {k: (bool(v) if k in _BOOL else v) for k, v in data.items() if k in _BOOL | _NUMBER and v is not None}
    if settings:
        state.stock_flags.setdefault(product.sku.lower(), {}).update(settings)
