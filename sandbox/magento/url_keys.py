"""URL keys: derived from the name when absent, and unique per store view among products (URL rewrites are
per store, so two products only collide where both are visible: a store view of a website they share).

The index maps a url_key to the product using it (a set when several do in different scopes), which keeps a
100k seed small: most keys have exactly one user.
"""

from __future__ import annotations

import re
import unicodedata

from sandbox.magento.errors import URL_KEY_EXISTS, MagentoError
from sandbox.magento.state import MagentoState, Product

_NOT_URL = re.compile(r"[^0-9a-z]+")


def slug(text: str) -> str:
    """Magento's `formatUrlKey`: transliterate, lower-case, runs of anything else become '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_URL.sub("-", ascii_text.lower()).strip("-")


def effective_keys(state: MagentoState, product: Product) -> dict[int, str]:
    """store view id -> the url_key the product has there, for the views of its websites."""
    out: dict[int, str] = {}
    for website_id in product.website_ids:
        for view in state.views_of_website(website_id):
            key = product.value("url_key", view.id)
            if key:
                out[view.id] = str(key)
    return out


def all_keys(product: Product) -> set[str]:
    keys = {str(product.values["url_key"])} if product.values.get("url_key") else set()
    for override in (product.store_values or {}).values():
        if override.get("url_key"):
            keys.add(str(override["url_key"]))
    return keys


def check(state: MagentoState, product: Product) -> None:
    """400 when another product already uses one of this product's keys in a store view both are in."""
    own = product.sku.lower()
    for store_id, key in effective_keys(state, product).items():
        users = state.url_keys.get(key)
        if users is None:
            continue
        for other_sku in (users,) if isinstance(users, str) else tuple(users):
            if other_sku == own:
                continue
            other = state.products.get(other_sku)
            if other is None:
                continue
            view = state.views[store_id]
            if view.website_id in other.website_ids and other.value("url_key", store_id) == key:
                raise MagentoError(400, URL_KEY_EXISTS)


def index(state: MagentoState, product: Product) -> None:
    own = product.sku.lower()
    for key in all_keys(product):
        users = state.url_keys.get(key)
        if users is None:
            state.url_keys[key] = own
        elif isinstance(users, str):
            if users != own:
                state.url_keys[key] = {users, own}
        else:
            users.add(own)


def unindex(state: MagentoState, product: Product) -> None:
    own = product.sku.lower()
    for key in all_keys(product):
        users = state.url_keys.get(key)
        if users == own:
            del state.url_keys[key]
        elif isinstance(users, set):
            users.discard(own)
            if len(users) == 1:
                state.url_keys[key] = next(iter(users))
            elif not users:
                del state.url_keys[key]
