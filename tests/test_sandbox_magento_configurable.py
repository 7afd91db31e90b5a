"""Configurable products in the sandbox Magento over real HTTP, every answer checked against Adobe's 2.4.9
schema: the option and children routes, the product save's configurable extension attributes, each of
Magento's refusals with its message (docs/magento-api-notes.md item 16), and an order for a variant as the
two rows checkout makes, mapped once by the orders mapper."""
# ruff: noqa: F811  (the fixtures imported from test_sandbox_magento are the tests' parameters)

from __future__ import annotations

from typing import Any

from sandbox.magento.state import MagentoState
from tests.test_sandbox_magento import (  # noqa: F401  (api, receiver, start and swagger are fixtures)
    Api,
    Start,
    api,
    receiver,
    sc,
    simple,
    start,
    swagger,
)
from workers.sync.orders.mapper import map_order

OPTIONS = "/V1/configurable-products/{sku}/options"
ALL_OPTIONS = "/V1/configurable-products/{sku}/options/all"
OPTION = "/V1/configurable-products/{sku}/options/{id}"
CHILD = "/V1/configurable-products/{sku}/child"
CHILDREN = "/V1/configurable-products/{sku}/children"
UNLINK = "/V1/configurable-products/{sku}/children/{childSku}"
PRODUCT = "/V1/products/{sku}"


def attribute_id(state: MagentoState, code: str) -> int:
    return state.attributes[code].id


def value(state: MagentoState, code: str, label: str) -> int:
    return next(o.id for o in state.attributes[code].options if o.label == label)


def option(state: MagentoState, code: str, *labels: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attribute_id": str(attribute_id(state, code)),
        "label": code.title(),
        "position": 0,
        "values": [{"value_index": value(state, code, label)} for label in labels],
    }
    body.update(extra)
    return {"option": body}


async def parent(api: Api, sku: str = "TEE") -> dict[str, Any]:
    body = {"product": {"sku": sku, "name": "Tee", "attribute_set_id": 4, "type_id": "configurable"}}
    return await api.post("/V1/products", store="all", body=body)


async def child(api: Api, sku: str, color: str | None, size: str | None, **extra: Any) -> dict[str, Any]:
    custom = [
        {"attribute_code": code, "value": str(value(api.state, code, label))}
        for code, label in (("color", color), ("size", size))
        if label is not None
    ]
    return await api.post(
        "/V1/products", store="all", body=simple(sku, f"Tee {sku}", visibility=1, custom_attributes=custom, **extra)
    )


async def refused(api: Api, method: str, template: str, status: int = 400, **kw: Any) -> dict[str, Any]:
    answer = await api.call(method, template, status=status, **kw)
    assert set(answer) <= {"message", "parameters", "errors"}, answer
    return answer


async def tee_with_axes(api: Api) -> tuple[dict[str, Any], int, int]:
    made = await parent(api)
    color = await api.post(OPTIONS, sku="TEE", body=option(api.state, "color", "Black", "White"))
    size = await api.post(OPTIONS, sku="TEE", body=option(api.state, "size", "S", "M", position=1))
    return made, color, size


# --- the seeded attributes ------------------------------------------------------------------------------------


async def test_color_and_size_can_be_axes_material_and_brand_cannot(api: Api) -> None:
    seen = {}
    for code in ("color", "size", "material", "brand"):
        attribute = await api.get("/V1/products/attributes/{attributeCode}", attributeCode=code)
        seen[code] = (attribute["frontend_input"], attribute["scope"], attribute["is_user_defined"])
    assert seen == {
        "color": ("select", "global", True),
        "size": ("select", "global", True),
        "material": ("select", "store", True),
        "brand": ("text", "global", True),
    }


# --- the happy path -----------------------------------------------------------------------------------------


