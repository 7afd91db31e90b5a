"""MagentoClient: the adapter for Magento 2's REST API (2.3 and newer).

What it copes with (docs/magento-api-notes.md items 1, 2, 5, 6, 7, 8 and 14): OAuth 1.0a signing (integration
tokens are refused as plain Bearer from 2.4.4 unless the store enables it), store scope in the URL (`all` for
global catalog values), error bodies with `%1` / `%name` placeholders, searchCriteria paging that returns the
last page again past the end (so iteration stops on `total_count`, and searches that must miss nothing read
by key, `iter_keyset`), and times without a zone.

Every request the workers make to Magento is one of the named methods here; `_call`, `search` and
`iter_search` are their plumbing (tests/test_layout.py keeps the sync code off them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from yarl import URL

from crmcore import timeline
from crmcore.errors import clip
from crmcore.remotes import Remote
from crmcore.settings import Settings, env_name
from workers.clients.http import ApiClient, HttpApi, RetryPolicy
from workers.clients.magento_models import (
    Category,
    ConfigurableOption,
    Customer,
    CustomerGroup,
    MediaEntry,
    Order,
    Page,
    PriceUpdateResult,
    Product,
    SourceItem,
    StockItem,
    TierPrice,
)
from workers.clients.magento_time import magento_time, parse_time
from workers.clients.paths import segment
from workers.clients.search_criteria import Filter, Key, SearchCriteria, TimeField, keyset_criteria
from workers.errors import MisconfiguredError, TransientError

GLOBAL_SCOPE = "all"
SHIPMENTS_PAGE_SIZE = 100


class Listing(StrEnum):
    """The searches read by key (`MagentoClient.iter_keyset`)."""

    ORDERS = "orders"
    CATEGORIES = "categories/list"
    CUSTOMERS = "customers/search"

    @property
    def id_field(self) -> str:
        """Where a row of this listing carries its entity id (what the key's `entity_id` filter compares)."""
        return "entity_id" if self is Listing.ORDERS else "id"


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
    return " ".join(clip(raw).split()) or f"HTTP {status}"


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
            raise MisconfiguredError(env_name("magento_url"), "not set", remote=Remote.MAGENTO)
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
            raise MisconfiguredError(
                f"{env_name('magento_token')} (or the OAuth values)",
                "not set: set CRMAGENTO_MAGENTO_CONSUMER_KEY/_CONSUMER_SECRET/_ACCESS_TOKEN/_ACCESS_TOKEN_SECRET "
                "or CRMAGENTO_MAGENTO_TOKEN",
                remote=Remote.MAGENTO,
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
        """`path` is built by this class only, every id in it through `segment`."""
        url = URL(f"{self.base}/rest/{segment(store or self.store_code)}/V1/{path.lstrip('/')}", encoded=True)
        return url.update_query(params) if params else url

    async def _call(
        self,
        method: str,
        path: str,
        *,
        store: str | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        answer = await self.http.request(
            method,
            self.url(path, store=store, params=params),
            json=json,
            headers=self._headers,
            signer=self._signer,
            idempotent=idempotent,
        )
        timeline.wrote("Magento", method, path)
        return answer

    async def search(self, path: str, criteria: SearchCriteria, *, page: int = 1, store: str | None = None) -> Page:
        """One page of a searchCriteria list at `path` (a route of this class, never from outside)."""
        return Page.model_validate(await self._call("GET", path, store=store, params=criteria.params(page)))

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

    async def iter_keyset(
        self, listing: Listing, *, by: TimeField, since: str, where: Sequence[Filter] = (), page_size: int = 100
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of `listing` matching `where` with `by` at or after `since` (Magento time), oldest first by
        (`by`, entity_id). Always page 1 of what comes after the last row seen: a numbered page shifts when a
        row changes or vanishes while we read. Each answer's total_count counts the matches from the key on,
        so the page that holds them all is the last."""
        listing = Listing(listing)
        after: Key | None = None
        while True:
            page = await self.search(listing, keyset_criteria(by, since, after, where, page_size))
            if not page.items:
                return
            yield page.items
            if len(page.items) >= page.total_count or len(page.items) < page_size:
                return
            last = (magento_time(parse_time(str(page.items[-1][by]))), int(page.items[-1][listing.id_field]))
            if after is not None and last <= after:
                # the server ignored the key filter: stop instead of reading the same page forever
                raise TransientError(f"Magento answered {listing.value} after {after} with {last} again")
            after = last

    # --- store ----------------------------------------------------------------------------------------
    async def store_views(self) -> list[dict[str, Any]]:
        return await self._call("GET", "store/storeViews")

    async def store_groups(self) -> list[dict[str, Any]]:
        return await self._call("GET", "store/storeGroups")

    async def store_configs(self, *, store: str | None = None) -> list[dict[str, Any]]:
        return await self._call("GET", "store/storeConfigs", store=store)

    async def countries(self) -> list[dict[str, Any]]:
        """The countries the store takes, with their regions."""
        return await self._call("GET", "directory/countries")

    # --- products -------------------------------------------------------------------------------------
    async def get_product(self, sku: str, *, store: str | None = None) -> Product:
        return Product.model_validate(await self._call("GET", f"products/{segment(sku)}", store=store))

    async def save_product(self, product: Mapping[str, Any], *, store: str = GLOBAL_SCOPE) -> Product:
        """PUT /V1/products/{sku}: an upsert that merges the keys sent (global values through `all`)."""
        body = {"product": dict(product)}
        return Product.model_validate(
            await self._call("PUT", f"products/{segment(product['sku'])}", store=store, json=body)
        )

    async def list_products(self, criteria: SearchCriteria, *, page: int = 1) -> Page:
        return await self.search("products", criteria, page=page)

    # --- configurable products ------------------------------------------------------------------------
    async def configurable_options(self, sku: str) -> list[ConfigurableOption]:
        """400 when the product is not configurable; each option's values are those its children use."""
        answer = await self._call("GET", f"configurable-products/{segment(sku)}/options/all")
        return [ConfigurableOption.model_validate(o) for o in answer]

    async def add_configurable_option(self, sku: str, option: ConfigurableOption) -> int:
        """The option id. A simple or virtual product becomes configurable; a second option for the same
        attribute updates the first (same id), so re-sending after a lost answer is safe."""
        body = {"option": option.model_copy(update={"id": None}).body()}
        path = f"configurable-products/{segment(sku)}/options"
        return int(await self._call("POST", path, store=GLOBAL_SCOPE, json=body, idempotent=True))

    async def update_configurable_option(self, sku: str, option: ConfigurableOption) -> int:
        """Label and position of `option.id` (Magento keeps no values: they follow the children)."""
        if option.id is None:
            raise ValueError("update_configurable_option needs the option's id")
        path = f"configurable-products/{segment(sku)}/options/{segment(option.id)}"
        return int(await self._call("PUT", path, store=GLOBAL_SCOPE, json={"option": option.body()}))

    async def delete_configurable_option(self, sku: str, option_id: int) -> bool:
        """Magento unlinks every child of the product along with the option."""
        path = f"configurable-products/{segment(sku)}/options/{segment(option_id)}"
        return bool(await self._call("DELETE", path, store=GLOBAL_SCOPE))

    async def configurable_children(self, sku: str) -> list[Product]:
        """The linked children; `[]` for a product that is not configurable."""
        answer = await self._call("GET", f"configurable-products/{segment(sku)}/children")
        return [Product.model_validate(p) for p in answer]

    async def link_child(self, sku: str, child_sku: str) -> bool:
        """One child per call. A child already linked is a 400 ("The product is already attached.")."""
        path = f"configurable-products/{segment(sku)}/child"
        return bool(await self._call("POST", path, store=GLOBAL_SCOPE, json={"childSku": child_sku}))

    async def unlink_child(self, sku: str, child_sku: str) -> bool:
        """404 when `child_sku` is not a child of `sku`."""
        path = f"configurable-products/{segment(sku)}/children/{segment(child_sku)}"
        return bool(await self._call("DELETE", path, store=GLOBAL_SCOPE))

    # --- media ----------------------------------------------------------------------------------------
    async def list_media(self, sku: str) -> list[MediaEntry]:
        return [MediaEntry.model_validate(m) for m in await self._call("GET", f"products/{segment(sku)}/media")]

    async def add_media(self, sku: str, entry: Mapping[str, Any], *, store: str = GLOBAL_SCOPE) -> int:
        result = await self._call("POST", f"products/{segment(sku)}/media", store=store, json={"entry": dict(entry)})
        return int(result)

    async def set_media_roles(self, sku: str, entry_id: int, roles: Sequence[str]) -> bool:
        """The roles (image, small_image, thumbnail) of one gallery entry, as global values."""
        body = {"entry": {"id": entry_id, "media_type": "image", "types": list(roles)}}
        path = f"products/{segment(sku)}/media/{segment(entry_id)}"
        return bool(await self._call("PUT", path, store=GLOBAL_SCOPE, json=body))

    async def delete_media(self, sku: str, entry_id: int, *, store: str = GLOBAL_SCOPE) -> bool:
        return bool(await self._call("DELETE", f"products/{segment(sku)}/media/{segment(entry_id)}", store=store))

    # --- attributes -----------------------------------------------------------------------------------
    async def attribute_sets(self) -> list[dict[str, Any]]:
        criteria = SearchCriteria(page_size=200).where("entity_type_id", 4)
        return [s async for s in self.iter_search("products/attribute-sets/sets/list", criteria)]

    async def attribute(self, code: str) -> dict[str, Any]:
        """Magento's attribute as it answers it: `scope` (global, website, store), `is_user_defined` and
        `frontend_input` among the rest, which say whether it can be a configurable product's axis."""
        return await self._call("GET", f"products/attributes/{segment(code)}")

    async def add_attribute_option(self, code: str, label: str) -> str:
        """Returns the new option id (Magento 2.4 answers "id_<n>")."""
        body = {"option": {"label": label, "sort_order": 0, "is_default": False}}
        path = f"products/attributes/{segment(code)}/options"
        return str(await self._call("POST", path, store=GLOBAL_SCOPE, json=body)).removeprefix("id_")

    # --- categories -----------------------------------------------------------------------------------
    async def get_category(self, category_id: int) -> dict[str, Any]:
        return await self._call("GET", f"categories/{segment(category_id)}")

    async def iter_categories(self, criteria: SearchCriteria) -> AsyncIterator[Category]:
        async for item in self.iter_search(Listing.CATEGORIES, criteria):
            yield Category.model_validate(item)

    async def create_category(self, category: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "categories", store=GLOBAL_SCOPE, json={"category": dict(category)})

    async def update_category(self, category_id: int, category: Mapping[str, Any]) -> dict[str, Any]:
        body = {"category": dict(category)}
        return await self._call("PUT", f"categories/{segment(category_id)}", store=GLOBAL_SCOPE, json=body)

    async def move_category(self, category_id: int, parent_id: int, after_id: int | None = None) -> bool:
        """PUT /V1/categories/{id} ignores parent_id: a new parent is only ever set through this call."""
        body: dict[str, int] = {"parentId": parent_id}
        if after_id is not None:
            body["afterId"] = after_id
        return bool(await self._call("PUT", f"categories/{segment(category_id)}/move", store=GLOBAL_SCOPE, json=body))

    async def unassign_product(self, category_id: int, sku: str) -> bool:
        return bool(await self._call("DELETE", f"categories/{segment(category_id)}/products/{segment(sku)}"))

    # --- inventory ------------------------------------------------------------------------------------
    async def sources(self) -> list[dict[str, Any]]:
        """404 on a store without MSI (the route does not exist)."""
        page = await self.search("inventory/sources", SearchCriteria(page_size=200))
        return page.items

    async def list_source_items(self, criteria: SearchCriteria, *, page: int = 1) -> Page:
        return await self.search("inventory/source-items", criteria, page=page)

    async def save_source_items(self, items: Sequence[SourceItem]) -> None:
        """One call for all of `items` (an upsert: safe to re-send). With input limiting on, Magento refuses
        more than 20 (docs/magento-api-notes.md item 6): the caller sizes the batch."""
        body = {"sourceItems": [i.model_dump(include={"sku", "source_code", "quantity", "status"}) for i in items]}
        await self._call("POST", "inventory/source-items", json=body, idempotent=True)

    async def legacy_stock_item(self, sku: str) -> StockItem:
        return StockItem.model_validate(await self._call("GET", f"stockItems/{segment(sku)}"))

    async def save_legacy_stock_item(self, sku: str, item_id: int, qty: float, in_stock: bool) -> int:
        body = {"stockItem": {"qty": qty, "is_in_stock": in_stock}}
        path = f"products/{segment(sku)}/stockItems/{segment(item_id)}"
        return int(await self._call("PUT", path, json=body))

    # --- customers ------------------------------------------------------------------------------------
    async def find_customer(self, email: str, website_id: int | None = None) -> Customer | None:
        criteria = SearchCriteria(page_size=5).where("email", email)
        criteria.where("website_id", website_id if website_id is not None else self.website_id)
        page = await self.search(Listing.CUSTOMERS, criteria)
        return Customer.model_validate(page.items[0]) if page.items else None

    async def iter_customers(self, criteria: SearchCriteria) -> AsyncIterator[Customer]:
        async for item in self.iter_search(Listing.CUSTOMERS, criteria):
            yield Customer.model_validate(item)

    async def get_customer(self, customer_id: int) -> Customer:
        return Customer.model_validate(await self._call("GET", f"customers/{segment(customer_id)}"))

    async def create_customer(self, customer: Mapping[str, Any]) -> Customer:
        """Safe to re-send after a lost answer: the email is unique per website, so a second try that meets
        the first one's account is refused (400) and the caller finds that account by email."""
        body = {"customer": dict(customer)}
        return Customer.model_validate(await self._call("POST", "customers", json=body, idempotent=True))

    async def update_customer(self, customer_id: int, customer: Mapping[str, Any]) -> Customer:
        body = {"customer": dict(customer)}
        return Customer.model_validate(await self._call("PUT", f"customers/{segment(customer_id)}", json=body))

    async def get_customer_group(self, group_id: int) -> CustomerGroup:
        return CustomerGroup.model_validate(await self._call("GET", f"customerGroups/{segment(group_id)}"))

    # --- orders ---------------------------------------------------------------------------------------
    async def get_order(self, order_id: int) -> Order:
        return Order.model_validate(await self._call("GET", f"orders/{segment(order_id)}"))

    async def list_orders(self, criteria: SearchCriteria) -> Page:
        return await self.search(Listing.ORDERS, criteria)

    async def get_shipment(self, shipment_id: int) -> dict[str, Any]:
        return await self._call("GET", f"shipment/{segment(shipment_id)}")

    async def shipments_of(self, order_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Every shipment of these orders, with its items and (with MSI) the source it left from in
        `extension_attributes.source_code`."""
        if not order_ids:
            return []
        criteria = SearchCriteria(page_size=SHIPMENTS_PAGE_SIZE).where("order_id", sorted(set(order_ids)), "in")
        criteria.order_by("entity_id")
        return [shipment async for shipment in self.iter_search("shipments", criteria)]

    # --- tier prices ----------------------------------------------------------------------------------
    async def tier_prices(self, skus: Sequence[str]) -> list[TierPrice]:
        """Every tier price of these products, all websites and groups (a 404 when one SKU is unknown)."""
        answer = await self._call("POST", "products/tier-prices-information", json={"skus": list(skus)})
        return [TierPrice.model_validate(row) for row in answer]

    async def save_tier_prices(self, prices: Sequence[TierPrice]) -> list[PriceUpdateResult]:
        """Adds or updates by (sku, website, group, quantity): safe to re-send. Magento leaves out and reports
        each item it refuses ([] when it took them all); with input limiting on, at most 20 items a call."""
        body = {"prices": [_tier_body(p) for p in prices]}
        answer = await self._call("POST", "products/tier-prices", json=body, idempotent=True)
        return [PriceUpdateResult.model_validate(row) for row in answer]

    async def delete_tier_prices(self, prices: Sequence[TierPrice]) -> list[PriceUpdateResult]:
        """Magento removes a row only when its price matches too: send the rows as read, not as wanted."""
        body = {"prices": [_tier_body(p) for p in prices]}
        answer = await self._call("POST", "products/tier-prices-delete", json=body, idempotent=True)
        return [PriceUpdateResult.model_validate(row) for row in answer]


def _tier_body(price: TierPrice) -> dict[str, Any]:
    return price.model_dump(include={"price", "price_type", "website_id", "sku", "customer_group", "quantity"})
