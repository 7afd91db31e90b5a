"""The pure parts of the customer sync: email check, mapping both ways, region ids, the address merge."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.magento.countries import country_info
from sandbox.magento.directory import COUNTRIES
from workers.clients import cloudretailer_models as cr_models
from workers.clients import magento_models as mg_models
from workers.errors import PermanentError
from workers.sync.customers.addresses import merge
from workers.sync.customers.directory import Directory
from workers.sync.customers.emails import email_problem
from workers.sync.customers.mapper import NO_PHONE, buyer, to_cloudretailer, to_magento

# What GET /V1/directory/countries answers (US and CA with region lists, the rest without).
DIRECTORY = Directory.parse([country_info(c) for c in sorted(COUNTRIES)])


def cr_customer(**overrides: Any) -> cr_models.Customer:
    record: dict[str, Any] = {
        "id": "CU-1",
        "email": "ava.smith@example.com",
        "first_name": "Ava",
        "last_name": "Smith",
        "phone": "+1-512-555-0001",
        "addresses": [
            {"line1": "12 Main St", "city": "Austin", "region_code": "TX", "postcode": "78701", "country": "US",
             "default_billing": True, "default_shipping": True},
        ],
    }  # fmt: skip
    record.update(overrides)
    return cr_models.Customer.model_validate(record)


@pytest.mark.parametrize(
    "email",
    ["ava.smith.1@example.com", "o'brien+pos@mail.example.co.uk", "ava@bücher.de", "x@xn--bcher-kva.de", "A_B@ex-1.io"],
)
def test_usable_emails_pass(email: str) -> None:
    assert email_problem(email) is None


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ("ava..smith@example.com", "mailbox name"),
        (".ava@example.com", "mailbox name"),
        ("ava smith@example.com", "mailbox name"),
        ('"ava"@example.com', "mailbox name"),
        ("ava@example", "domain"),
        ("ava@-example.com", "domain"),
        ("ava@example.c", "domain"),
        ("ava@exa_mple.com", "domain"),
        ("ava.example.com", "name@domain"),
        (" ava@example.com", "spaces"),
        ("a" * 65 + "@example.com", "mailbox name"),
        ("a@" + "b" * 250 + ".com", "longer than 254"),
    ],
)
def test_unusable_emails_say_why(email: str, says: str) -> None:
    problem = email_problem(email)
    assert problem is not None and says in problem


def test_cr_customer_maps_to_magento_with_region_ids_and_the_phone_on_each_address() -> None:
    customer = cr_customer(
        addresses=[
            {"line1": "12 Main St", "line2": "Suite 4", "city": "Austin", "region_code": "tx", "postcode": "78701",
             "country": "US", "default_billing": True},
            {"line1": "1 Bay St", "city": "Toronto", "region_code": "Ontario", "postcode": "M5J 2N8", "country": "CA",
             "default_shipping": True},
            {"line1": "Unter den Linden 1", "city": "Berlin", "region_code": "BE", "country": "DE"},
            {"line1": "1 Rue de Rivoli", "city": "Paris", "postcode": "75001", "country": "FR"},
        ]
    )  # fmt: skip
    out = to_magento(customer, DIRECTORY)
    assert {k: out[k] for k in ("email", "firstname", "lastname")} == {
        "email": "ava.smith@example.com",
        "firstname": "Ava",
        "lastname": "Smith",
    }
    texas, ontario, berlin, paris = out["addresses"]
    assert texas == {
        "firstname": "Ava",
        "lastname": "Smith",
        "street": ["12 Main St", "Suite 4"],
        "city": "Austin",
        "country_id": "US",
        "telephone": "+1-512-555-0001",
        "region": {"region": "Texas", "region_code": "TX", "region_id": 57},
        "region_id": 57,
        "postcode": "78701",
        "default_billing": True,
        "default_shipping": False,
    }
    assert ontario["region_id"] == 66 + 8 and ontario["region"]["region_code"] == "ON"  # matched by name
    assert ontario["default_shipping"] is True
    # A country without a region list takes the region as text; none given, none sent.
    assert berlin["region"] == {"region": "BE", "region_code": "BE", "region_id": 0} and "region_id" not in berlin
    assert "region" not in paris and "postcode" not in berlin
    assert "password" not in out and "group_id" not in out


def test_a_customer_without_phone_gets_the_placeholder_and_one_default_of_each_kind() -> None:
    address = {"line1": "1 A St", "city": "Austin", "region_code": "TX", "postcode": "78701", "country": "US"}
    flagged = {**address, "default_billing": True, "default_shipping": True}
    out = to_magento(cr_customer(phone=None, addresses=[flagged, {**flagged, "line1": "2 B St"}]), DIRECTORY)
    assert [a["telephone"] for a in out["addresses"]] == [NO_PHONE, NO_PHONE]
    assert [(a["default_billing"], a["default_shipping"]) for a in out["addresses"]] == [(True, True), (False, False)]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"email": "ava..smith@example.com"}, "Cloud Retailer customer CU-1: invalid email 'ava..smith@example.com'"),
        (
            {"addresses": [{"line1": "1 A St", "city": "Nowhere", "country": "ZZ"}]},
            "Cloud Retailer customer CU-1 address 1: country 'ZZ' is not a country the Magento store knows",
        ),
        (
            {"addresses": [{"line1": "1 A St", "city": "Austin", "region_code": "QQ", "country": "US"}]},
            "region 'QQ' is not a region of US",
        ),
    ],
)
def test_bad_data_fails_the_customer_with_a_clear_reason(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(PermanentError, match=says.replace("(", r"\(")):
        to_magento(cr_customer(**overrides), DIRECTORY)


def magento_customer(**overrides: Any) -> mg_models.Customer:
    record: dict[str, Any] = {
        "id": 7,
        "email": "ben.jones@example.com",
        "firstname": "Ben",
        "lastname": "Jones",
        "website_id": 1,
        "dob": "1990-01-01",
        "addresses": [
            {"id": 3, "firstname": "Ben", "lastname": "Jones", "street": ["9 Elm St", "Floor 2", "Back door"],
             "city": "Albany", "postcode": "12207", "country_id": "US", "telephone": "518-555-0100",
             "region": {"region_code": "NY", "region": "New York", "region_id": 43}, "region_id": 43,
             "default_shipping": True},
            {"id": 4, "firstname": "Ben", "lastname": "Jones", "street": ["Hauptstr. 5"], "city": "Munich",
             "postcode": "80331", "country_id": "DE", "telephone": "+49-89-555",
             "region": {"region_code": None, "region": "Free State of Bavaria", "region_id": 0}, "region_id": 0,
             "default_billing": True},
        ],
    }  # fmt: skip
    record.update(overrides)
    return mg_models.Customer.model_validate(record)


def test_magento_account_maps_to_cloud_retailer_without_anything_magento_only() -> None:
    out = to_cloudretailer(magento_customer())
    assert out == {
        "email": "ben.jones@example.com",
        "first_name": "Ben",
        "last_name": "Jones",
        "phone": "+49-89-555",  # the default billing address's
        "addresses": [
            {"line1": "9 Elm St", "line2": "Floor 2, Back door", "city": "Albany", "region_code": "NY",
             "postcode": "12207", "country": "US", "default_billing": False, "default_shipping": True},
            # Longer than Cloud Retailer's region codes: left out, not cut.
            {"line1": "Hauptstr. 5", "line2": None, "city": "Munich", "region_code": None, "postcode": "80331",
             "country": "DE", "default_billing": True, "default_shipping": False},
        ],
    }  # fmt: skip


def test_the_phone_placeholder_maps_back_to_no_phone_and_bad_emails_fail() -> None:
    account = magento_customer()
    for address in account.addresses:
        address.telephone = NO_PHONE
    assert to_cloudretailer(account)["phone"] is None
    with pytest.raises(PermanentError, match="Magento customer 7: invalid email 'ben@localhost'"):
        to_cloudretailer(magento_customer(email="ben@localhost"))


# --- the address merge ----------------------------------------------------------------------------------------


def stored(address_id: int, wanted: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An address as Magento returns it after saving `wanted`."""
    out = {k: v for k, v in wanted.items() if v is not False}
    return {**out, "id": address_id, "customer_id": 7, **extra}


