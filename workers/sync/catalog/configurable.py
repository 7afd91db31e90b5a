"""A configurable product's options and children in Magento, brought in line with what its style wants.

Magento's REST API builds a configurable product one piece at a time (options, then one child per call), so
this reads what the parent has and changes only the difference, in the order Magento accepts: children that
must go are unlinked first, options follow (a deleted option unlinks every child in Magento, so the
children are read again after one), new children are linked last, once their values are options.
Children Magento has that Cloud Retailer never synced (linked by hand) are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.binder import Binder
from workers.clients.magento_models import ConfigurableOption
from workers.registry import HandlerContext
from workers.sync.catalog.style_mapper import WantedOption

PRODUCT_KIND = "product"


async def apply(
    ctx: HandlerContext, sku: str, options: Sequence[WantedOption], children: Sequence[str]
) -> dict[str, int]:
    wanted = set(children)
    counts = {"unlinked": 0, "linked": 0, "options": 0}
    linked = await _ours(ctx, sku)
    for child in sorted(linked - wanted):
        await ctx.magento.unlink_child(sku, child)
        counts["unlinked"] += 1
    linked &= wanted
    changed, removed = await _apply_options(ctx, sku, options)
    counts["options"] = changed
    if removed:
        linked = await _ours(ctx, sku)
    for child in sorted(wanted - linked):
        await ctx.magento.link_child(sku, child)
        counts["linked"] += 1
    return counts


async def _ours(ctx: HandlerContext, sku: str) -> set[str]:
    binder = Binder(ctx.redis)
    out = set()
    for child in await ctx.magento.configurable_children(sku):
        if await binder.cr_id(PRODUCT_KIND, child.sku) is not None:
            out.add(child.sku)
    return out


async def _apply_options(ctx: HandlerContext, sku: str, options: Sequence[WantedOption]) -> tuple[int, bool]:
    """Returns how many options were written and whether one was deleted."""
    have = {o.attribute_id: o for o in await ctx.magento.configurable_options(sku)}
    wanted = {o.attribute_id: o for o in options}
    changed, removed = 0, False
    for attribute_id, current in sorted(have.items()):
        if attribute_id not in wanted and current.id is not None:
            await ctx.magento.delete_configurable_option(sku, current.id)
            changed, removed = changed + 1, True
    for attribute_id, option in sorted(wanted.items()):
        body = ConfigurableOption(
            id=None, attribute_id=attribute_id, label=option.label, position=option.position, values=list(option.values)
        )
        current = have.get(attribute_id)
        if current is None:
            await ctx.magento.add_configurable_option(sku, body)
        elif _differs(current, option):
            body.id = current.id
            await ctx.magento.update_configurable_option(sku, body)
        else:
            continue
        changed += 1
    return changed, removed


def _differs(current: ConfigurableOption, wanted: WantedOption) -> bool:
    # Not the values: Magento does not keep an option's values, it answers those its linked children use, so
    # they differ from the wanted ones whenever a child is about to be linked or was just unlinked.
    return current.position != wanted.position
