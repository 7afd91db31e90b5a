"""Styles end to end: Cloud Retailer styles become Magento configurable products whose children are the
variants, through both sandboxes, the real gateway and workers, and real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.cloudretailer.keys import STATE as CR_STATE
from tests.conftest import wait_for
from tests.support.stack import Stack, full_stack
from tests.test_catalog import catalog_rules, full_resync, magento_product, reset_stats, settled, writes

NOT_VISIBLE, CATALOG_SEARCH = 1, 4
ENABLED, DISABLED = 1, 2


async def cr_styles(stack: Stack) -> list[dict[str, Any]]:
    return (await stack.cr("GET", "/styles", params={"limit": "500"}))["items"]


async def children(stack: Stack, code: str) -> list[str]:
    return sorted(p["sku"] for p in await stack.magento("GET", f"configurable-products/{code}/children"))


async def options(stack: Stack, code: str) -> dict[str, list[int]]:
    """attribute code -> the option ids (value_index) the configurable option offers."""
    found = await stack.magento("GET", f"configurable-products/{code}/options/all")
    by_id = {}
    for code_ in ("color", "size", "material"):
        attribute = await stack.magento("GET", f"products/attributes/{code_}")
        by_id[int(attribute["attribute_id"])] = code_
    return {by_id[int(o["attribute_id"])]: sorted(int(v["value_index"]) for v in o["values"]) for o in found}


async def option_label(stack: Stack, attribute: str, option_id: int) -> str:
    found = await stack.magento("GET", f"products/attributes/{attribute}/options")
    return next(o["label"] for o in found if str(o["value"]) == str(option_id))


async def variant(stack: Stack, product_id: str) -> dict[str, Any]:
    return await stack.cr("GET", f"/products/{product_id}")


def clothing(styles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Styles whose attribute set Magento has (footwear's "Shoes" is absent by design)."""
    return [s for s in styles if any(a["primary"] and a["name"] == "Clothing" for a in s["attribute_sets"])]


async def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    _, body = await stack.admin("GET", "/admin/dead-letters", params={"limit": "100"})
    return body["items"]


@pytest.fixture
async def stack(redis_url: str):
    async with full_stack(redis_url, products=40, styles=True) as s:
        await s.start_worker(catalog_rules())
        yield s


async def synced(stack: Stack) -> list[dict[str, Any]]:
    await full_resync(stack)
    return await cr_styles(stack)


async def test_styles_become_configurable_products_and_a_second_sync_writes_nothing(stack: Stack) -> None:
    styles = await synced(stack)
    assert clothing(styles), "the seeded catalog has apparel styles"
    for style in clothing(styles):
        parent = await magento_product(stack, style["code"])
        assert parent["type_id"] == "configurable"
        assert parent["visibility"] == CATALOG_SEARCH
        variants = [await variant(stack, v) for v in style["variant_ids"]]
        assert await children(stack, style["code"]) == sorted(v["sku"] for v in variants)
        # The parent is on sale while one child is; every tenth seeded product is not for the web.
        assert parent["status"] == (ENABLED if any(v["web_active"] for v in variants) else DISABLED)
        offered = await options(stack, style["code"])
        assert sorted(offered) == sorted(style["axes"])
        for axis, ids in offered.items():
            labels = {await option_label(stack, axis, i) for i in ids}
            assert labels == {v["attributes"][axis] for v in variants}
        for v in variants:
            child = await magento_product(stack, v["sku"])
            assert child["visibility"] == NOT_VISIBLE
            assert child["price"] == v["price"]
        media = await stack.magento("GET", f"products/{style['code']}/media")
        assert len(media) == len(style["images"])
    await reset_stats(stack)
    await full_resync(stack)
    assert await writes(stack) == {}


