"""The rules tying variants (products with a style_id) to their style, and the style's change signal when
its variant set or a variant's axis value changes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox import catalog
from sandbox.cloudretailer.errors import ApiError
from sandbox.cloudretailer.keys import emit, state
from sandbox.cloudretailer.records import Product, Style
from sandbox.cloudretailer.state import State

MAX_AXES = 3


def axis_values(product: Product, axes: list[str]) -> tuple[Any, ...]:
    return tuple(product.attributes.get(axis) for axis in axes)


def check_axes(axes: list[str]) -> None:
    """1 to 3 select attributes Cloud Retailer knows, each once (the length is the body model's rule)."""
    for n, code in enumerate(axes):
        if not catalog.SHARED_ATTRIBUTES.get(code):
            raise ApiError(422, f"axes[{n}]: {code!r} is not a select attribute", field=f"axes[{n}]")
        if code in axes[:n]:
            raise ApiError(422, f"axes[{n}]: {code!r} is listed twice", field=f"axes[{n}]")


def check_variant(st: State, product: Product, sent: set[str]) -> None:
    """A product naming a live style has a value for each axis, and a combination no other variant has.

    A variant of a style deleted later keeps its style_id and can still be changed; naming a missing or
    deleted style is refused only when style_id is being set."""
    if product.style_id is None:
        return
    style = st.styles.get(product.style_id)
    if style is None or style.deleted:
        if "style_id" in sent:
            why = "does not exist" if style is None else "is deleted"
            raise ApiError(422, f"style_id: style {product.style_id!r} {why}", field="style_id")
        return
    for axis in style.axes:
        if product.attributes.get(axis) is None:
            field = f"attributes.{axis}"
            raise ApiError(422, f"{field}: a variant of {style.code} needs a value for its axis", field=field)
    mine = axis_values(product, style.axes)
    for other in st.variants(style.id):
        if other.id != product.id and axis_values(other, style.axes) == mine:
            message = f"attributes: variant {other.sku} of {style.code} has the same {'/'.join(style.axes)}"
            raise ApiError(422, message, field="attributes")


def check_new_axes(st: State, style: Style, axes: list[str]) -> None:
    """A style's axes may change only if its current variants still have a value and a unique combination."""
    seen: dict[tuple[Any, ...], str] = {}
    for variant in st.variants(style.id):
        combination = axis_values(variant, axes)
        if None in combination:
            missing = axes[combination.index(None)]
            raise ApiError(422, f"axes: variant {variant.sku} has no {missing}", field="axes")
        if combination in seen:
            raise ApiError(422, f"axes: variants {seen[combination]} and {variant.sku} would be the same", field="axes")
        seen[combination] = variant.sku


def style_event(style: Style) -> dict[str, Any]:
    return {"style_id": style.id, "code": style.code}


def variants_changed(request: web.Request, *style_ids: str | None) -> None:
    """Touch and signal each live style whose variants changed (a deleted style gets no further events)."""
    st = state(request)
    for style_id in dict.fromkeys(style_ids):
        style = st.styles.get(style_id) if style_id else None
        if style is not None and not style.deleted:
            st.styles.touch(style)
            emit(request, "style.updated", style_event(style))