WANTED = to_magento(cr_customer(), DIRECTORY)["addresses"]
HAND_ADDED = {
    "id": 9, "customer_id": 7, "firstname": "Ava", "lastname": "Smith", "street": ["5 Oak Ave"], "city": "Dallas",
    "postcode": "75201", "country_id": "US", "telephone": "214-555-0199",
    "region": {"region_code": "TX", "region": "Texas", "region_id": 57}, "region_id": 57, "default_billing": True,
}  # fmt: skip


def test_a_new_account_gets_every_address() -> None:
    merged = merge([], set(), WANTED)
    assert merged.changed and merged.addresses == WANTED and merged.kept == frozenset()


def test_an_account_that_holds_the_addresses_already_is_unchanged() -> None:
    current = [stored(5, WANTED[0])]
    merged = merge(current, {5}, WANTED)
    assert not merged.changed
    assert [a["id"] for a in merged.addresses] == [5]


def test_addresses_added_in_magento_survive_but_lose_the_default_cloud_retailer_names() -> None:
    merged = merge([stored(5, WANTED[0]), HAND_ADDED], {5}, WANTED)
    assert merged.changed and merged.kept == frozenset({9})
    ours, theirs = merged.addresses
    assert ours["id"] == 5 and ours["default_billing"] is True
    assert theirs["id"] == 9 and theirs["street"] == ["5 Oak Ave"] and theirs["default_billing"] is False


