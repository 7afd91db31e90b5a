"""CloudRetailerClient: the adapter for the Cloud Retailer API contract in docs/cloudretailer-api.md
(bearer key, cursor paging with `limit` and `updated_since`).

Every request the workers make to Cloud Retailer is one of the named methods here; `_call` and `iter_pages` are
their plumbing (tests/test_layout.py keeps the sync code off them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from yarl import URL

from crmcore import timeline
from crmcore.errors import clip
from crmcore.remotes import Remote
from crmcore.settings import Settings, env_name
from workers.clients.cloudretailer_models import Category, Customer, InventoryLevel, Product, Sale, Store, Style
from workers.clients.errors import Conflict
from workers.clients.http import ApiClient, HttpApi, RetryPolicy
from workers.clients.paths import segment
from workers.errors import MisconfiguredError


def cr_error_message(status: int, parsed: Any, raw: bytes) -> str:
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
        field = f" ({err['field']})" if err.get("field") else ""
        return f"{err.get('message') or err.get('code') or status}{field}"
    return clip(raw) or f"HTTP {status}"


class CloudRetailerClient(ApiClient):
    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        if not settings.cr_url:
            raise MisconfiguredError(env_name("cr_url"), "not set", remote=Remote.CLOUDRETAILER)
        if settings.cr_api_key is None:
            raise MisconfiguredError(env_name("cr_api_key"), "not set", remote=Remote.CLOUDRETAILER)
        self.base = URL(settings.cr_url.rstrip("/"))
        self.store_id = settings.cr_store_id
        self._headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {settings.cr_api_key.get_secret_value()}",
        }
        self.http = HttpApi(
            "cloudretailer",
            timeout=settings.http_timeout_seconds,
            concurrency=settings.cr_concurrency,
            retry=retry or RetryPolicy(retries=settings.http_retries),
            error_message=cr_error_message,
        )

    def __repr__(self) -> str:
        return f"CloudRetailerClient({self.base.with_user(None)}, store={self.store_id!r})"

    def url(self, path: str, params: Mapping[str, str] | None = None) -> URL:
        """`path` is built by this class only, every id in it through `segment`."""
        url = URL(str(self.base) + "/" + path.lstrip("/"), encoded=True)
        return url.update_query(params) if params else url

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        raw: bool = False,
        idempotent: bool | None = None,
    ) -> Any:
        answer = await self.http.request(
            method, self.url(path, params), json=json, headers=self._headers, raw=raw, idempotent=idempotent
        )
        timeline.wrote("Cloud Retailer", method, path)
        return answer

    async def iter_pages(
        self, path: str, params: Mapping[str, str] | None = None, *, limit: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        query = {**(params or {}), "limit": str(limit)}
        while True:
            page = await self._call("GET", path, params=query)
            for item in page["items"]:
                yield item
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    # --- stores ---------------------------------------------------------------------------------------
    async def stores(self) -> list[Store]:
        return [Store.model_validate(s) async for s in self.iter_pages("stores")]

    async def sales_totals(self, store_id: str) -> dict[str, Any]:
        return await self._call("GET", f"stores/{segment(store_id)}/sales-totals")

    # --- products -------------------------------------------------------------------------------------
    async def get_product(self, product_id: str) -> Product:
        return Product.model_validate(await self._call("GET", f"products/{segment(product_id)}"))

    async def product_by_sku(self, sku: str) -> Product | None:
        page = await self._call("GET", "products", params={"sku": sku, "limit": "1"})
        return Product.model_validate(page["items"][0]) if page["items"] else None

    async def products(self, updated_since: str | None = None) -> AsyncIterator[Product]:
        params = {"updated_since": updated_since} if updated_since else None
        async for item in self.iter_pages("products", params):
            yield Product.model_validate(item)

    async def update_product(self, product_id: str, changes: Mapping[str, Any]) -> Product:
        return Product.model_validate(await self._call("PUT", f"products/{segment(product_id)}", json=dict(changes)))

    async def image_bytes(self, product_id: str, image_id: str) -> bytes:
        return await self._call("GET", f"products/{segment(product_id)}/images/{segment(image_id)}", raw=True)

    # --- styles ---------------------------------------------------------------------------------------
    async def get_style(self, style_id: str) -> Style:
        return Style.model_validate(await self._call("GET", f"styles/{segment(style_id)}"))

    async def styles(self, updated_since: str | None = None) -> AsyncIterator[Style]:
        params = {"updated_since": updated_since} if updated_since else None
        async for item in self.iter_pages("styles", params):
            yield Style.model_validate(item)

    async def variants(self, style_id: str) -> list[Product]:
        """Every product whose style_id is `style_id`, deleted ones included (a style's variant_ids are the
        live ones)."""
        return [Product.model_validate(p) async for p in self.iter_pages("products", {"style_id": style_id})]

    async def style_image_bytes(self, style_id: str, image_id: str) -> bytes:
        return await self._call("GET", f"styles/{segment(style_id)}/images/{segment(image_id)}", raw=True)

    # --- inventory ------------------------------------------------------------------------------------
    async def inventory(
        self, store_id: str | None = None, updated_since: str | None = None, *, limit: int = 500
    ) -> AsyncIterator[InventoryLevel]:
        """On-hand at a store (the linked one by default), changed at or after `updated_since` when given."""
        params = {"store_id": store_id or self._store()}
        if updated_since:
            params["updated_since"] = updated_since
        async for item in self.iter_pages("inventory", params, limit=limit):
            yield InventoryLevel.model_validate(item)

    async def inventory_level(self, sku: str, store_id: str | None = None) -> InventoryLevel:
        path = f"inventory/{segment(store_id or self._store())}/{segment(sku)}"
        return InventoryLevel.model_validate(await self._call("GET", path))

    async def set_on_hand(self, sku: str, on_hand: float, store_id: str | None = None) -> InventoryLevel:
        path = f"inventory/{segment(store_id or self._store())}/{segment(sku)}"
        return InventoryLevel.model_validate(await self._call("PUT", path, json={"on_hand": on_hand}))

    # --- categories -----------------------------------------------------------------------------------
    async def categories(self, updated_since: str | None = None) -> list[Category]:
        params = {"updated_since": updated_since} if updated_since else None
        return [Category.model_validate(c) async for c in self.iter_pages("categories", params)]

    async def get_category(self, category_id: str) -> Category:
        return Category.model_validate(await self._call("GET", f"categories/{segment(category_id)}"))

    async def create_category(self, category: Mapping[str, Any]) -> Category:
        return Category.model_validate(await self._call("POST", "categories", json=dict(category)))

    async def attribute_sets(self) -> list[dict[str, Any]]:
        return [s async for s in self.iter_pages("attribute-sets")]

    # --- customers ------------------------------------------------------------------------------------
    async def get_customer(self, customer_id: str) -> Customer:
        return Customer.model_validate(await self._call("GET", f"customers/{segment(customer_id)}"))

    async def find_customer(self, email: str) -> Customer | None:
        page = await self._call("GET", "customers", params={"email": email})
        return Customer.model_validate(page["items"][0]) if page["items"] else None

    async def customers(self, updated_since: str | None = None) -> AsyncIterator[Customer]:
        params = {"updated_since": updated_since} if updated_since else None
        async for item in self.iter_pages("customers", params):
            yield Customer.model_validate(item)

    async def create_customer(self, customer: Mapping[str, Any]) -> tuple[Customer, bool]:
        """Returns (customer, created). An existing email links to that customer instead (409).

        The email is unique, so re-sending after a lost answer cannot create a second customer: the POST is
        retried like a PUT, and a retry that meets our own first attempt gets its 409 (created=False)."""
        try:
            body = await self._call("POST", "customers", json=dict(customer), idempotent=True)
            return Customer.model_validate(body), True
        except Conflict as exc:
            existing = _existing(exc)
            if existing is not None:
                return Customer.model_validate(existing), False
            found = await self.find_customer(customer["email"])
            if found is None:
                raise
            return found, False

    # --- sales ----------------------------------------------------------------------------------------
    async def create_sale(self, sale: Sale) -> tuple[Sale, bool]:
        """Returns (sale, created). A sale with the same external_ref already there is returned as is.

        external_ref is accepted once, so the POST is safe to re-send after a timeout or dropped connection."""
        body = sale.model_dump(exclude={"id"}, exclude_none=True)
        try:
            return Sale.model_validate(await self._call("POST", "sales", json=body, idempotent=True)), True
        except Conflict as exc:
            existing = _existing(exc)
            if existing is not None:
                return Sale.model_validate(existing), False
            found = await self.sale_by_external_ref(sale.external_ref)
            if found is None:
                raise
            return found, False

    async def sale_by_external_ref(self, external_ref: str) -> Sale | None:
        page = await self._call("GET", "sales", params={"external_ref": external_ref})
        return Sale.model_validate(page["items"][0]) if page["items"] else None

    def _store(self) -> str:
        return linked_store_id(self.store_id)


def linked_store_id(store_id: str | None) -> str:
    """CRMAGENTO_CR_STORE_ID, the Cloud Retailer store linked to Magento (its stock, its sales), as given."""
    if not store_id:
        detail = "not set: no Cloud Retailer store is linked to Magento"
        raise MisconfiguredError(env_name("cr_store_id"), detail, remote=Remote.CLOUDRETAILER)
    return store_id


def _existing(exc: Conflict) -> dict[str, Any] | None:
    """The record a 409 names (`{"error": ..., "existing": {...}}`), saving a second call to fetch it."""
    existing = exc.body.get("existing") if isinstance(exc.body, dict) else None
    return existing if isinstance(existing, dict) and existing.get("id") else None
