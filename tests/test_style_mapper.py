"""The pure part of the styles rule: which styles Magento can build, and the parent it gets."""

from __future__ import annotations

from typing import Any

from workers.clients.cloudretailer_models import Product, Style
from workers.sync.catalog import style_mapper
from workers.sync.catalog.magento_meta import AttributeInfo


def _style(**overrides: Any) -> Style:
    data: dict[str, Any] = {
        "id": "ST-1",
        "code": "STY-000001",
        "name": "Classic Tee",
        "description_html": "<p>Soft</p>",
        "axes": ["color", "size"],
        "attributes": {"brand": "Contoso"},
        "attribute_sets": [{"name": "Clothing", "primary": True}],
    }
    return Style.model_validate({**data, **overrides})


def _variant(sku: str, *, web_active: bool = True, deleted: bool = False, **attributes: str) -> Product:
    return Product.model_validate(
        {"id": f"P-{sku}", "sku": sku, "name": sku, "price": 10, "web_active": web_active, "deleted": deleted,
         "attributes": attributes, "style_id": "ST-1"}
    )  # fmt: skip


def _axis(**overrides: Any) -> AttributeInfo:
    return AttributeInfo(**{"code": "color", "frontend_input": "select", "scope": "global", "is_user_defined": True,
                            "attribute_id": 93, **overrides})  # fmt: skip


def test_a_variant_without_an_axis_value_or_two_alike_are_named() -> None:
    style = _style()
    fine = [_variant("A", color="Red", size="S"), _variant("B", color="Red", size="M")]
    assert style_mapper.variant_problem(style, fine) is None
    missing = [*fine, _variant("C", color="Blue")]
    assert style_mapper.variant_problem(style, missing) == "variant C of style STY-000001 has no value for axis 'size'"
    blank = [*fine, _variant("D", color="Blue", size=" ")]
    assert "D" in (style_mapper.variant_problem(style, blank) or "")
    # Magento compares option labels without case: "red"/"Red" would be one option, so one combination.
    alike = [*fine, _variant("E", color="red", size="s")]
    assert style_mapper.variant_problem(style, alike) == (
        "variants A and E of style STY-000001 have the same color=red, size=s"
    )


def test_only_a_global_user_defined_select_can_be_an_axis() -> None:
    assert style_mapper.axis_problem("color", _axis()) is None
    assert "does not exist" in (style_mapper.axis_problem("fit", None) or "")
    assert "must be global" in (style_mapper.axis_problem("material", _axis(scope="store")) or "")
    assert "must be a select" in (style_mapper.axis_problem("brand", _axis(frontend_input="text")) or "")
    assert "must be a select" in (style_mapper.axis_problem("tags", _axis(frontend_input="multiselect")) or "")
    assert "user-defined" in (style_mapper.axis_problem("status", _axis(is_user_defined=False)) or "")


def test_the_parent_is_enabled_while_one_child_is_for_the_web() -> None:
    style = _style()
    on, off = _variant("A", color="Red", size="S"), _variant("B", web_active=False, color="Red", size="M")
    gone = _variant("C", deleted=True, color="Red", size="L")
    assert style_mapper.enabled(style, [on, off])
    assert not style_mapper.enabled(style, [off, gone])
    assert not style_mapper.enabled(_style(deleted=True), [on])
    assert [v.sku for v in style_mapper.live_variants([gone, off, on])] == ["A", "B"]


def test_the_parent_payload_is_a_visible_configurable_product_without_a_price() -> None:
    payload = style_mapper.parent_payload(
        _style(), attribute_set_id=10, website_id=1, attributes={"brand": "Contoso"}, is_enabled=False
    )
    assert payload["type_id"] == "configurable" and payload["sku"] == "STY-000001"
    assert payload["visibility"] == 4 and payload["status"] == 2 and "price" not in payload
    custom = {a["attribute_code"]: a["value"] for a in payload["custom_attributes"]}
    assert custom == {"description": "<p>Soft</p>", "url_key": "classic-tee-sty-000001", "brand": "Contoso"}
    assert style_mapper.option_label(_axis(label=None, code="shoe_size")) == "Shoe Size"