async def test_a_parent_with_two_options_and_three_children(api: Api) -> None:
    made, color_id, size_id = await tee_with_axes(api)
    assert made["type_id"] == "configurable" and "price" not in made  # a configurable needs no price of its own
    assert isinstance(color_id, int) and isinstance(size_id, int) and color_id != size_id
    # Magento keeps no option values: until a child is linked, an option lists none
    listed = await api.get(ALL_OPTIONS, sku="TEE")
    assert [(o["id"], o["label"], o["values"]) for o in listed] == [(color_id, "Color", []), (size_id, "Size", [])]

    kids = [
        await child(api, "TEE-BLACK-S", "Black", "S"),
        await child(api, "TEE-WHITE-M", "White", "M"),
        await child(api, "TEE-BLACK-M", "Black", "M"),
    ]
    for kid in kids:
        assert await api.post(CHILD, sku="TEE", body={"childSku": kid["sku"]}) is True

    product = await api.get(PRODUCT, sku="TEE")
    extension = product["extension_attributes"]
    assert extension["configurable_product_links"] == [k["id"] for k in kids]
    state = api.state
    assert [(o["attribute_id"], o["values"]) for o in extension["configurable_product_options"]] == [
        (str(attribute_id(state, "color")), [{"value_index": value(state, "color", c)} for c in ("Black", "White")]),
        (str(attribute_id(state, "size")), [{"value_index": value(state, "size", s)} for s in ("S", "M")]),
    ]
    assert extension["configurable_product_options"][0]["product_id"] == product["id"]
    assert await api.get(ALL_OPTIONS, sku="TEE") == extension["configurable_product_options"]
    assert await api.get(OPTION, sku="TEE", id=size_id) == extension["configurable_product_options"][1]
    assert [p["sku"] for p in await api.get(CHILDREN, sku="TEE")] == [k["sku"] for k in kids]

    assert (
        await api.put(OPTION, sku="TEE", id=size_id, body={"option": {"label": "Tee size", "position": 2}}) == size_id
    )
    assert (await api.get(OPTION, sku="TEE", id=size_id))["label"] == "Tee size"
    # lists are less detailed: the load plugin that adds the configurable parts runs on the single GET only
    page = await api.get("/V1/products", params=sc(("sku", "TEE")))
    assert "configurable_product_links" not in page["items"][0]["extension_attributes"]


async def test_a_second_option_for_the_same_attribute_updates_the_first(api: Api) -> None:
    _, color_id, _ = await tee_with_axes(api)
    again = await api.post(OPTIONS, sku="TEE", body=option(api.state, "color", "Red", label="Colour"))
    assert again == color_id
    options = await api.get(ALL_OPTIONS, sku="TEE")
    assert [o["label"] for o in options] == ["Colour", "Size"]


async def test_an_option_turns_a_simple_product_into_a_configurable_one(api: Api) -> None:
    await api.post("/V1/products", store="all", body=simple("WAS-SIMPLE"))
    option_id = await api.post(OPTIONS, sku="WAS-SIMPLE", body=option(api.state, "color", "Black"))
    assert (await api.get(PRODUCT, sku="WAS-SIMPLE"))["type_id"] == "configurable"
    assert [o["id"] for o in await api.get(ALL_OPTIONS, sku="WAS-SIMPLE")] == [option_id]


# --- options: refusals --------------------------------------------------------------------------------------------


async def test_an_option_needs_a_global_user_defined_select_and_its_own_values(api: Api) -> None:
    await parent(api)
    state = api.state
    for code in ("material", "brand", "visibility"):  # store scope; text; a system attribute
        body = {
            "option": {"attribute_id": str(attribute_id(state, code)), "label": "X", "values": [{"value_index": 1}]}
        }
        assert await refused(api, "POST", OPTIONS, sku="TEE", body=body) == {
            "message": "Provided attribute can not be used with configurable product."
        }
    unknown = {"option": {"attribute_id": "9999", "label": "X", "values": [{"value_index": 1}]}}
    assert await refused(api, "POST", OPTIONS, sku="TEE", body=unknown) == {
        "message": "An error occurred while saving the option. Please try to save again."
    }
    size_value = value(state, "size", "S")
    wrong = option(state, "color", "Black")
    wrong["option"]["values"].append({"value_index": size_value})  # an option id of another attribute
    assert await refused(api, "POST", OPTIONS, sku="TEE", body=wrong) == {
        "message": 'Invalid value of "%value" provided for the %fieldName field.',
        "parameters": {"fieldName": "value_index", "value": size_value},
    }
    assert await api.get(ALL_OPTIONS, sku="TEE") == []


async def test_a_new_option_names_every_missing_part(api: Api) -> None:
    await parent(api)
    no_label = option(api.state, "color", "Black", label="")
    assert await refused(api, "POST", OPTIONS, sku="TEE", body=no_label) == {
        "message": "Option label is not specified."
    }
    assert await refused(api, "POST", OPTIONS, sku="TEE", body={"option": {"values": [{}]}}) == {
        "message": "One or more input exceptions have occurred.",
        "errors": [
            {"message": "Option attribute ID is not specified.", "parameters": []},
            {"message": "Option label is not specified.", "parameters": []},
            {"message": "Value index is not specified for an option.", "parameters": []},
        ],
    }
    assert await refused(api, "POST", OPTIONS, sku="NOPE", status=404, body=option(api.state, "color", "Black")) == {
        "message": "The product that was requested doesn't exist. Verify the product and try again."
    }
    bundle = {"product": {"sku": "BUNDLE", "name": "Bundle", "attribute_set_id": 4, "type_id": "bundle"}}
    await api.post("/V1/products", store="all", body=bundle)
    masked = await refused(api, "POST", OPTIONS, sku="BUNDLE", status=500, body=option(api.state, "color", "Black"))
    assert masked["message"].startswith("Internal Error. Details are available in Magento log file. Report ID: ")