def test_a_changed_cloud_retailer_address_replaces_the_one_it_wrote() -> None:
    moved = to_magento(
        cr_customer(addresses=[{"line1": "99 New Rd", "city": "Austin", "region_code": "TX", "country": "US"}]),
        DIRECTORY,
    )["addresses"]
    merged = merge([stored(5, WANTED[0]), HAND_ADDED], {5}, moved)
    assert merged.changed
    assert [a.get("id") for a in merged.addresses] == [None, 9]
    assert merged.addresses[0]["street"] == ["99 New Rd"]


def test_same_content_is_reused_without_a_record_of_managed_ids_and_magento_only_fields_stay() -> None:
    current = [stored(5, WANTED[0], company="Acme", vat_id="X1")]
    merged = merge(current, set(), WANTED)
    assert not merged.changed
    assert merged.addresses[0]["company"] == "Acme" and merged.addresses[0]["id"] == 5


def test_a_magento_edit_to_a_managed_address_is_overwritten() -> None:
    edited = stored(5, WANTED[0])
    edited["city"] = "Round Rock"
    merged = merge([edited], {5}, WANTED)
    assert merged.changed and [a.get("id") for a in merged.addresses] == [None]
    assert merged.addresses[0]["city"] == "Austin"


def test_a_new_name_or_phone_updates_the_address_in_place() -> None:
    renamed = to_magento(cr_customer(last_name="Smith-Jones", phone="+1-512-555-9999"), DIRECTORY)["addresses"]
    merged = merge([stored(5, WANTED[0])], set(), renamed)
    assert merged.changed and [a["id"] for a in merged.addresses] == [5]
    assert (merged.addresses[0]["lastname"], merged.addresses[0]["telephone"]) == ("Smith-Jones", "+1-512-555-9999")


def test_an_orders_buyer_is_sent_with_both_names_cloud_retailer_requires() -> None:
    assert buyer("nia@example.com", " Nia ", "Buyer") == {
        "email": "nia@example.com",
        "first_name": "Nia",
        "last_name": "Buyer",
    }
    # Odd data only (Magento requires names on accounts): the mailbox name, then placeholders, never empty.
    assert buyer("nia@example.com", "", " ") == {
        "email": "nia@example.com",
        "first_name": "nia",
        "last_name": "Customer",
    }
    assert buyer("@example.com", "", "")["first_name"] == "Web"
    assert buyer("a@example.com", "x" * 300, "y" * 300) == {
        "email": "a@example.com",
        "first_name": "x" * 255,
        "last_name": "y" * 255,
    }
