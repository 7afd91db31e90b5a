"""The HTTP calls the demo makes, as an operator would: the gateway's admin API and webhook edge, and the two
sandboxes' own APIs (Magento's REST API as its admin would use it, Cloud Retailer's as its back office would).

Nothing here reaches into a process's memory: every piece of evidence the demo shows is an API answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from crmcore.clock import utc_now_iso
from crmcore.errors import clip
from gateway.signatures import signed_headers
from sandbox.webhooks_out import SUPPRESS_HEADER

T = TypeVar("T")
LOST = {SUPPRESS_HEADER: "1"}  # the sandbox makes the change but "loses" its webhook
SETTLED = ("done", "skipped", "dead")


class CallError(Exception):
    """An API answered an error the demo did not expect; the message says which call and what it answered."""


class StepTimeout(Exception):
    """What a step waited for did not become visible in time."""


async def until(check: Callable[[], Awaitable[T | None]], within: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something other than None or False; StepTimeout after `within` seconds.
    The demo never sleeps blindly: each wait ends as soon as its effect is visible."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise StepTimeout(f"{what}: not seen within {within:.0f} s")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Endpoints:
    gateway: str  # http://host:port
    magento: str  # http://host:port (REST under /rest/)
    cloudretailer: str  # http://host:port/api/v1
    admin_token: str
    magento_token: str
    cr_api_key: str
    cr_webhook_secret: str

    @property
    def cloudretailer_root(self) -> str:
        return self.cloudretailer.removesuffix("/api/v1")


class DemoCalls:
    def __init__(self, http: aiohttp.ClientSession, endpoints: Endpoints) -> None:
        self.http, self.ep = http, endpoints

    async def _call(self, method: str, url: str, *, ok_404: bool = False, **kwargs: Any) -> Any:
        async with self.http.request(method, url, **kwargs) as resp:
            raw = await resp.read()
            body = orjson.loads(raw) if raw and resp.content_type.endswith("json") else raw.decode(errors="replace")
            if resp.status == 404 and ok_404:
                return None
            if resp.status >= 400:
                raise CallError(f"{method} {url.split('?')[0]} answered {resp.status}: {clip(str(body))}")
            return body

    # --- the gateway ------------------------------------------------------------------------------------
    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.ep.admin_token}"}
        return await self._call(method, f"{self.ep.gateway}{path}", headers=headers, **kwargs)

    async def start_job(self, path: str, body: dict[str, Any] | None = None) -> str:
        answer = await self.admin("POST", path, json=body if body is not None else {})
        return str(answer["job_id"])

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self.admin("GET", f"/admin/jobs/{job_id}")

    async def events(self, limit: int = 500) -> list[dict[str, Any]]:
        return (await self.admin("GET", "/admin/events", params={"limit": str(limit)}))["items"]

    async def quiet(self, within: float) -> list[dict[str, Any]]:
        """Wait until no event in the log is waiting or being worked on."""

        async def settled() -> list[dict[str, Any]] | None:
            items = await self.events()
            return None if any(e["status"] not in SETTLED for e in items) else items

        return await until(settled, within, "every event settled", interval=0.2)

    async def settled_event(self, entity: str, within: float) -> dict[str, Any]:
        """The newest event of `entity`, once settled."""

        async def found() -> dict[str, Any] | None:
            for e in await self.events(200):
                if e["entity"] == entity and e["status"] in SETTLED:
                    return e
            return None

        return await until(found, within, f"an event for {entity}")

    async def dead_letters(self, limit: int = 1000) -> dict[str, Any]:
        return await self.admin("GET", "/admin/dead-letters", params={"limit": str(limit)})

    async def gateway_status(self, path: str) -> int:
        async with self.http.get(f"{self.ep.gateway}{path}") as resp:
            return resp.status

    async def webhook(self, msg_id: str, event_type: str, data: dict[str, Any]) -> tuple[int, str]:
        """One Cloud Retailer webhook, signed as Cloud Retailer signs it."""
        body = orjson.dumps({"type": event_type, "timestamp": utc_now_iso(), "data": data})
        headers = signed_headers(self.ep.cr_webhook_secret, msg_id, body)
        async with self.http.post(f"{self.ep.gateway}/webhooks/cloudretailer", data=body, headers=headers) as r:
            answer = await r.json(content_type=None)
            return r.status, str(answer.get("status") or answer.get("detail") or "")

    # --- sandbox Magento ----------------------------------------------------------------------------------
    async def magento(self, method: str, path: str, store: str = "all", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.ep.magento_token}", **kwargs.pop("headers", {})}
        url = f"{self.ep.magento}/rest/{store}/V1/{path.lstrip('/')}"
        return await self._call(method, url, headers=headers, **kwargs)

    async def magento_product(self, sku: str) -> dict[str, Any] | None:
        return await self.magento("GET", f"products/{sku}", ok_404=True)

    async def place_order(
        self, lines: list[tuple[dict[str, Any], float]], buyer: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A storefront order for (Cloud Retailer product, quantity) lines at Magento's own prices, 5.00
        shipping, by `buyer` (default: a walk-in guest). Returns the order and its items as sent."""
        items = []
        for product, qty in lines:
            magento = await self.magento_product(product["sku"]) or {}
            items.append({"sku": product["sku"], "qty_ordered": qty, "price": magento.get("price", product["price"])})
        who = buyer or {
            "customer_email": "walk.in@example.com",
            "customer_firstname": "Walk",
            "customer_lastname": "In",
        }
        entity = {**who, "items": items, "shipping_amount": 5, "payment": {"method": "checkmo"}}
        return await self.magento("POST", "orders", store="default", json={"entity": entity}), items

    async def source_quantity(self, sku: str, source: str = "default") -> float | None:
        """The SKU's quantity at an MSI source (None: no source item)."""
        params = {
            "searchCriteria[filter_groups][0][filters][0][field]": "sku",
            "searchCriteria[filter_groups][0][filters][0][value]": sku,
            "searchCriteria[filter_groups][1][filters][0][field]": "source_code",
            "searchCriteria[filter_groups][1][filters][0][value]": source,
        }
        items = (await self.magento("GET", "inventory/source-items", params=params))["items"]
        return float(items[0]["quantity"]) if items else None

    async def magento_health(self) -> dict[str, Any]:
        return await self._call("GET", f"{self.ep.magento}/_sandbox/health")

    # --- sandbox Cloud Retailer -----------------------------------------------------------------------------
    async def cr(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.ep.cr_api_key}", **kwargs.pop("headers", {})}
        return await self._call(method, f"{self.ep.cloudretailer}/{path.lstrip('/')}", headers=headers, **kwargs)

    async def cr_products(self) -> list[dict[str, Any]]:
        return await self._cr_all("products")

    async def cr_styles(self) -> list[dict[str, Any]]:
        return await self._cr_all("styles")

    async def _cr_all(self, listing: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = await self.cr("GET", listing, params=params)
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    async def on_hand(self, store_id: str, sku: str) -> float:
        return float((await self.cr("GET", f"inventory/{store_id}/{sku}"))["on_hand"])

    async def set_on_hand(self, store_id: str, sku: str, on_hand: float, *, lose_webhook: bool = False) -> None:
        await self.cr(
            "PUT", f"inventory/{store_id}/{sku}", json={"on_hand": on_hand}, headers=LOST if lose_webhook else {}
        )
