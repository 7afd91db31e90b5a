"""The demo's scripted scenario: each step makes a change the way a person or a system would, waits until its
effect is visible through the APIs (polling with a timeout, never a blind sleep), shows the evidence, and
returns what it observed and whether that is what it expected.

Steps share a `Demo` (crmagento/demo_support.py): the API calls, the console, and what earlier steps learnt
(the catalog, the customer). A step that fails is recorded and the next one still runs, so the summary shows
every step's outcome.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from crmagento.demo_calls import CallError, StepTimeout, until
from crmagento.demo_support import (
    CHANGE_TIMEOUT,
    Demo,
    StepResult,
    attr,
    fmt_qty,
    follow_job,
    is_shoes,
    pick,
    timed_until,
    verdict,
)

log = structlog.get_logger(__name__)

BADGE = "Staff pick"


StepFn = Callable[[Demo], Awaitable[tuple[str, bool]]]
STEPS: list[tuple[str, str, StepFn]] = []


def step(title: str, expected: str) -> Callable[[StepFn], StepFn]:
    def register(fn: StepFn) -> StepFn:
        STEPS.append((title, expected, fn))
        return fn

    return register


async def run_scenario(demo: Demo) -> list[StepResult]:
    results = []
    for title, expected, fn in STEPS:
        demo.console.print()
        demo.console.rule(f"[bold]{title}", align="left")
        started = time.monotonic()
        try:
            observed, ok = await fn(demo)
        except (CallError, StepTimeout, aiohttp.ClientError, TimeoutError, LookupError) as exc:
            observed, ok = f"{type(exc).__name__}: {exc}", False
        except Exception as exc:  # a bug in a step: recorded (traceback in the log) and the demo goes on
            log.exception("demo_step_crashed", step=title)
            observed, ok = f"{type(exc).__name__}: {exc} (traceback in the log)", False
        colour = "green" if ok else "red"
        demo.console.print(f"  [{colour}]{'✔' if ok else '✘'} {observed}[/]")
        results.append(StepResult(title, expected, observed, ok, time.monotonic() - started))
    return results


# --- the steps ---------------------------------------------------------------------------------------------


@step(
    "1. Initial full sync",
    "categories, products and stock in Magento; the Shoes products fail with a clear reason",
)
async def initial_sync(demo: Demo) -> tuple[str, bool]:
    calls = demo.calls
    demo.catalog = await calls.cr_products()
    styles = await calls.cr_styles()
    shoes = [p for p in [*demo.catalog, *styles] if is_shoes(p)]
    records = len(demo.catalog) + len(styles)
    before = await calls.magento_health()
    demo.say(
        f"Cloud Retailer holds {len(demo.catalog)} products and {len(styles)} styles (apparel and footwear: "
        f"configurable products in Magento, their variants the children); {len(shoes)} of them have primary "
        f"attribute set Shoes. Magento holds {before['products']} products and {before['categories']} categories "
        "(a fresh install)."
    )
    categories = await follow_job(demo, "categories", "/admin/resync/categories")
    products = await follow_job(demo, "products", "/admin/resync/products")
    progress = products["progress"]
    dead = (await calls.dead_letters())["items"]
    reasons = Counter(d["reason"] for d in dead)
    if dead:
        demo.say(
            f"{len(dead)} dead letters (GET /admin/dead-letters): the sandbox Magento has no Shoes attribute set, "
            "so those products and styles fail by design. The reason given, e.g.:"
        )
        demo.evidence(next(iter(reasons)))
        demo.say("Once fixed, `crmagento dead-letters replay ID` (or the dashboard) puts them back on the queue.")
    demo.say("Stock: on-hand at the linked store goes to Magento's MSI source with a reconciliation.")
    stock = await follow_job(demo, "stock", "/admin/reconcile/inventory")
    report = stock.get("result") or {}
    await calls.quiet(CHANGE_TIMEOUT)
    after = await calls.magento_health()
    demo.evidence(
        f"Magento now: {after['products']} products, {after['categories']} categories, "
        f"{after['source_items']} source items; stock written for {report.get('drift_fixed', '?')} SKUs "
        f"in {report.get('magento_writes', '?')} calls"
    )
    sample = next(p for p in demo.catalog if not is_shoes(p))
    magento = await calls.magento_product(sample["sku"]) or {}
    images = len(magento.get("media_gallery_entries") or [])
    links = len((magento.get("extension_attributes") or {}).get("category_links") or [])
    demo.evidence(
        f"e.g. GET /rest/all/V1/products/{sample['sku']}: {magento.get('name')!r}, price {magento.get('price')}, "
        f"{images} images (Cloud Retailer: {len(sample['images'])}), {links} category links, "
        f"quantity {fmt_qty(await calls.source_quantity(sample['sku']))}"
    )
    built = [s for s in styles if not is_shoes(s)]
    configurable = [await calls.magento_product(s["code"]) or {} for s in built[:3]]
    if built:
        children = await calls.magento("GET", f"configurable-products/{built[0]['code']}/children")
        demo.evidence(
            f"e.g. style {built[0]['code']} ({built[0]['name']!r}): a configurable product with "
            f"{len(children)} children ({', '.join(c['sku'] for c in children)}), options {', '.join(built[0]['axes'])}"
        )
    return verdict(
        f"{progress['done']} products and styles synced, {progress['failed']} failed (Shoes, dead-lettered with the "
        f"reason), {after['categories']} categories, stock for {after['source_items']} SKUs",
        jobs_done=categories["status"] == products["status"] == stock["status"] == "done",
        every_record_but_the_shoes_synced=progress
        == {"done": records - len(shoes), "failed": len(shoes), "total": records},
        one_dead_letter_per_shoes_record=len(dead) == len(shoes),
        the_reason_names_the_shoes_set=all("attribute set 'Shoes'" in reason for reason in reasons),
        styles_are_configurable=all(p.get("type_id") == "configurable" for p in configurable),
        images_uploaded=images == len(sample["images"]),
        stock_reconciled=report.get("status") == "ok",
    )


@step("2. Price and stock changed in Cloud Retailer", "the new price and on-hand show in Magento")
async def price_and_stock(demo: Demo) -> tuple[str, bool]:
    calls, product = demo.calls, await pick(demo)
    sku = product["sku"]
    old_qty = await calls.source_quantity(sku) or 0
    price, qty = round(product["price"] + 5, 2), old_qty + 12
    demo.say(f"Cloud Retailer: PUT /api/v1/products/{product['id']} {{price: {product['price']} -> {price}}}")
    changed = time.monotonic()
    await calls.cr("PUT", f"products/{product['id']}", json={"price": price})
    demo.say(f"Cloud Retailer: PUT /api/v1/inventory/{demo.store_id}/{sku} {{on_hand: {old_qty:g} -> {qty:g}}}")
    await calls.set_on_hand(demo.store_id, sku, qty)

    async def price_arrived() -> bool:
        m = await calls.magento_product(sku)
        return m is not None and m["price"] == price

    async def stock_arrived() -> bool:
        return await calls.source_quantity(sku) == qty

    # Both measured from the first change: the two travel independently (two webhooks, two entities).
    await until(price_arrived, CHANGE_TIMEOUT, f"price {price} of {sku} in Magento")
    price_s = time.monotonic() - changed
    await until(stock_arrived, CHANGE_TIMEOUT, f"quantity {qty:g} of {sku} in Magento")
    stock_s = time.monotonic() - changed
    magento = await calls.magento_product(sku)
    demo.evidence(f"GET /rest/all/V1/products/{sku}: price {magento['price'] if magento else None}")
    demo.evidence(f"GET /rest/all/V1/inventory/source-items (sku {sku}, source default): quantity {qty:g}")
    return f"{sku}: price {price} in Magento after {price_s:.1f} s, quantity {qty:g} after {stock_s:.1f} s", True


@step(
    "3. Magento edits: shared attribute overwritten, Magento-only attribute kept",
    "name back to Cloud Retailer's, badge_text kept",
)
async def magento_edits(demo: Demo) -> tuple[str, bool]:
    calls, product = demo.calls, await pick(demo)
    sku, name = product["sku"], product["name"]
    edited = f"{name} (renamed in Magento)"
    demo.say(f"Magento admin: PUT /rest/all/V1/products/{sku} name={edited!r}, badge_text={BADGE!r}")
    body = {
        "product": {
            "sku": sku,
            "name": edited,
            "custom_attributes": [{"attribute_code": "badge_text", "value": BADGE}],
        }
    }
    await calls.magento("PUT", f"products/{sku}", json=body)
    before = await calls.magento_product(sku) or {}
    demo.evidence(f"Magento now: name {before.get('name')!r}, badge_text {attr(before, 'badge_text')!r}")
    price = round(product["price"] + 1, 2)
    demo.say(f"Cloud Retailer: PUT /api/v1/products/{product['id']} {{price: {price}}} (any change will do)")
    await calls.cr("PUT", f"products/{product['id']}", json={"price": price})

    async def synced() -> dict[str, Any] | None:
        m = await calls.magento_product(sku)
        return m if m is not None and m["price"] == price else None

    after = await until(synced, CHANGE_TIMEOUT, f"the change of {sku} in Magento")
    badge = attr(after, "badge_text")
    demo.evidence(f"Magento now: name {after['name']!r}, badge_text {badge!r}, price {after['price']}")
    return verdict(
        f"{sku}: name {after['name']!r}, badge_text {badge!r}",
        name_overwritten=after["name"] == name,
        badge_text_kept=badge == BADGE,
    )


@step("4. Customer created in Magento", "the account appears as a Cloud Retailer customer")
async def magento_customer(demo: Demo) -> tuple[str, bool]:
    calls = demo.calls
    email = f"ada.demo.{secrets.token_hex(3)}@example.com"
    address = {
        "firstname": "Ada",
        "lastname": "Lovelace",
        "street": ["12 Market St"],
        "city": "Austin",
        "postcode": "78701",
        "country_id": "US",
        "region_id": 57,
        "telephone": "512-555-0142",
        "default_billing": True,
        "default_shipping": True,
    }
    body = {
        "customer": {"email": email, "firstname": "Ada", "lastname": "Lovelace", "addresses": [address]},
        "password": "Demo-Passw0rd!",
    }
    demo.say(f"Magento storefront sign-up: POST /rest/default/V1/customers ({email})")
    account = await calls.magento("POST", "customers", store="default", json=body)
    demo.evidence(f"Magento customer #{account['id']}; Magento calls the gateway back with customer.created")

    async def in_cloud_retailer() -> dict[str, Any] | None:
        items = (await calls.cr("GET", "customers", params={"email": email}))["items"]
        return items[0] if items else None

    seconds = await timed_until(in_cloud_retailer, f"customer {email} in Cloud Retailer")
    customer = await in_cloud_retailer() or {}
    demo.evidence(
        f"GET /api/v1/customers?email={email}: {customer['id']} {customer['first_name']} {customer['last_name']}, "
        f"{len(customer['addresses'])} address"
    )
    demo.customer = {"magento_id": account["id"], "cr_id": customer["id"], "email": email}
    return f"Magento #{account['id']} -> Cloud Retailer {customer['id']} after {seconds:.1f} s", True


@step(
    "5. Order placed, invoiced and shipped in Magento",
    "one Cloud Retailer sale, Web Orders tender, on-hand lowered",
)
async def magento_order(demo: Demo) -> tuple[str, bool]:
    calls = demo.calls
    lines = [(await pick(demo, min_on_hand=3), 2.0), (await pick(demo, min_on_hand=3), 1.0)]
    before = {p["sku"]: await calls.on_hand(demo.store_id, p["sku"]) for p, _ in lines}
    buyer = {"customer_id": demo.customer["magento_id"]} if demo.customer else None
    order, items = await calls.place_order(lines, buyer)
    oid, increment = order["entity_id"], order["increment_id"]
    demo.say(
        f"POST /rest/default/V1/orders: order {increment} ({', '.join(f'{q:g} x {s}' for s, q in _lines(items))}, "
        f"grand total {order['grand_total']})"
    )
    await calls.magento("POST", f"order/{oid}/invoice", store="default", json={"capture": True})
    demo.say(f"POST /rest/default/V1/order/{oid}/invoice, then /ship: complete, Magento sends order.completed")
    await calls.magento("POST", f"order/{oid}/ship", store="default", json={})

    async def sales() -> list[dict[str, Any]] | None:
        found = (await calls.cr("GET", "sales", params={"external_ref": f"magento:{increment}"}))["items"]
        return found or None

    seconds = await timed_until(sales, f"a sale for Magento order {increment}")
    await calls.settled_event(f"magento:order:{oid}", CHANGE_TIMEOUT)
    found = await sales() or []
    sale = found[0]
    after = {sku: await calls.on_hand(demo.store_id, sku) for sku in before}
    tenders = [t["type"] for t in sale["tenders"]]
    demo.evidence(
        f"GET /api/v1/sales?external_ref=magento:{increment}: {len(found)} sale {sale['id']}, total {sale['total']}, "
        f"tenders {tenders}, customer {sale.get('customer_id')}"
    )
    for sku, count in _lines(items):
        demo.evidence(f"on-hand of {sku} at {demo.store_id}: {before[sku]:g} -> {after[sku]:g} (ordered {count:g})")

    # The sale's stock movement is a Cloud Retailer change like any other: it comes back to Magento's source.
    async def magento_follows() -> bool:
        return all([await calls.source_quantity(sku) == after[sku] for sku in after])

    await until(magento_follows, CHANGE_TIMEOUT, "Magento's quantities to follow Cloud Retailer's on-hand")
    demo.evidence("Magento's source quantities follow: " + ", ".join(f"{sku} {q:g}" for sku, q in after.items()))
    return verdict(
        f"order {increment} -> sale {sale['id']} ({', '.join(tenders)}) after {seconds:.1f} s, stock lowered",
        one_sale=len(found) == 1,
        web_orders_tender=tenders == ["Web Orders"],
        on_hand_lowered=all(after[sku] == before[sku] - count for sku, count in _lines(items)),
        the_customer_linked=not demo.customer or sale.get("customer_id") == demo.customer["cr_id"],
    )


def _lines(items: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(i["sku"], float(i["qty_ordered"])) for i in items]


@step("6. A lost webhook healed by reconciliation", "Magento stale until POST /admin/reconcile/inventory fixes it")
async def lost_webhook(demo: Demo) -> tuple[str, bool]:
    calls, product = demo.calls, await pick(demo)
    sku = product["sku"]
    old = await calls.source_quantity(sku)
    new = (old or 0) + 30
    demo.say(
        f"Cloud Retailer: PUT /api/v1/inventory/{demo.store_id}/{sku} {{on_hand: {new:g}}} with "
        "X-Sandbox-Suppress-Webhook: 1 (the webhook is lost)"
    )
    await calls.set_on_hand(demo.store_id, sku, new, lose_webhook=True)
    await calls.quiet(CHANGE_TIMEOUT)  # nothing in flight: what Magento shows now stays until something acts
    stale = await calls.source_quantity(sku)
    demo.evidence(f"Magento still shows quantity {fmt_qty(stale)} for {sku} (Cloud Retailer: {new:g}, no webhook came)")
    job = await follow_job(demo, "reconcile", "/admin/reconcile/inventory")
    report = job.get("result") or {}
    drift = [d for d in report.get("drift", []) if d.get("sku") == sku]
    demo.evidence(
        f"report: compared {report.get('compared')}, drift found {report.get('drift_found')}, "
        f"fixed {report.get('drift_fixed')}; {sku}: "
        + (
            f"Magento {fmt_qty(drift[0]['magento'])}, Cloud Retailer {fmt_qty(drift[0]['cloud_retailer'])}"
            if drift
            else "no drift"
        )
    )

    async def healed() -> bool:
        return await calls.source_quantity(sku) == new

    await until(healed, CHANGE_TIMEOUT, f"quantity {new:g} of {sku} in Magento")
    demo.evidence(f"Magento now shows quantity {new:g} for {sku}")
    return verdict(
        f"{sku}: stale at {fmt_qty(stale)} after the lost webhook, {new:g} after the reconciliation",
        magento_stale_before=stale == old,
        reconciliation_done=job["status"] == "done" and report.get("status") == "ok",
        the_drift_reported=bool(drift),
    )


@step("7. The webhook edge: one delivery sent 50 times at once", "1 queued, 49 answered 200 duplicate, 1 event")
async def duplicate_deliveries(demo: Demo) -> tuple[str, bool]:
    calls = demo.calls
    product = next(p for p in demo.catalog if p["sku"] in demo.used)
    msg_id = f"msg_demo_{secrets.token_hex(6)}"
    demo.say(f"50 identical signed product.updated deliveries for {product['sku']}, webhook-id {msg_id}, at once")
    data = {"product_id": product["id"], "sku": product["sku"]}
    answers = await asyncio.gather(*(calls.webhook(msg_id, "product.updated", data) for _ in range(50)))
    tally = Counter(f"{status} {what}" for status, what in answers)
    demo.evidence(", ".join(f"{n} x {answer}" for answer, n in tally.most_common()))

    async def settled() -> dict[str, Any] | None:
        event = await calls.admin("GET", f"/admin/events/{msg_id}", params={"source": "cloudretailer"})
        return event if event["status"] in ("done", "skipped", "dead") else None

    event = await until(settled, CHANGE_TIMEOUT, f"event {msg_id} settled")
    demo.evidence(f"GET /admin/events/{msg_id}: status {event['status']}, attempts {event['attempts']}")
    return verdict(
        f"{tally['202 queued']} queued, {tally['200 duplicate']} duplicate; the event: {event['status']}",
        one_queued_the_rest_duplicate=tally == Counter({"202 queued": 1, "200 duplicate": 49}),
        the_event_done=event["status"] == "done",
    )


@step(
    "8. Shipped before it is invoiced: no oversell",
    "Magento = on-hand minus the shipped units until the sale is recorded, then the two agree",
)
async def shipped_not_invoiced(demo: Demo) -> tuple[str, bool]:
    calls, product = demo.calls, await pick(demo, min_on_hand=3)
    sku, shipped = product["sku"], 2.0
    order, _ = await calls.place_order([(product, shipped)])
    oid, increment = order["entity_id"], order["increment_id"]
    await calls.magento("POST", f"order/{oid}/ship", store="default", json={})
    demo.say(
        f"Magento: order {increment} for {shipped:g} x {sku}, shipped (MSI takes the units out of the source) "
        "but not invoiced: not complete, so not a Cloud Retailer sale yet"
    )
    new = await calls.on_hand(demo.store_id, sku) + 10
    demo.say(f"Cloud Retailer: PUT /api/v1/inventory/{demo.store_id}/{sku} {{on_hand: {new:g}}}")
    await calls.set_on_hand(demo.store_id, sku, new)

    async def held_back() -> bool:
        return await calls.source_quantity(sku) == new - shipped

    await until(held_back, CHANGE_TIMEOUT, f"quantity {new - shipped:g} of {sku} in Magento")
    demo.evidence(
        f"Magento's source quantity {new - shipped:g} = on-hand {new:g} minus the {shipped:g} shipped units "
        f"(writing {new:g} would let Magento sell them twice)"
    )
    await calls.magento("POST", f"order/{oid}/invoice", store="default", json={"capture": True})
    demo.say(f"POST /rest/default/V1/order/{oid}/invoice: complete, the sale is recorded and the units released")

    async def agree() -> float | None:
        sales = (await calls.cr("GET", "sales", params={"external_ref": f"magento:{increment}"}))["items"]
        on_hand = await calls.on_hand(demo.store_id, sku)
        return on_hand if sales and await calls.source_quantity(sku) == on_hand else None

    on_hand = await until(agree, CHANGE_TIMEOUT, f"a sale for {increment} and Magento = on-hand for {sku}")
    demo.evidence(f"on-hand of {sku}: {new:g} -> {on_hand:g} (the sale); Magento's source quantity {on_hand:g}")
    return verdict(
        f"{sku}: Magento {new - shipped:g} while {shipped:g} shipped units were not a sale, then {on_hand:g} = on-hand",
        the_sale_lowered_on_hand=on_hand == new - shipped,
    )


# The later steps live in their own module; importing it registers them after the ones above.
from crmagento import demo_styles_shops  # noqa: E402, F401
