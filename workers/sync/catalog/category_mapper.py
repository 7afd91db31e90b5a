"""Cloud Retailer category <-> Magento category payloads. Pure."""

from __future__ import annotations

from typing import Any

from workers.clients.cloudretailer_models import Category
from workers.sync.catalog.product_mapper import slug


def magento_category(category: Category, parent_id: int) -> dict[str, Any]:
    return {
        "parent_id": parent_id,
        "name": category.name,
        "is_active": category.active,
        "include_in_menu": True,
        # Departments and categories of different branches may share a name ("Running" shoes and gear):
        # the CR id keeps the url_key unique in the store.
        "custom_attributes": [{"attribute_code": "url_key", "value": f"{slug(category.name)}-{slug(category.id)}"}],
    }


def cr_category(magento: dict[str, Any], parent_cr_id: str | None) -> dict[str, Any]:
    """A category an admin created in Magento, as Cloud Retailer's POST /categories body. The code is
    Cloud Retailer's unique short key: derived from the Magento id so a retried create conflicts (409)
    instead of duplicating."""
    return {
        "code": f"MAG-{magento['id']}",
        "name": str(magento["name"]).strip(),
        "parent_id": parent_cr_id,
        "active": bool(magento.get("is_active", True)),
    }