async def test_a_new_variant_appears_as_a_new_child_with_its_value_as_an_option(stack: Stack) -> None:
    styles = await synced(stack)
    style = clothing(styles)[0]
    first = await variant(stack, style["variant_ids"][0])
    taken = {
        (v["attributes"]["color"], v["attributes"]["size"])
        for v in [await variant(stack, i) for i in style["variant_ids"]]
    }
    combination = next((c, s) for c in ("Green", "Grey") for s in ("XL", "XS") if (c, s) not in taken)
    new = await stack.cr(
        "POST",
        "/products",
        json={
            "sku": "CR-NEW-VARIANT",
            "name": f"{style['name']} {combination[0]} {combination[1]}",
            "price": 19.5,
            "web_active": True,
            "department_id": first["department_id"],
            "category_ids": first["category_ids"],
            "attribute_sets": first["attribute_sets"],
            "attributes": {**first["attributes"], "color": combination[0], "size": combination[1]},
            "style_id": style["id"],
        },
    )

    async def linked() -> bool:
        return new["sku"] in await children(stack, style["code"])

    await wait_for(linked, within=20)
    await settled(stack)
    child = await magento_product(stack, new["sku"])
    assert child["visibility"] == NOT_VISIBLE
    offered = await options(stack, style["code"])
    assert combination[0] in {await option_label(stack, "color", i) for i in offered["color"]}
    assert combination[1] in {await option_label(stack, "size", i) for i in offered["size"]}


async def test_a_variant_moved_removed_or_changed_is_followed(stack: Stack) -> None:
    styles = clothing(await synced(stack))
    source, target = styles[0], styles[1]
    moving, removed = source["variant_ids"][0], source["variant_ids"][1]
    moving_sku = (await variant(stack, moving))["sku"]
    removed_sku = (await variant(stack, removed))["sku"]
    target_taken = {
        (v["attributes"]["color"], v["attributes"]["size"])
        for v in [await variant(stack, i) for i in target["variant_ids"]]
    }
    free = next((c, s) for c in ("Green", "Grey", "Blue") for s in ("XS", "XL") if (c, s) not in target_taken)
    await stack.cr(
        "PUT",
        f"/products/{moving}",
        json={"style_id": target["id"], "attributes": {"color": free[0], "size": free[1]}},
    )
    await stack.cr("DELETE", f"/products/{removed}")

    staying = sorted([(await variant(stack, v))["sku"] for v in source["variant_ids"] if v not in (moving, removed)])

    async def followed() -> bool:
        moved = moving_sku in await children(stack, target["code"])
        return moved and await children(stack, source["code"]) == staying

    await wait_for(followed, within=20)
    await settled(stack)
    gone = await magento_product(stack, removed_sku)
    assert gone["status"] == DISABLED, "a removed variant is disabled, never deleted"
    assert free[0] in {await option_label(stack, "color", i) for i in (await options(stack, target["code"]))["color"]}


async def test_a_parent_is_disabled_when_no_child_is_for_the_web(stack: Stack) -> None:
    style = clothing(await synced(stack))[0]
    for product_id in style["variant_ids"]:
        await stack.cr("PUT", f"/products/{product_id}", json={"web_active": False})

    async def disabled() -> bool:
        return (await magento_product(stack, style["code"]))["status"] == DISABLED

    await wait_for(disabled, within=20)


async def _refused(stack: Stack, code: str, words: str) -> None:
    async def dead() -> list[dict[str, Any]] | None:
        found = [d for d in await dead_letters(stack) if words in str(d.get("reason", ""))]
        return found or None

    letters = await wait_for(dead, within=20)
    assert code in str(letters[0]["reason"])
    assert (await magento_product(stack, code))["status"] == DISABLED, "nothing half built stays on sale"


async def test_an_axis_magento_cannot_vary_by_is_a_dead_letter_and_the_parent_is_disabled(stack: Stack) -> None:
    style = clothing(await synced(stack))[0]
    # material is a select in both systems but store-view scoped in Magento: not usable as an axis.
    await stack.cr("PUT", f"/styles/{style['id']}", json={"axes": ["color", "size", "material"]})
    await _refused(stack, style["code"], "an axis must be global")


