"""The steady stream of business: what a shop's back office and its customers do while a fault is injected.

- Cloud Retailer back office (through its API, so the sandbox sends the signed webhooks): price changes,
  renames and web-active toggles of products, and on-hand counts set at the linked store.
- Magento customers: orders placed, invoiced and shipped (the sandbox sends `order.completed`); each imported
  order becomes a Cloud Retailer sale, which lowers on-hand there and so sends `inventory.updated` in turn.

The stream's own calls meet the same faults as the gateway's (a Magento outage refuses orders too). It
retries 429 and 5xx a few times honouring Retry-After, then counts the operation as refused and moves on;
orders left half done (invoiced, not shipped) are finished by `finish_orders` once the fault is over, so at
the end every order is complete and must be exactly one sale.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sandbox.catalog import LINKED_STORE_ID, MAGENTO_ATTRIBUTE_SETS, ProductSpec

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Relative weights of the operations; an order is three calls (place, invoice, ship).
WEIGHTS = {"price": 4, "product": 1, "stock": 4, "order": 2}


class Refused(Exception):
    """The system refused the call for longer than the stream waits (a fault is on)."""


@dataclass
class StreamStats:
    done: Counter[str] = field(default_factory=Counter)  # operation -> completed
    refused: Counter[str] = field(default_factory=Counter)  # operation -> given up (fault on)
    retried_calls: int = 0
    orders_placed: int = 0
    orders_completed: int = 0
    errors: list[str] = field(default_factory=list)  # unexpected answers: a failure of the run


def syncable(spec: ProductSpec) -> bool:
    """A product whose primary attribute set Magento has. The others (the seeded "Shoes") fail by design with
    a dead letter naming the missing set; the stream changes their stock and sells them, but does not edit
    them, so a dead letter in a chaos run always means something went wrong."""
    primary = next((str(s["name"]) for s in spec.attribute_sets if s.get("primary")), "Default")
    return primary in MAGENTO_ATTRIBUTE_SETS


class Stream:
    def __init__(
        self,
        *,
        cr_url: str,
        cr_key: str,
        magento_url: str,
        magento_token: str,
        products: list[ProductSpec],
        rate: float,
        seed: int = 7,
        concurrency: int = 8,
    ) -> None:
        self.cr_url, self.magento_url = cr_url.rstrip("/"), magento_url.rstrip("/")
        self._cr_headers = {"Authorization": f"Bearer {cr_key}"}
        self._magento_headers = {"Authorization": f"Bearer {magento_token}"}
        self.editable = [p for p in products if syncable(p)]
        self.all = products
        self.rate = rate
        self.rng = random.Random(seed)
        self.stats = StreamStats()
        self.web_active = {p.id: p.web_active for p in products}
        self.renames: Counter[str] = Counter()
        self.unfinished: dict[int, str] = {}  # Magento order entity_id -> the next step ("invoice" or "ship")
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._orders = 0

    async def __aenter__(self) -> Stream:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --- the loop ----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start one operation every 1/rate seconds (without waiting for it) until `stop` is set."""
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not stop.is_set():
            op = self.rng.choices(names, weights)[0]
            task = asyncio.create_task(self._run_op(op))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_op(self, op: str) -> None:
        async with self._limit:
            try:
                await getattr(self, f"_{op}")()
                self.stats.done[op] += 1
            except Refused:
                self.stats.refused[op] += 1
            except (AssertionError, aiohttp.ClientError, TimeoutError) as exc:
                self.stats.errors.append(f"{op}: {type(exc).__name__}: {exc}"[:300])

    # --- operations --------------------------------------------------------------------------------------

    async def _price(self) -> None:
        spec = self.rng.choice(self.editable)
        price = round(self.rng.uniform(5, 250), 2)
        await self._cr("PUT", f"/products/{spec.id}", {"price": price})

    async def _product(self) -> None:
        spec = self.rng.choice(self.editable)
        if self.rng.random() < 0.5:
            self.renames[spec.id] += 1
            await self._cr("PUT", f"/products/{spec.id}", {"name": f"{spec.name} mk{self.renames[spec.id]}"})
        else:
            active = not self.web_active[spec.id]
            await self._cr("PUT", f"/products/{spec.id}", {"web_active": active})
            self.web_active[spec.id] = active

    async def _stock(self) -> None:
        spec = self.rng.choice(self.all)
        # Counts stay well above what orders take, so on-hand never reaches 0 by selling alone.
        await self._cr("PUT", f"/inventory/{LINKED_STORE_ID}/{spec.sku}", {"on_hand": self.rng.randint(40, 400)})

    async def _order(self) -> None:
        self._orders += 1
        lines = self.rng.sample(self.all, k=min(len(self.all), self.rng.randint(1, 2)))
        entity = {
            "customer_email": f"chaos.buyer.{self._orders}@example.com",
            "customer_firstname": "Chaos",
            "customer_lastname": f"Buyer{self._orders}",
            "shipping_amount": 5,
            "items": [{"sku": spec.sku, "qty_ordered": self.rng.randint(1, 2), "price": spec.price} for spec in lines],
        }
        order = await self._magento("POST", "/rest/default/V1/orders", {"entity": entity})
        self.stats.orders_placed += 1
        self.unfinished[int(order["entity_id"])] = "invoice"
        await self._advance(int(order["entity_id"]))

    async def _advance(self, entity_id: int) -> None:
        """Invoice, then ship: the order becomes complete and the sandbox sends order.completed."""
        if self.unfinished.get(entity_id) == "invoice":
            await self._magento("POST", f"/rest/default/V1/order/{entity_id}/invoice", {"capture": True})
            self.unfinished[entity_id] = "ship"
        if self.unfinished.get(entity_id) == "ship":
            await self._magento("POST", f"/rest/default/V1/order/{entity_id}/ship", {})
            del self.unfinished[entity_id]
            self.stats.orders_completed += 1

    async def finish_orders(self, within: float = 60.0) -> None:
        """After the fault: complete every order the fault left half done."""
        deadline = time.monotonic() + within
        while self.unfinished:
            for entity_id in list(self.unfinished):
                with contextlib.suppress(Refused):
                    await self._advance(entity_id)
            if self.unfinished:
                if time.monotonic() > deadline:
                    raise AssertionError(f"orders still not complete: {sorted(self.unfinished)}")
                await asyncio.sleep(0.5)

    # --- HTTP --------------------------------------------------------------------------------------------

    async def _cr(self, method: str, path: str, body: dict[str, Any]) -> Any:
        return await self._call(method, f"{self.cr_url}{path}", body, self._cr_headers)

    async def _magento(self, method: str, path: str, body: dict[str, Any]) -> Any:
        return await self._call(method, f"{self.magento_url}{path}", body, self._magento_headers)

    async def _call(self, method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """The sandboxes' faults answer before the handler runs, so a refused call changed nothing and is safe
        to send again (the stream never injects dropped connections, which would make that uncertain)."""
        assert self._session is not None
        for attempt in range(4):
            async with self._session.request(method, url, json=body, headers=headers) as resp:
                payload = await resp.json(content_type=None)
                if resp.status < 300:
                    return payload
                if resp.status not in RETRY_STATUSES:
                    raise AssertionError(f"{method} {url} -> {resp.status}: {payload}")
                retry_after = float(resp.headers.get("Retry-After") or 0.3)
            if attempt < 3:
                self.stats.retried_calls += 1
                await asyncio.sleep(min(retry_after, 2.0))
        raise Refused(f"{method} {url}")
