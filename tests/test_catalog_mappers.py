"""The catalog mappers and the image plan: pure functions, no I/O."""

from __future__ import annotations

from workers.clients.cloudretailer_models import Category, ImageRef, Product
from workers.clients.magento_models import MediaEntry
from workers.sync.catalog import category_mapper, images, product_mapper
from workers.sync.catalog.categories import synced_state, update_payload
from workers.sync.catalog.fingerprints import fingerprint


def _product(**overrides) -> Product:
    values = {
        "id": "P-1",
        "sku": "TEE-01",
        "name": "Crème Brûlée Tee",
        "description_html": "<p>Soft</p>",
        "price": 19.5,
        "weight": 0.3,
        "web_active": True,
        "attributes": {"color": "Red", "brand": "Acme"},
    }
    values.update(overrides)
    return Product.model_validate(values)


def test_url_key_is_ascii_name_and_sku_and_a_retry_gets_a_stable_suffix() -> None:
    assert product_mapper.url_key("Crème Brûlée Tee", "TEE-01") == "creme-brulee-tee-tee-01"
    first = product_mapper.url_key("Crème Brûlée Tee", "TEE-01", 1)
    assert first.startswith("creme-brulee-tee-tee-01-") and first == product_mapper.url_key(
        "Crème Brûlée Tee", "TEE-01", 1
    )
    assert first != product_mapper.url_key("Crème Brûlée Tee", "TEE-01", 2)
    # Nothing of name or SKU survives the slug: a key from the SKU alone, pinned (a new one would move the URL).
    assert product_mapper.url_key("!!!", "***") == "4f0efe52"


def test_payload_carries_the_rules_and_only_the_attributes_given() -> None:
    payload = product_mapper.product_payload(
        _product(), attribute_set_id=9, website_id=1, attributes={"color": "5", "brand": "Acme"}
    )
    assert payload["sku"] == "TEE-01" and payload["price"] == 19.5 and payload["weight"] == 0.3
    assert payload["status"] == product_mapper.STATUS_ENABLED and payload["attribute_set_id"] == 9
    assert payload["extension_attributes"] == {"website_ids": [1]}
    custom = {a["attribute_code"]: a["value"] for a in payload["custom_attributes"]}
    assert custom == {"description": "<p>Soft</p>", "url_key": "creme-brulee-tee-tee-01", "brand": "Acme", "color": "5"}
    assert "category_links" not in payload["extension_attributes"]  # the importer adds and unlinks them


def test_status_enabled_only_when_web_active_and_not_deleted() -> None:
    assert product_mapper.status(_product(web_active=False)) == product_mapper.STATUS_DISABLED
    assert product_mapper.status(_product(deleted=True)) == product_mapper.STATUS_DISABLED
    assert product_mapper.disabled_payload("X") == {"sku": "X", "status": 2}


def test_category_payloads_both_ways() -> None:
    cr = Category(id="C-3", name="Running", parent_id="D-2", active=False)
    out = category_mapper.magento_category(cr, 41)
    assert out["parent_id"] == 41 and out["name"] == "Running" and out["is_active"] is False
    assert out["custom_attributes"] == [{"attribute_code": "url_key", "value": "running-c-3"}]
    back = category_mapper.cr_category({"id": 77, "name": " Sale ", "is_active": True}, "D-1")
    assert back == {"code": "MAG-77", "name": "Sale", "parent_id": "D-1", "active": True}


def _entry(entry_id: int, file: str, types: list[str] | None = None) -> MediaEntry:
    return MediaEntry(id=entry_id, file=file, types=types or [])


SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def test_image_plan_keeps_unchanged_removes_dropped_and_leaves_hand_added_alone() -> None:
    product = _product(
        images=[ImageRef(id="I1", sha256=SHA_A, primary=True), ImageRef(id="I2", sha256=SHA_C, position=1)]
    )
    entries = [
        _entry(1, f"/c/r/cr_{SHA_A[:16]}.png", ["image", "small_image", "thumbnail"]),  # unchanged
        _entry(2, f"/c/r/cr_{SHA_B[:16]}_1.png"),  # removed in Cloud Retailer
        _entry(3, "/m/y/my-lifestyle-shot.jpg"),  # added by hand in Magento
    ]
    plan = images.plan(product, entries)
    assert [i.id for i in plan.upload] == ["I2"]
    assert plan.delete == [2]
    assert plan.set_roles == []


def test_image_plan_moves_the_roles_to_the_new_primary() -> None:
    product = _product(images=[ImageRef(id="I1", sha256=SHA_A), ImageRef(id="I2", sha256=SHA_B, primary=True)])
    entries = [
        _entry(1, f"/c/r/cr_{SHA_A[:16]}.png", ["image", "small_image", "thumbnail"]),
        _entry(2, f"/c/r/cr_{SHA_B[:16]}.png"),
    ]
    plan = images.plan(product, entries)
    assert plan.upload == [] and plan.delete == []
    assert sorted(plan.set_roles) == [(1, []), (2, images.ROLES)]


def test_image_plan_drops_a_duplicate_upload() -> None:
    product = _product(images=[ImageRef(id="I1", sha256=SHA_A, primary=True)])
    entries = [
        _entry(1, f"/c/r/cr_{SHA_A[:16]}.png", ["image", "small_image", "thumbnail"]),
        _entry(5, f"/c/r/cr_{SHA_A[:16]}_1.png"),
    ]
    assert images.plan(product, entries).delete == [5]


def test_a_new_parent_is_a_change_though_the_update_never_sends_one() -> None:
    cr = Category(id="C-3", name="Running", parent_id="D-2")
    assert "parent_id" not in update_payload(cr)  # Magento ignores it there; only the move changes a parent
    assert fingerprint(synced_state(cr, 5)) == fingerprint(synced_state(cr, 5))
    assert fingerprint(synced_state(cr, 5)) != fingerprint(synced_state(cr, 6))
