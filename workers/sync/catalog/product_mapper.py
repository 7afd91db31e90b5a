"""Cloud Retailer product -> the Magento product payload (PUT /rest/all/V1/products/{sku}). Pure: everything
that needs Magento (attribute set id, option ids, category ids) is resolved by the importer first."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from workers.clients.cloudretailer_models import Product

STATUS_ENABLED, STATUS_DISABLED = 1, 2
VISIBILITY_NOT_VISIBLE, VISIBILITY_CATALOG_SEARCH = 1, 4
# Cloud Retailer fields the mapper sends itself; an attribute of the same code is not sent twice.
OWN_CODES = frozenset({"name", "price", "weight", "status", "description", "url_key", "sku", "visibility"})


def slug(text: str) -> str:
    """Magento's url_key shape: lowercase ASCII words joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def url_key(name: str, sku: str, attempt: int = 0) -> str:
    """name-sku is unique whenever SKUs are; a collision with a key made by hand gets a stable suffix."""
    base = "-".join(p for p in (slug(name), slug(sku)) if p) or _short_hash(sku, 8)
    if attempt == 0:
        return base
    return f"{base}-{_short_hash(f'{sku}:{attempt}', 6)}"


def _short_hash(text: str, length: int) -> str:
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()[:length]


def status(product: Product) -> int:
    return STATUS_ENABLED if product.web_active and not product.deleted else STATUS_DISABLED


def product_payload(
    product: Product,
    *,
    attribute_set_id: int,
    website_id: int,
    attributes: Mapping[str, Any],
    url_key_attempt: int = 0,
    visibility: int = VISIBILITY_CATALOG_SEARCH,
) -> dict[str, Any]:
    """`attributes`: shared attribute values already in Magento's form (option ids for selects), only for
    codes Magento has. Category links are not part of the payload: Magento only adds them (see importer)."""
    custom = [
        {"attribute_code": "description", "value": product.description_html or ""},
        {"attribute_code": "url_key", "value": url_key(product.name, product.sku, url_key_attempt)},
    ]
    custom += [{"attribute_code": code, "value": attributes[code]} for code in sorted(attributes)]
    payload: dict[str, Any] = {
        "sku": product.sku,
        "name": product.name,
        "price": product.price,
        "status": status(product),
        "visibility": visibility,
        "type_id": "simple",
        "attribute_set_id": attribute_set_id,
        "extension_attributes": {"website_ids": [website_id]},
        "custom_attributes": custom,
    }
    if product.weight is not None:
        payload["weight"] = product.weight
    return payload


def disabled_payload(sku: str) -> dict[str, Any]:
    """A product deleted in Cloud Retailer: disabled, never deleted (its orders still point at it)."""
    return {"sku": sku, "status": STATUS_DISABLED}