async def test_option_routes_answer_for_configurable_products_only(api: Api) -> None:
    await api.post("/V1/products", store="all", body=simple("PLAIN"))
    only = {"message": 'This is implemented for the "%1" configurable product only.', "parameters": ["PLAIN"]}
    assert await refused(api, "GET", ALL_OPTIONS, sku="PLAIN") == only
    assert await refused(api, "GET", OPTION, sku="PLAIN", id=1) == only
    assert await refused(api, "DELETE", OPTION, sku="PLAIN", id=1) == only
    await parent(api)
    assert await refused(api, "GET", OPTION, sku="TEE", id=999, status=404) == {
        "message": 'The "%1" entity that was requested doesn\'t exist. Verify the entity and try again.',
        "parameters": [999],
    }
    assert await refused(api, "PUT", OPTION, sku="TEE", id=999, status=404, body={"option": {"label": "X"}}) == {
        "message": 'Option with id "%1" not found',
        "parameters": [999],
    }
    assert await refused(api, "DELETE", OPTION, sku="TEE", id=999, status=404) == {
        "message": "The option that was requested doesn't exist. Verify the entity and try again."
    }
    assert await api.get(CHILDREN, sku="PLAIN") == []  # not an error: a simple product has no children
    await refused(api, "GET", CHILDREN, sku="NOPE", status=404)


# --- children: refusals, unlinking ----------------------------------------------------------------------------------


