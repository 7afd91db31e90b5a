"""MagentoClient: the adapter for Magento 2's REST API (2.3 and newer).

What it copes with (docs/magento-api-notes.md items 1, 2, 5, 6 and 8): OAuth 1.0a signing (integration tokens
are refused as plain Bearer from 2.4.4 unless the store enables it), store scope in the URL (`all` for
global catalog values), error bodies with `%1` / `%name` placeholders, and searchCriteria paging that
returns the last page again past the end (so iteration stops on `total_count`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from yarl import URL

from crmcore.settings import Settings
from workers.clients.http import ApiClient, HttpApi, RetryPolicy
from workers.clients.magento_models import Category, Customer, MediaEntry, Order, Page, Product, SourceItem
from workers.clients.search_criteria import SearchCriteria

GLOBAL_SCOPE = "all"
# array inputs are capped at 20 items when input limiting is on (docs/magento-api-notes.md item 6)
SOURCE_ITEMS_BATCH = 20


def fill_placeholders(message: str, parameters: Any) -> str:
    """Magento's `%1` (list parameters) and `%name` (dict parameters) placeholders, filled."""
    if isinstance(parameters, list):
        for i, value in reversed(list(enumerate(parameters, 1))):  # %10 before %1
            message = message.replace(f"%{i}", str(value))
    elif isinstance(parameters, dict):
        for key in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{key}", str(parameters[key]))
    return message


def magento_error_message(status: int, parsed: Any, raw: bytes) -> str:
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = fill_placeholders(parsed["message"], parsed.get("parameters"))
        extra = [fill_placeholders(e.get("message", ""), e.get("parameters")) for e in parsed.get("errors") or []]
        return "; ".join([text, *[e for e in extra if e]])
    snippet = re.sub(r"\s+", " ", raw[:200].decode("utf-8", "replace")).strip()
    return snippet or f"HTTP {status}"


class OAuth1Signer:
    """OAuth 1.0a HMAC-SHA256 with the integration's four credentials (signed per request, with the query)."""

    def __init__(self, consumer_key: str, consumer_secret: str, token: str, token_secret: str) -> None:
        self._client = Client(
            consumer_key,
            client_secret=consumer_secret,
            resource_owner_key=token,
            resource_owner_secret=token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
        )

    def __repr__(self) -> str:
        return "OAuth1Signer(<credentials hidden>)"

    def __call__(self, method: str, url: str, headers: Mapping[str, str]) -> dict[str, str]:
        # A JSON body is not part of the OAuth 1.0a signature base string (only form bodies are).
        _, signed, _ = self._client.sign(url, http_method=method)
        return {"Authorization": signed["Authorization"]}


