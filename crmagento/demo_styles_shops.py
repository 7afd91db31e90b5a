"""The demo's last steps: a style's new variant becomes a new child of its configurable product, and a shop's
stock and an order shipped from it land at the shop (the demo links W-1 to Magento's `default` source and the
shop S-1 to `main_street`)."""

from __future__ import annotations

from typing import Any

from crmagento.demo_calls import until
from crmagento.demo_scenario import step
from crmagento.demo_support import CHANGE_TIMEOUT, Demo, fmt_qty, pick, timed_until, verdict

SHOP, SHOP_SOURCE = "S-1", "main_street"
NOT_VISIBLE = 1
NEW_COLORS = ("Green", "Grey", "Blue", "Red", "Black", "White")
NEW_SIZES = ("XS", "XL", "S", "M", "L")


async def _built_style(demo: Demo) -> dict[str, Any]:
    """A style the initial sync made a configurable product (footwear's fail by design: no "Shoes" set)."""
    for style in (await demo.calls.cr("GET", "styles", params={"limit": "200"}))["items"]:
        parent = await demo.calls.magento_product(style["code"])
        if style["axes"] == ["color", "size"] and parent and parent.get("type_id") == "configurable":
            return style
    raise LookupError("no style was built as a configurable product")


async def _children(demo: Demo, code: str) -> list[str]:
    return sorted(p["sku"] for p in await demo.calls.magento("GET", f"configurable-products/{code}/children"))


@step(
    "9. A new colour of a style in Cloud Retailer",
    "a new child of its configurable product in Magento, not visible on its own",
)
async def new_variant(demo: Demo) -> tuple[str, bool]:
    calls = demo.calls
    style = await _built_style(demo)
    variants = [await calls.cr("GET", f"products/{i}") for i in style["variant_ids"]]
    before = await _children(demo, style["code"])
    demo.say(
        f"Magento: configurable product {style['code']} ({style['name']!r}) has {len(before)} children, "
        f"options {', '.join(style['axes'])}; Cloud Retailer style {style['id']} has {len(variants)} variants"
    )
    taken = {tuple(v["attributes"].get(a) for a in style["axes"]) for v in variants}
    first = variants[0]
    combination = next((c, s) for c in NEW_COLORS for s in NEW_SIZES if (c, s) not in taken)
    values = dict(zip(style["axes"], combination, strict=True))
    sku = f"{style['code']}-{combination[0][:3].upper()}-{combination[1]}"
    body = {
        "sku": sku,
        "name": f"{style['name']} {combination[0]} {combination[1]}",
        "price": first["price"],
        "web_active": True,
        "department_id": first["department_id"],
        "category_ids": first["category_ids"],
        "attribute_sets": first["attribute_sets"],
        "attributes": {**first["attributes"], **values},
        "style_id": style["id"],
    }
    demo.say(f"Cloud Retailer: POST /api/v1/products {sku} with style_id {style['id']}, {values}")
    await calls.cr("POST", "products", json=body)

    async def linked() -> bool:
        return sku in await _children(demo, style["code"])

    seconds = await timed_until(linked, f"{sku} as a child of {style['code']}")
    after = await _children(demo, style["code"])
    child = await calls.magento_product(sku) or {}
    demo.evidence(
        f"GET /rest/all/V1/configurable-products/{style['code']}/children: {len(before)} -> {len(after)}; "
        f"{sku}: visibility {child.get('visibility')} (not visible individually), price {child.get('price')}"
    )
    return verdict(
        f"{sku} linked to {style['code']} after {seconds:.1f} s",
        one_more_child=after == sorted([*before, sku]),
        not_visible_on_its_own=child.get("visibility") == NOT_VISIBLE,
    )


@step(
    "10. Several shops: a shop's stock, and an order shipped from the shop",
    "the shop's on-hand on its own Magento source; the order a sale at the shop",
)
async def shop_stock_and_sale(demo: Demo) -> tuple[str, bool]:
    calls, product = demo.calls, await pick(demo)
    sku = product["sku"]
    web_before = await calls.source_quantity(sku)
    new = await calls.on_hand(SHOP, sku) + 7
    demo.say(f"Cloud Retailer: PUT /api/v1/inventory/{SHOP}/{sku} {{on_hand: {new:g}}} (the shop, not the web store)")
    await calls.set_on_hand(SHOP, sku, new)

    async def on_shop_source() -> bool:
        return await calls.source_quantity(sku, SHOP_SOURCE) == new

    await until(on_shop_source, CHANGE_TIMEOUT, f"quantity {new:g} of {sku} at source {SHOP_SOURCE}")
    web_after = await calls.source_quantity(sku)
    demo.evidence(
        f"Magento source {SHOP_SOURCE}: {fmt_qty(new)}; source default: {fmt_qty(web_before)} -> {fmt_qty(web_after)}"
    )
    order, _ = await calls.place_order([(product, 2.0)])
    oid, increment = order["entity_id"], order["increment_id"]
    web_on_hand = await calls.on_hand(demo.store_id, sku)
    await calls.magento("POST", f"order/{oid}/invoice", store="default", json={"capture": True})
    ship = {"arguments": {"extension_attributes": {"source_code": SHOP_SOURCE}}}
    await calls.magento("POST", f"order/{oid}/ship", store="default", json=ship)
    demo.say(f"Magento: order {increment} for 2 x {sku}, invoiced, shipped from source {SHOP_SOURCE}")

    async def sale() -> dict[str, Any] | None:
        found = (await calls.cr("GET", "sales", params={"external_ref": f"magento:{increment}"}))["items"]
        return found[0] if found else None

    seconds = await timed_until(sale, f"a sale for Magento order {increment}")
    booked = await sale() or {}
    shop_after = await calls.on_hand(SHOP, sku)
    demo.evidence(
        f"sale {booked.get('id')} at {booked.get('store_id')}; on-hand of {sku}: {SHOP} {new:g} -> {shop_after:g}, "
        f"{demo.store_id} {web_on_hand:g} -> {await calls.on_hand(demo.store_id, sku):g}"
    )
    return verdict(
        f"stock at {SHOP} on {SHOP_SOURCE}; order {increment} -> sale at {booked.get('store_id')} "
        f"after {seconds:.1f} s",
        the_web_source_untouched=web_after == web_before,
        the_sale_is_at_the_shop=booked.get("store_id") == SHOP,
        the_shop_on_hand_lowered=shop_after == new - 2,
        the_web_store_untouched=await calls.on_hand(demo.store_id, sku) == web_on_hand,
    )