async def test_a_child_is_refused_for_each_of_magentos_reasons(api: Api) -> None:
    await parent(api)
    black_s = await child(api, "TEE-BLACK-S", "Black", "S")
    no_options = {"message": "The parent product doesn't have configurable product options."}
    assert await refused(api, "POST", CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S"}) == no_options
    await api.post("/V1/products", store="all", body=simple("PLAIN"))
    assert await refused(api, "POST", CHILD, sku="PLAIN", body={"childSku": "TEE-BLACK-S"}) == no_options

    await api.post(OPTIONS, sku="TEE", body=option(api.state, "color", "Black", "White"))
    await api.post(OPTIONS, sku="TEE", body=option(api.state, "size", "S", "M"))
    await refused(api, "POST", CHILD, sku="TEE", status=404, body={"childSku": "NOPE"})
    await child(api, "TEE-BLACK", "Black", None)
    assert await refused(api, "POST", CHILD, sku="TEE", body={"childSku": "TEE-BLACK"}) == {
        "message": 'The child product doesn\'t have the "%1" attribute value. Verify the value and try again.',
        "parameters": ["size"],
    }
    assert await api.post(CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S"}) is True
    assert await refused(api, "POST", CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S"}) == {
        "message": "The product is already attached."
    }
    twin = await child(api, "TEE-BLACK-S-2", "Black", "S")
    assert await refused(api, "POST", CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S-2"}) == {
        "message": 'Products "%1" and "%2" have the same set of attribute values.',
        "parameters": [twin["id"], black_s["id"]],
    }
    grouped = {"sku": "TEE-SET", "name": "Set", "type_id": "grouped", "attribute_set_id": 4}
    grouped["custom_attributes"] = [
        {"attribute_code": "color", "value": str(value(api.state, "color", "White"))},
        {"attribute_code": "size", "value": str(value(api.state, "size", "M"))},
    ]
    await api.post("/V1/products", store="all", body={"product": grouped})
    assert await refused(api, "POST", CHILD, sku="TEE", body={"childSku": "TEE-SET"}) == {
        "message": 'Invalid value of "%value" provided for the %fieldName field.',
        "parameters": {"fieldName": "childSku", "value": "TEE-SET"},
    }
    await child(api, "TEE-WHITE-M", "White", "M", type_id="virtual")  # a virtual variant is fine
    assert await api.post(CHILD, sku="TEE", body={"childSku": "TEE-WHITE-M"}) is True
    assert [p["sku"] for p in await api.get(CHILDREN, sku="TEE")] == ["TEE-BLACK-S", "TEE-WHITE-M"]


async def test_unlinking_a_child_and_deleting_an_option(api: Api) -> None:
    _, color_id, size_id = await tee_with_axes(api)
    for sku, color, size in (("TEE-BLACK-S", "Black", "S"), ("TEE-WHITE-M", "White", "M")):
        await child(api, sku, color, size)
        await api.post(CHILD, sku="TEE", body={"childSku": sku})

    assert await api.delete(UNLINK, sku="TEE", childSku="TEE-BLACK-S") is True
    assert [p["sku"] for p in await api.get(CHILDREN, sku="TEE")] == ["TEE-WHITE-M"]
    gone = {"message": "The option that was requested doesn't exist. Verify the entity and try again."}
    assert await refused(api, "DELETE", UNLINK, sku="TEE", childSku="TEE-BLACK-S", status=404) == gone
    await api.post("/V1/products", store="all", body=simple("PLAIN"))
    assert await refused(api, "DELETE", UNLINK, sku="PLAIN", childSku="TEE-WHITE-M") == {
        "message": 'The product with the "%1" SKU isn\'t a configurable product.',
        "parameters": ["PLAIN"],
    }

    # Magento drops the super attribute's links with it: every child is unlinked, the other option stays
    assert await api.delete(OPTION, sku="TEE", id=size_id) is True
    extension = (await api.get(PRODUCT, sku="TEE"))["extension_attributes"]
    assert extension["configurable_product_links"] == []
    assert [o["id"] for o in extension["configurable_product_options"]] == [color_id]
    assert await api.get(CHILDREN, sku="TEE") == []
    assert await api.post(CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S"}) is True  # relinked on color alone


async def test_deleting_a_child_product_takes_it_out_of_its_parent(api: Api) -> None:
    await tee_with_axes(api)
    await child(api, "TEE-BLACK-S", "Black", "S")
    kept = await child(api, "TEE-WHITE-M", "White", "M")
    for sku in ("TEE-BLACK-S", "TEE-WHITE-M"):
        await api.post(CHILD, sku="TEE", body={"childSku": sku})
    assert await api.delete(PRODUCT, store="all", sku="TEE-BLACK-S") is True
    assert (await api.get(PRODUCT, sku="TEE"))["extension_attributes"]["configurable_product_links"] == [kept["id"]]


# --- the product save's configurable extension attributes --------------------------------------------------------


async def test_a_product_save_sets_options_and_links_under_the_same_rules(api: Api) -> None:
    await parent(api)
    state = api.state
    black_s = await child(api, "TEE-BLACK-S", "Black", "S")
    white_m = await child(api, "TEE-WHITE-M", "White", "M")
    twin = await child(api, "TEE-BLACK-S-2", "Black", "S")
    black = await child(api, "TEE-BLACK", "Black", None)
    axes = [option(state, "color", "Black")["option"], option(state, "size", "S")["option"]]

    def save(options: list[dict[str, Any]] | None, links: list[int] | None) -> dict[str, Any]:
        extension: dict[str, Any] = {}
        if options is not None:
            extension["configurable_product_options"] = options
        if links is not None:
            extension["configurable_product_links"] = links
        return {"product": {"sku": "TEE", "type_id": "configurable", "extension_attributes": extension}}

    assert await refused(api, "PUT", PRODUCT, store="all", sku="TEE", body=save(axes, [black_s["id"], twin["id"]])) == {
        "message": 'Products "%1" and "%2" have the same set of attribute values.',
        "parameters": [twin["id"], black_s["id"]],
    }
    assert await refused(api, "PUT", PRODUCT, store="all", sku="TEE", body=save(axes, [black["id"]])) == {
        "message": 'Product with id "%1" does not contain required attribute "%2".',
        "parameters": [black["id"], "size"],
    }
    unusable = [{**axes[0], "attribute_id": str(attribute_id(state, "material"))}]
    assert await refused(api, "PUT", PRODUCT, store="all", sku="TEE", body=save(unusable, None)) == {
        "message": "Provided attribute can not be used with configurable product."
    }
    missing = [{**axes[0], "attribute_id": "9999"}]
    assert await refused(api, "PUT", PRODUCT, store="all", sku="TEE", status=404, body=save(missing, None)) == {
        "message": 'The attribute with a "%1" attributeCode doesn\'t exist. Verify the attribute and try again.',
        "parameters": ["9999"],
    }
    # links sent without their options are compared on no attribute at all: any two are "the same set"
    alone = await refused(api, "PUT", PRODUCT, store="all", sku="TEE", body=save(None, [black_s["id"], white_m["id"]]))
    assert alone["message"] == 'Products "%1" and "%2" have the same set of attribute values.'
    assert (await api.get(PRODUCT, sku="TEE"))["extension_attributes"]["configurable_product_links"] == []

    saved = await api.put(PRODUCT, store="all", sku="TEE", body=save(axes, [black_s["id"], white_m["id"]]))
    extension = saved["extension_attributes"]
    assert extension["configurable_product_links"] == [black_s["id"], white_m["id"]]
    assert [o["label"] for o in extension["configurable_product_options"]] == ["Color", "Size"]
    color_id = extension["configurable_product_options"][0]["id"]
    # options sent again keep their ids; one left out is dropped and, with no links sent, the children go too
    again = await api.put(PRODUCT, store="all", sku="TEE", body=save(axes[:1], None))
    assert [o["id"] for o in again["extension_attributes"]["configurable_product_options"]] == [color_id]
    assert again["extension_attributes"]["configurable_product_links"] == []
    # a simple product ignores them
    plain = await api.post("/V1/products", store="all", body=simple("PLAIN", extension_attributes={
        "configurable_product_options": axes, "configurable_product_links": [black_s["id"]]}))  # fmt: skip
    assert "configurable_product_links" not in plain["extension_attributes"]


# --- orders ---------------------------------------------------------------------------------------------------------


async def _ordered_variant(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    made, _, _ = await tee_with_axes(api)
    variant = await child(api, "TEE-BLACK-S", "Black", "S", extension_attributes={"stock_item": {"qty": 10}})
    await api.post(CHILD, sku="TEE", body={"childSku": "TEE-BLACK-S"})
    item = {"sku": "TEE-BLACK-S", "qty_ordered": 2, "price": 30, "tax_amount": 4.95, "discount_amount": 5}
    order = await api.post("/V1/orders", body={"entity": {"customer_email": "g@example.com", "items": [item]}})
    return made, variant, order


def _check_rows(order: dict[str, Any], made: dict[str, Any], variant: dict[str, Any]) -> None:
    top, below = order["items"]
    assert (top["product_type"], top["sku"], top["product_id"], top["name"]) == (
        "configurable", "TEE-BLACK-S", made["id"], "Tee"
    )  # fmt: skip
    assert (top["price"], top["row_total"], top["tax_amount"], top["discount_amount"]) == (30, 60, 4.95, 5)
    assert top.get("parent_item_id") is None
    assert (below["product_type"], below["sku"], below["product_id"], below["name"]) == (
        "simple", "TEE-BLACK-S", variant["id"], "Tee TEE-BLACK-S"
    )  # fmt: skip
    assert below["parent_item_id"] == top["item_id"] and below["parent_item"]["item_id"] == top["item_id"]
    assert (below["price"], below["row_total"], below["tax_amount"], below["discount_amount"]) == (0, 0, 0, 0)
    assert order["subtotal"] == 60 and order["grand_total"] == 59.95


async def test_an_order_for_a_variant_is_two_rows_and_the_mapper_counts_it_once(api: Api) -> None:
    made, variant, order = await _ordered_variant(api)
    read = await api.get("/V1/orders/{id}", id=order["entity_id"])
    _check_rows(read, made, variant)
    # MSI: one reservation, on the variant's SKU (both rows carry it; only the child row moves stock)
    assert api.state.reserved_qty("TEE-BLACK-S") == -2 and api.state.reserved_qty("TEE") == 0
    assert len(api.state.reservations) == 1
    assert (
        await api.get("/V1/inventory/get-product-salable-quantity/{sku}/{stockId}", sku="TEE-BLACK-S", stockId=1) == 8
    )

    await api.post("/V1/order/{orderId}/ship", orderId=order["entity_id"], body={})
    source_items = await api.get("/V1/inventory/source-items", params=sc(("sku", "TEE-BLACK-S")))
    assert [i["quantity"] for i in source_items["items"]] == [8]  # the shipment left the variant's source item

    sale = map_order(read, store_id="W-1", tender="Web Orders", customer_id=None)
    assert [(line.sku, line.quantity, line.unit_price, line.discount, line.tax) for line in sale.lines] == [
        ("TEE-BLACK-S", 2.0, 30.0, 5.0, 4.95)
    ]
    assert sale.total == 59.95


async def test_without_msi_the_variants_stock_item_is_decremented(start: Start) -> None:
    api = await start(msi=False)
    made, variant, order = await _ordered_variant(api)
    _check_rows(order, made, variant)
    assert (await api.get("/V1/stockItems/{productSku}", productSku="TEE-BLACK-S"))["qty"] == 8