class MagentoClient(ApiClient):
    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        if not settings.magento_url:
            raise ValueError("CRMAGENTO_MAGENTO_URL is not set")
        self.base = URL(settings.magento_url.rstrip("/"))
        self.store_code = settings.magento_store_code
        self.website_id = settings.magento_website_id
        self.source_code = settings.magento_source_code
        self._headers = {"Accept": "application/json"}
        self._signer: OAuth1Signer | None = None
        oauth = (
            settings.magento_consumer_key,
            settings.magento_consumer_secret,
            settings.magento_access_token,
            settings.magento_access_token_secret,
        )
        if all(oauth):
            self._signer = OAuth1Signer(*(s.get_secret_value() for s in oauth if s is not None))
        elif settings.magento_token is not None:
            self._headers["Authorization"] = f"Bearer {settings.magento_token.get_secret_value()}"
        else:
            raise ValueError(
                "set CRMAGENTO_MAGENTO_CONSUMER_KEY/_CONSUMER_SECRET/_ACCESS_TOKEN/_ACCESS_TOKEN_SECRET "
                "or CRMAGENTO_MAGENTO_TOKEN"
            )
        self.http = HttpApi(
            "magento",
            timeout=settings.http_timeout_seconds,
            concurrency=settings.magento_concurrency,
            retry=retry or RetryPolicy(retries=settings.http_retries),
            error_message=magento_error_message,
        )

    def __repr__(self) -> str:
        # user:password in the URL would be a credential too
        return f"MagentoClient({self.base.with_user(None)}, store={self.store_code!r})"

    # --- plumbing -------------------------------------------------------------------------------------
    def url(self, path: str, *, store: str | None = None, params: Mapping[str, str] | None = None) -> URL:
        url = self.base / "rest" / (store or self.store_code) / "V1"
        url = URL(str(url) + "/" + path.lstrip("/"), encoded=True)
        return url.update_query(params) if params else url

    async def call(
        self,
        method: str,
        path: str,
        *,
        store: str | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        return await self.http.request(
            method,
            self.url(path, store=store, params=params),
            json=json,
            headers=self._headers,
            signer=self._signer,
            idempotent=idempotent,
        )

    async def search(self, path: str, criteria: SearchCriteria, *, page: int = 1, store: str | None = None) -> Page:
        return Page.model_validate(await self.call("GET", path, store=store, params=criteria.params(page)))

    async def iter_search(
        self, path: str, criteria: SearchCriteria, *, store: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every match, page by page. Stops on total_count: past the end Magento repeats the last page, so
        asking for one page more would yield the last page twice (and an empty page never comes)."""
        page = 1
        while True:
            result = await self.search(path, criteria, page=page, store=store)
            for item in result.items:
                yield item
            # A short page is the last one too, whatever total_count says (rows deleted while paging).
            if len(result.items) < criteria.page_size or page * criteria.page_size >= result.total_count:
                return
            page += 1

    # --- store ----------------------------------------------------------------------------------------
    async def store_views(self) -> list[dict[str, Any]]:
        return await self.call("GET", "store/storeViews")

    async def websites(self) -> list[dict[str, Any]]:
        return await self.call("GET", "store/websites")

    async def store_configs(self, *, store: str | None = None) -> list[dict[str, Any]]:
        return await self.call("GET", "store/storeConfigs", store=store)

    # --- products -------------------------------------------------------------------------------------
    async def get_product(self, sku: str, *, store: str | None = None) -> Product:
        return Product.model_validate(await self.call("GET", f"products/{_seg(sku)}", store=store))

    async def save_product(self, product: Mapping[str, Any], *, store: str = GLOBAL_SCOPE) -> Product:
        """PUT /V1/products/{sku}: an upsert that merges the keys sent (global values through `all`)."""
        body = {"product": dict(product)}
        return Product.model_validate(
            await self.call("PUT", f"products/{_seg(product['sku'])}", store=store, json=body)
        )

    async def create_product(self, product: Mapping[str, Any], *, store: str = GLOBAL_SCOPE) -> Product:
        body = {"product": dict(product)}
        return Product.model_validate(await self.call("POST", "products", store=store, json=body, idempotent=True))

    async def delete_product(self, sku: str) -> bool:
        return bool(await self.call("DELETE", f"products/{_seg(sku)}", store=GLOBAL_SCOPE))

    async def list_products(self, criteria: SearchCriteria) -> Page:
        return await self.search("products", criteria)

    # --- media ----------------------------------------------------------------------------------------
    async def list_media(self, sku: str) -> list[MediaEntry]:
        return [MediaEntry.model_validate(m) for m in await self.call("GET", f"products/{_seg(sku)}/media")]

    async def add_media(self, sku: str, entry: Mapping[str, Any], *, store: str = GLOBAL_SCOPE) -> int:
        result = await self.call("POST", f"products/{_seg(sku)}/media", store=store, json={"entry": dict(entry)})
        return int(result)

    async def delete_media(self, sku: str, entry_id: int, *, store: str = GLOBAL_SCOPE) -> bool:
        return bool(await self.call("DELETE", f"products/{_seg(sku)}/media/{entry_id}", store=store))

    # --- attributes -----------------------------------------------------------------------------------
    async def attribute_sets(self) -> list[dict[str, Any]]:
        criteria = SearchCriteria(page_size=200).where("entity_type_id", 4)
        return [s async for s in self.iter_search("products/attribute-sets/sets/list", criteria)]

    async def attribute(self, code: str) -> dict[str, Any]:
        return await self.call("GET", f"products/attributes/{_seg(code)}")

    async def attribute_options(self, code: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"products/attributes/{_seg(code)}/options")

    async def add_attribute_option(self, code: str, label: str) -> str:
        """Returns the new option id (Magento 2.4 answers "id_<n>")."""
        body = {"option": {"label": label, "sort_order": 0, "is_default": False}}
        result = await self.call("POST", f"products/attributes/{_seg(code)}/options", store=GLOBAL_SCOPE, json=body)
        return str(result).removeprefix("id_")

    # --- categories -----------------------------------------------------------------------------------
    async def category_tree(self, root_id: int | None = None, depth: int | None = None) -> Category:
        params = {k: str(v) for k, v in (("rootCategoryId", root_id), ("depth", depth)) if v is not None}
        return Category.model_validate(await self.call("GET", "categories", params=params or None))

    async def get_category(self, category_id: int) -> dict[str, Any]:
        return await self.call("GET", f"categories/{category_id}")

    async def list_categories(self, criteria: SearchCriteria) -> Page:
        return await self.search("categories/list", criteria)

    async def create_category(self, category: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "categories", store=GLOBAL_SCOPE, json={"category": dict(category)})

    async def update_category(self, category_id: int, category: Mapping[str, Any]) -> dict[str, Any]:
        body = {"category": dict(category)}
        return await self.call("PUT", f"categories/{category_id}", store=GLOBAL_SCOPE, json=body)

    async def assign_product(self, category_id: int, sku: str, position: int = 0) -> bool:
        body = {"productLink": {"sku": sku, "position": position, "category_id": str(category_id)}}
        return bool(await self.call("POST", f"categories/{category_id}/products", json=body, idempotent=True))

    async def unassign_product(self, category_id: int, sku: str) -> bool:
        return bool(await self.call("DELETE", f"categories/{category_id}/products/{_seg(sku)}"))

    # --- inventory ------------------------------------------------------------------------------------
    async def sources(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "inventory/sources", params=SearchCriteria(page_size=200).params())).get(
            "items", []
        )

    async def source_items(self, skus: list[str] | None = None, *, page_size: int = 300) -> AsyncIterator[SourceItem]:
        # 300: the largest pageSize Magento accepts when input limiting is on (docs/magento-api-notes.md item 6)
        criteria = SearchCriteria(page_size=page_size).where("source_code", self.source_code)
        if skus:
            criteria.where("sku", skus, "in")
        criteria.order_by("sku")
        async for item in self.iter_search("inventory/source-items", criteria):
            yield SourceItem.model_validate(item)

    async def save_source_items(self, items: list[SourceItem]) -> None:
        """Many SKUs per call, in batches of 20: with input limiting on, Magento refuses longer arrays."""
        for start in range(0, len(items), SOURCE_ITEMS_BATCH):
            batch = items[start : start + SOURCE_ITEMS_BATCH]
            body = {"sourceItems": [i.model_dump(include={"sku", "source_code", "quantity", "status"}) for i in batch]}
            await self.call("POST", "inventory/source-items", json=body, idempotent=True)

    async def legacy_stock_item(self, sku: str) -> dict[str, Any]:
        return await self.call("GET", f"stockItems/{_seg(sku)}")

    async def save_legacy_stock_item(self, sku: str, item_id: int, qty: float, in_stock: bool) -> int:
        body = {"stockItem": {"qty": qty, "is_in_stock": in_stock}}
        return int(await self.call("PUT", f"products/{_seg(sku)}/stockItems/{item_id}", json=body))

    # --- customers ------------------------------------------------------------------------------------
    async def find_customer(self, email: str, website_id: int | None = None) -> Customer | None:
        criteria = SearchCriteria(page_size=5).where("email", email)
        criteria.where("website_id", website_id if website_id is not None else self.website_id)
        page = await self.search("customers/search", criteria)
        return Customer.model_validate(page.items[0]) if page.items else None

    async def get_customer(self, customer_id: int) -> Customer:
        return Customer.model_validate(await self.call("GET", f"customers/{customer_id}"))

    async def create_customer(self, customer: Mapping[str, Any]) -> Customer:
        return Customer.model_validate(await self.call("POST", "customers", json={"customer": dict(customer)}))

    async def update_customer(self, customer_id: int, customer: Mapping[str, Any]) -> Customer:
        body = {"customer": dict(customer)}
        return Customer.model_validate(await self.call("PUT", f"customers/{customer_id}", json=body))

    # --- orders ---------------------------------------------------------------------------------------
    async def get_order(self, order_id: int) -> Order:
        return Order.model_validate(await self.call("GET", f"orders/{order_id}"))

    async def list_orders(self, criteria: SearchCriteria) -> Page:
        return await self.search("orders", criteria)

    async def create_order(self, entity: Mapping[str, Any]) -> Order:
        """The repository save (sandbox, demo and tests place orders this way)."""
        return Order.model_validate(await self.call("POST", "orders", json={"entity": dict(entity)}))

    async def invoice(self, order_id: int) -> int:
        return int(await self.call("POST", f"order/{order_id}/invoice", json={"capture": True, "notify": False}))

    async def ship(self, order_id: int) -> int:
        return int(await self.call("POST", f"order/{order_id}/ship", json={"notify": False}))


def _seg(value: str) -> str:
    """One URL path segment (a SKU may hold '/', '#', spaces)."""
    return quote(str(value), safe="")
