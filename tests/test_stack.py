"""The end-to-end harness itself: both sandboxes deliver signed webhooks to the real gateway, and the
worker's clients reach both sandboxes with the configured credentials."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.support.stack import full_stack
from workers.services import Services


async def test_sandbox_changes_arrive_at_the_gateway_and_clients_reach_both(redis_url: str) -> None:
    async with full_stack(redis_url, products=3) as stack:
        product = (await stack.cr("GET", "/products", params={"limit": 1}))["items"][0]
        await stack.cr("PUT", f"/products/{product['id']}", json={"price": 12.5})

        async def arrived() -> list:
            _, body = await stack.admin("GET", "/admin/events")
            return [e for e in body["items"] if e["type"] == "product.updated"]

        events = await wait_for(arrived)
        assert events[0]["data"]["product_id"] == product["id"]

        services = Services.from_settings(stack.settings)
        try:
            assert (await services.cr.get_product(product["id"])).price == 12.5
            assert any(v["code"] == "default" for v in await services.magento.store_views())
        finally:
            await services.close()
