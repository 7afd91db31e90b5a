"""Customer records from one side as the other side's payload (pure functions).

Shared fields: email, first and last name, phone, the addresses and which of them is the default billing and
shipping address. Never mapped: passwords, payment data, purchase history, and Magento-only fields (group
after creation, dob, gender, taxvat, company...), which Magento admins keep managing.

Magento keeps a phone per address and requires it; Cloud Retailer keeps one per customer. Addresses of a
customer without a phone get NO_PHONE, which maps back to no phone.
"""

from __future__ import annotations

from typing import Any

from workers.clients import cloudretailer_models as cr_models
from workers.clients import magento_models as mg_models
from workers.errors import PermanentError
from workers.sync.customers.directory import Directory
from workers.sync.customers.emails import email_problem

NO_PHONE = "N/A"
# Cloud Retailer's limits (docs/cloudretailer-api.md, Customer).
CR_MAX_ADDRESSES = 20
CR_MAX_REGION_CODE = 10
CR_MAX_POSTCODE = 20
CR_MAX_PHONE = 40
CR_MAX_NAME = 255


def check_email(email: str, who: str) -> None:
    problem = email_problem(email)
    if problem:
        raise PermanentError(f"{who}: invalid email {email!r}: {problem}")


# --- Cloud Retailer -> Magento -----------------------------------------------------------------------------


def _region(who: str, address: cr_models.Address, directory: Directory) -> dict[str, Any]:
    """`region` and `region_id` as Magento wants them: the directory's id where the country has a region
    list, free text otherwise."""
    country = directory.country(address.country)
    if country is None:
        raise PermanentError(
            f"{who}: country {address.country!r} is not a country the Magento store knows "
            "(not in GET /V1/directory/countries; allow it in Stores > Configuration > General > Country Options)"
        )
    code = (address.region_code or "").strip()
    if not country.available_regions:
        return {"region": {"region": code, "region_code": code, "region_id": 0}} if code else {}
    if not code:
        return {}  # Magento decides whether this country needs a region (it answers 400 if so)
    wanted = code.casefold()
    region = next((r for r in country.available_regions if r.code.casefold() == wanted), None)
    region = region or next((r for r in country.available_regions if r.name.casefold() == wanted), None)
    if region is None:
        raise PermanentError(f"{who}: region {code!r} is not a region of {country.id} in the Magento store")
    found = {"region": region.name, "region_code": region.code, "region_id": region.id}
    return {"region": found, "region_id": region.id}


def magento_address(
    customer: cr_models.Customer, address: cr_models.Address, n: int, directory: Directory
) -> dict[str, Any]:
    who = f"Cloud Retailer customer {customer.id} address {n + 1}"
    street = [address.line1.strip()]
    if address.line2 and address.line2.strip():
        street.append(address.line2.strip())
    out: dict[str, Any] = {
        "firstname": customer.first_name.strip(),
        "lastname": customer.last_name.strip(),
        "street": street,
        "city": address.city.strip(),
        "country_id": address.country.strip().upper(),
        "telephone": (customer.phone or "").strip() or NO_PHONE,
        **_region(who, address, directory),
        "default_billing": address.default_billing,
        "default_shipping": address.default_shipping,
    }
    if address.postcode and address.postcode.strip():
        out["postcode"] = address.postcode.strip()
    return out


def _one_default(addresses: list[dict[str, Any]]) -> None:
    """Magento has one default of each kind; the first one Cloud Retailer flags wins."""
    for flag in ("default_billing", "default_shipping"):
        seen = False
        for address in addresses:
            address[flag] = bool(address[flag]) and not seen
            seen = seen or address[flag]


def to_magento(customer: cr_models.Customer, directory: Directory) -> dict[str, Any]:
    """The shared fields of a Magento customer (website, group and ids are the importer's business)."""
    check_email(customer.email, f"Cloud Retailer customer {customer.id}")
    addresses = [magento_address(customer, a, n, directory) for n, a in enumerate(customer.addresses)]
    _one_default(addresses)
    return {
        "email": customer.email,
        "firstname": customer.first_name.strip(),
        "lastname": customer.last_name.strip(),
        "addresses": addresses,
    }


# --- Magento -> Cloud Retailer -----------------------------------------------------------------------------


def _phone(customer: mg_models.Customer) -> str | None:
    ordered = sorted(customer.addresses, key=lambda a: (not a.default_billing, not a.default_shipping))
    for address in ordered:
        phone = (address.telephone or "").strip()
        if phone and phone != NO_PHONE:
            return phone[:CR_MAX_PHONE]
    return None


def cr_address(address: mg_models.Address) -> dict[str, Any]:
    lines = [s.strip() for s in address.street if s and s.strip()]
    region = address.region
    code = (region.region_code or region.region or "").strip() if region else ""
    postcode = (address.postcode or "").strip()
    return {
        "line1": lines[0] if lines else "",
        "line2": ", ".join(lines[1:]) or None,
        "city": address.city.strip(),
        # A free-text region longer than Cloud Retailer's codes is left out rather than cut.
        "region_code": code if 0 < len(code) <= CR_MAX_REGION_CODE else None,
        "postcode": postcode[:CR_MAX_POSTCODE] or None,
        "country": address.country_id.strip().upper(),
        "default_billing": bool(address.default_billing),
        "default_shipping": bool(address.default_shipping),
    }


def buyer(email: str, first_name: str, last_name: str) -> dict[str, Any]:
    """A new Cloud Retailer customer from the names an order carries: only what identifies the buyer, because
    the customer sync owns the rest of the record (addresses, phone) and its updates."""
    # Cloud Retailer requires both names; Magento does too for accounts, so the fallback is for odd data only.
    first = first_name.strip()[:CR_MAX_NAME] or email.split("@")[0][:CR_MAX_NAME] or "Web"
    return {"email": email, "first_name": first, "last_name": last_name.strip()[:CR_MAX_NAME] or "Customer"}


def to_cloudretailer(customer: mg_models.Customer) -> dict[str, Any]:
    """A new Cloud Retailer customer from a Magento account (its password and payment data stay in Magento)."""
    check_email(customer.email, f"Magento customer {customer.id}")
    return {
        "email": customer.email,
        "first_name": customer.firstname.strip(),
        "last_name": customer.lastname.strip(),
        "phone": _phone(customer),
        "addresses": [cr_address(a) for a in customer.addresses[:CR_MAX_ADDRESSES]],
    }