async def test_variants_without_an_axis_value_or_with_the_same_combination_are_dead_letters(stack: Stack) -> None:
    styles = clothing(await synced(stack))
    state = stack.cr_server.app[CR_STATE]
    # Cloud Retailer refuses both through its API; data that got there anyway (an import, an older version) is
    # put straight into the sandbox's records here.
    first, second = (state.products.get(i) for i in styles[0]["variant_ids"][:2])
    second.attributes["color"], second.attributes["size"] = first.attributes["color"], first.attributes["size"]
    lacking = state.products.get(styles[1]["variant_ids"][0])
    lacking.attributes.pop("size")
    for style in styles[:2]:
        await stack.cr("PUT", f"/styles/{style['id']}", json={"name": style["name"] + " (new)"})
    await _refused(stack, styles[0]["code"], "have the same")
    await _refused(stack, styles[1]["code"], "has no value for axis 'size'")


async def test_a_variant_whose_style_is_deleted_is_a_dead_letter_and_the_parent_disabled(stack: Stack) -> None:
    style = clothing(await synced(stack))[0]
    await stack.cr("DELETE", f"/styles/{style['id']}")

    async def disabled() -> bool:
        return (await magento_product(stack, style["code"]))["status"] == DISABLED

    await wait_for(disabled, within=20)
    await stack.cr("PUT", f"/products/{style['variant_ids'][0]}", json={"price": 1.25})

    async def dead() -> list[dict[str, Any]] | None:
        return [d for d in await dead_letters(stack) if "is deleted" in str(d.get("reason", ""))] or None

    letters = await wait_for(dead, within=20)
    assert style["id"] in str(letters[0]["reason"])


async def test_an_order_for_a_configurable_product_becomes_a_sale_of_the_variant(redis_url: str) -> None:
    """The whole path: style synced, an order for one of its children, invoiced and shipped, imported as a
    sale line with the variant's code, and the variant's stock lowered on both sides."""
    async with full_stack(redis_url, products=40, styles=True) as stack:
        await stack.start_worker()
        await full_resync(stack)
        style = clothing(await cr_styles(stack))[0]
        chosen = next(v for v in [await variant(stack, i) for i in style["variant_ids"]] if v["web_active"])
        await stack.cr("PUT", f"/inventory/W-1/{chosen['sku']}", json={"on_hand": 30})

        async def stocked() -> bool:
            return (await default_quantity(stack, chosen["sku"])) == 30

        await wait_for(stocked, within=20)
        order = await place_order(stack, chosen["sku"], quantity=2, price=chosen["price"])
        rows = order["items"]
        parent_row = next(r for r in rows if r["product_type"] == "configurable")
        assert parent_row["sku"] == chosen["sku"]
        assert any(r.get("parent_item_id") == parent_row["item_id"] for r in rows)
        await stack.magento("POST", f"order/{order['entity_id']}/invoice", store="default", json={"capture": True})
        await stack.magento("POST", f"order/{order['entity_id']}/ship", store="default", json={})

        async def sale() -> dict[str, Any] | None:
            found = await stack.cr("GET", "/sales", params={"external_ref": f"magento:{order['increment_id']}"})
            return found["items"][0] if found["items"] else None

        imported = await wait_for(sale, within=20)
        assert [(line["sku"], line["quantity"]) for line in imported["lines"]] == [(chosen["sku"], 2)]
        assert (await stack.cr("GET", f"/inventory/W-1/{chosen['sku']}"))["on_hand"] == 28

        async def lowered() -> bool:
            return (await default_quantity(stack, chosen["sku"])) == 28

        await wait_for(lowered, within=20)


async def default_quantity(stack: Stack, sku: str) -> float | None:
    """The SKU's quantity at Magento's default source (the web store's link)."""
    params = {
        "searchCriteria[filterGroups][0][filters][0][field]": "sku",
        "searchCriteria[filterGroups][0][filters][0][value]": sku,
    }
    items = (await stack.magento("GET", "inventory/source-items", params=params))["items"]
    return next((i["quantity"] for i in items if i["source_code"] == "default"), None)


async def place_order(stack: Stack, sku: str, *, quantity: int, price: float) -> dict[str, Any]:
    item = {"sku": sku, "qty_ordered": quantity, "price": price}
    entity = {
        "customer_email": "style.buyer@example.com",
        "customer_firstname": "Style",
        "customer_lastname": "Buyer",
        "shipping_amount": 5,
        "items": [item],
    }
    created = await stack.magento("POST", "orders", store="default", json={"entity": entity})
    return await stack.magento("GET", f"orders/{created['entity_id']}", store="default")
