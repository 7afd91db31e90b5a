"""What the catalog rules need to know about the Magento instance: attribute sets by name, product attributes
with their input type and options, and the root category of the linked store. Read once per worker and kept
for a few minutes (they change rarely); an unknown option label re-reads its attribute before creating it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from crmcore.remotes import Remote
from crmcore.settings import env_name
from workers.clients.magento import MagentoClient
from workers.errors import MisconfiguredError
from workers.registry import HandlerContext

CACHE_KEY = "catalog.magento_meta"
TTL_S = 300.0


@dataclass
class AttributeInfo:
    code: str
    frontend_input: str
    # label (case-folded) -> option id, for select / multiselect / boolean attributes
    options: dict[str, str] = field(default_factory=dict)
    # What a configurable product's axis needs (Magento's `canUseAttribute`).
    attribute_id: int | None = None
    scope: str | None = None
    is_user_defined: bool = False
    label: str | None = None

    @property
    def is_select(self) -> bool:
        return self.frontend_input in ("select", "multiselect", "boolean")


@dataclass
class MagentoMeta:
    loaded_at: float
    attribute_sets: dict[str, int]
    root_category_id: int
    attributes: dict[str, AttributeInfo | None] = field(default_factory=dict)

    def attribute_set_id(self, name: str) -> int | None:
        return self.attribute_sets.get(name.casefold())


async def meta(ctx: HandlerContext) -> MagentoMeta:
    cached: MagentoMeta | None = ctx.services.caches.get(CACHE_KEY)
    if cached is not None and time.monotonic() - cached.loaded_at < TTL_S:
        return cached
    client = ctx.magento
    sets = {str(s["attribute_set_name"]).casefold(): int(s["attribute_set_id"]) for s in await client.attribute_sets()}
    fresh = MagentoMeta(time.monotonic(), sets, await _root_category(client))
    ctx.services.caches[CACHE_KEY] = fresh
    return fresh


async def _root_category(client: MagentoClient) -> int:
    views = {v["code"]: v for v in await client.store_views()}
    view = views.get(client.store_code)
    if view is None:
        raise MisconfiguredError(
            env_name("magento_store_code"), "not a store view of this Magento", remote=Remote.MAGENTO
        )
    groups = {g["id"]: g for g in await client.store_groups()}
    return int(groups[view["store_group_id"]]["root_category_id"])


async def attribute(ctx: HandlerContext, code: str) -> AttributeInfo | None:
    """The Magento attribute `code`, or None when Magento has no such attribute (then it is never sent)."""
    m = await meta(ctx)
    if code in m.attributes:
        return m.attributes[code]
    m.attributes[code] = info = await _load_attribute(ctx.magento, code)
    return info


async def _load_attribute(client: MagentoClient, code: str) -> AttributeInfo | None:
    from workers.clients.errors import NotFound

    try:
        raw = await client.attribute(code)
    except NotFound:
        return None
    attribute_id = raw.get("attribute_id")
    return AttributeInfo(
        code,
        str(raw.get("frontend_input") or "text"),
        _options(raw.get("options") or []),
        attribute_id=int(attribute_id) if attribute_id not in (None, "") else None,
        scope=str(raw["scope"]) if raw.get("scope") is not None else None,
        is_user_defined=bool(raw.get("is_user_defined")),
        label=str(raw["default_frontend_label"]) if raw.get("default_frontend_label") else None,
    )


def _options(raw: list[dict[str, Any]]) -> dict[str, str]:
    return {str(o["label"]).casefold(): str(o["value"]) for o in raw if str(o.get("value", "")) != ""}


async def option_id(ctx: HandlerContext, info: AttributeInfo, label: str) -> str:
    """The option id of `label`, creating the option in Magento when it is missing."""
    wanted = label.strip().casefold()
    if wanted in info.options:
        return info.options[wanted]
    # Someone may have added it since we read the attribute: read again before creating a duplicate.
    fresh = await _load_attribute(ctx.magento, info.code)
    if fresh is not None:
        info.options = fresh.options
        if wanted in info.options:
            return info.options[wanted]
    new_id = await ctx.magento.add_attribute_option(info.code, label.strip())
    info.options[wanted] = new_id
    return new_id
