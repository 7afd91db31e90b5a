"""Routes: /V1/directory/countries and /V1/directory/countries/{countryId} (`CountryInformationAcquirer`),
anonymous as in Directory/etc/webapi.xml. The countries and region ids are sandbox.magento.directory's; the
sandbox has no country names, so both name fields carry the code."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento.directory import COUNTRIES, REGIONS
from sandbox.magento.errors import MagentoError
from sandbox.magento.routing import ANONYMOUS, RestRoutes, json_response

COUNTRY_NOT_AVAILABLE = "Requested country is not available."


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/directory/countries", list_countries, ANONYMOUS)
    routes.add("GET", "/directory/countries/{countryId}", get_country, ANONYMOUS)


def country_info(country_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": country_id,
        "two_letter_abbreviation": country_id,
        "three_letter_abbreviation": country_id,
        "full_name_locale": country_id,
        "full_name_english": country_id,
    }
    if country_id in REGIONS:
        # Magento's region ids are strings in this interface.
        out["available_regions"] = [{"id": str(r.id), "code": r.code, "name": r.name} for r in REGIONS[country_id]]
    return out


async def list_countries(request: web.Request) -> web.Response:
    return json_response([country_info(c) for c in sorted(COUNTRIES)])


async def get_country(request: web.Request) -> web.Response:
    country_id = request.match_info["countryId"]
    if country_id not in COUNTRIES:  # NoSuchEntityException, case-sensitive like the collection lookup
        raise MagentoError(404, COUNTRY_NOT_AVAILABLE)
    return json_response(country_info(country_id))
