"""Price levels end to end: Cloud Retailer levels become Magento customer-group prices (both sandboxes, the
real gateway and workers, real Redis, over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import Stack, full_stack
from tests.test_catalog import catalog_rules, cr_products, full_resync, is_shoes, reset_stats, settled, writes

LEVELS = "A:2,B:3"  # Wholesale and Retailer


async def group_prices(stack: Stack, sku: str) -> dict[tuple[str, int, float], float]:
    rows = await stack.magento("POST", "products/tier-prices-information", json={"skus": [sku]})
    return {(r["customer_group"], r["website_id"], r["quantity"]): r["price"] for r in rows}


async def all_calls(stack: Stack) -> dict[str, int]:
    async with stack.magento_api.get(f"{stack.magento_url}/_sandbox/stats") as resp:
        return (await resp.json())["calls"]


async def synced_product(stack: Stack) -> dict[str, Any]:
    """A product that syncs (its primary attribute set exists in Magento)."""
    return next(p for p in await cr_products(stack) if not is_shoes(p))


async def dead_reasons(stack: Stack) -> list[str]:
    return [e["last_error"] for e in await settled(stack) if e["status"] == "dead"]


@pytest.fixture
async def stack(redis_url: str):
    async with full_stack(redis_url, products=8, price_level_groups=LEVELS) as s:
        await s.start_worker(catalog_rules())
        yield s


async def test_levels_become_group_prices_and_only_mapped_groups_are_touched(stack: Stack) -> None:
    await full_resync(stack)
    seeded = [p for p in await cr_products(stack) if not is_shoes(p) and p["price_levels"]["B"] is not None]
    assert seeded, "the seeded catalog has products with levels"
    for p in seeded:
        got = await group_prices(stack, p["sku"])
        assert got == {
            ("Wholesale", 0, 1): p["price_levels"]["A"],
            ("Retailer", 0, 1): p["price_levels"]["B"],
        }, "A is group 2's price, B group 3's, at quantity 1 for all websites; C is not mapped"

    product = await synced_product(stack)
    sku = product["sku"]
    # Magento-only tier prices: an unmapped group, and a mapped group at another quantity.
    hand = [
        {"price": 1.5, "price_type": "fixed", "website_id": 0, "sku": sku, "customer_group": "General", "quantity": 1},
        {
            "price": 1.0,
            "price_type": "fixed",
            "website_id": 0,
            "sku": sku,
            "customer_group": "Wholesale",
            "quantity": 10,
        },
    ]
    assert await stack.magento("POST", "products/tier-prices", json={"prices": hand}) == []

    level = round(product["price"] * 0.5, 2)
    await stack.cr("PUT", f"/products/{product['id']}", json={"price_levels": {"A": level}})
    await settled(stack)
    assert (await group_prices(stack, sku))[("Wholesale", 0, 1)] == level

    await stack.cr("PUT", f"/products/{product['id']}", json={"price_levels": {"A": level - 1}})
    await settled(stack)
    assert (await group_prices(stack, sku))[("Wholesale", 0, 1)] == level - 1, "a changed level is updated"

    await stack.cr("PUT", f"/products/{product['id']}", json={"price_levels": {"A": None}})
    await settled(stack)
    assert await group_prices(stack, sku) == {
        ("General", 0, 1): 1.5,
        ("Wholesale", 0, 10): 1.0,
    }, "a cleared level removes its group's price; Magento's own tier prices stay"

    await reset_stats(stack)
    await full_resync(stack)
    assert await writes(stack) == {}, "a second sync writes nothing"
    assert not [c for c in await all_calls(stack) if "tier-prices" in c or "customerGroups" in c]


async def test_a_level_above_the_regular_price_is_a_dead_letter(stack: Stack) -> None:
    product = await synced_product(stack)
    await stack.cr("PUT", f"/products/{product['id']}", json={"price_levels": {"B": product["price"] + 1}})
    reasons = await dead_reasons(stack)
    assert len(reasons) == 1, reasons
    assert f"price level B of {product['sku']}" in reasons[0] and "above its regular price" in reasons[0]
    assert await group_prices(stack, product["sku"]) == {}


async def test_a_group_magento_does_not_have_is_a_dead_letter(redis_url: str) -> None:
    async with full_stack(redis_url, products=8, price_level_groups="A:2,C:9") as stack:
        await stack.start_worker(catalog_rules())
        first, second = [p for p in await cr_products(stack) if not is_shoes(p)][:2]
        await stack.cr("PUT", f"/products/{first['id']}", json={"price_levels": {"A": 1, "C": 1}})
        await stack.cr("PUT", f"/products/{second['id']}", json={"price_levels": {"A": 1, "C": None}})
        reasons = await dead_reasons(stack)
        assert len(reasons) == 1, reasons
        assert "customer group 9 (price level C in CRMAGENTO_PRICE_LEVEL_GROUPS) does not exist" in reasons[0]
        _, dead = await stack.admin("GET", "/admin/dead-letters")
        assert [d["entity"] for d in dead["items"]] == [f"cloudretailer:product:{first['id']}"]
        # Without level C, the missing group has no price to write or remove: the product syncs.
        assert await group_prices(stack, second["sku"]) == {("Wholesale", 0, 1): 1}


async def test_without_the_setting_no_group_price_is_read_or_written(redis_url: str) -> None:
    async with full_stack(redis_url, products=8) as stack:
        await stack.start_worker(catalog_rules())
        await full_resync(stack)
        seeded = [p for p in await cr_products(stack) if not is_shoes(p) and p["price_levels"]["A"] is not None]
        assert seeded
        assert not [c for c in await all_calls(stack) if "tier-prices" in c or "customerGroups" in c]
        assert await group_prices(stack, seeded[0]["sku"]) == {}
