"""What the product and style importers both do to a Magento product: attribute values in Magento's form,
the categories a record sits in, the save with its url_key retries, and unlinking categories Cloud Retailer
no longer names."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import structlog

from workers.binder import Binder
from workers.clients.errors import NotFound, PermanentApiError
from workers.errors import PermanentError
from workers.registry import HandlerContext
from workers.sync.catalog import categories, product_mapper
from workers.sync.catalog.fingerprints import Fingerprints
from workers.sync.catalog.magento_meta import attribute, option_id

log = structlog.get_logger(__name__)

URL_KEY_ATTEMPTS = 4
URL_KEY_TAKEN = ("url key", "url_key", "would generate a url that already exists")


class Placed(Protocol):
    """A product or a style: where it sits in Cloud Retailer's category tree."""

    @property
    def department_id(self) -> str | None: ...

    @property
    def category_ids(self) -> Sequence[str]: ...


def category_refs(record: Placed) -> list[str]:
    refs = list(record.category_ids)
    # A product in a category sits in its department too (Magento shows the department's products).
    if record.department_id and record.department_id not in refs:
        refs.insert(0, record.department_id)
    return refs


async def magento_categories(ctx: HandlerContext, record: Placed) -> list[int]:
    return sorted({await categories.magento_id_for(ctx, c) for c in category_refs(record)})


async def shared_attributes(
    ctx: HandlerContext, values: Mapping[str, Any], leave_out: Collection[str] = ()
) -> dict[str, Any]:
    """Attributes both systems have, in Magento's form. One only Cloud Retailer has is not sent (Magento would
    refuse it); one only Magento has is never touched, because it is never in this dict."""
    out: dict[str, Any] = {}
    for code, value in sorted(values.items()):
        if code in product_mapper.OWN_CODES or code in leave_out or value is None:
            continue
        info = await attribute(ctx, code)
        if info is None:
            continue
        if info.frontend_input == "multiselect":
            labels = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
            out[code] = ",".join([await option_id(ctx, info, str(label)) for label in labels])
        elif info.frontend_input == "boolean":
            out[code] = "1" if str(value).strip().lower() in ("1", "true", "yes") else "0"
        elif info.is_select:
            out[code] = await option_id(ctx, info, str(value))
        else:
            out[code] = value
    return out


async def save(ctx: HandlerContext, name: str, payload: dict[str, Any], category_ids: list[int]) -> Any:
    """Save `payload` (its url_key made from `name` and the SKU), retrying with a suffixed url_key while
    Magento says the key is taken by a product made by hand."""
    sku = str(payload["sku"])
    body = dict(payload)
    # category_links only adds (and [] would clear everything): send the wanted ones, unlink the rest after.
    body["extension_attributes"] = {
        **payload["extension_attributes"],
        "category_links": [{"position": 0, "category_id": str(c)} for c in category_ids],
    }
    for attempt in range(URL_KEY_ATTEMPTS):
        if attempt:
            body["custom_attributes"] = [
                {"attribute_code": "url_key", "value": product_mapper.url_key(name, sku, attempt)}
                if a["attribute_code"] == "url_key"
                else a
                for a in body["custom_attributes"]
            ]
        try:
            return await ctx.magento.save_product(body)
        except PermanentApiError as exc:
            if exc.status == 400 and any(t in str(exc).lower() for t in URL_KEY_TAKEN):
                log.info("url_key_taken", sku=sku, attempt=attempt)
                continue
            raise
    raise PermanentError(f"no free url_key for {sku} after {URL_KEY_ATTEMPTS} tries")


async def unlink_old_categories(ctx: HandlerContext, sku: str, saved: Any, wanted: list[int]) -> None:
    links = (saved.extension_attributes or {}).get("category_links") or []
    binder = Binder(ctx.redis)
    for link in links:
        category_id = int(link["category_id"])
        # Only categories that come from Cloud Retailer: a link an admin made to a Magento-only category stays.
        if category_id not in wanted and await binder.cr_id(categories.KIND, category_id) is not None:
            await ctx.magento.unassign_product(category_id, sku)


async def disable(ctx: HandlerContext, kind: str, sku: str) -> str:
    """A record deleted in Cloud Retailer: its Magento product disabled, never deleted (orders point at it).
    Recorded in `kind`'s fingerprints, so the next deletion signal costs no call."""
    fingerprints = Fingerprints(ctx.redis, kind)
    state = {"deleted": True}
    if await fingerprints.unchanged(sku, state):
        return "unchanged"
    try:
        current = await ctx.magento.get_product(sku, store="all")
    except NotFound:
        await fingerprints.remember(sku, state)
        return "absent"
    if current.status != product_mapper.STATUS_DISABLED:
        await ctx.magento.save_product(product_mapper.disabled_payload(sku))
    await fingerprints.remember(sku, state)
    return "disabled"
