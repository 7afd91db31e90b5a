"""Countries and regions (Magento's `directory_country` / `directory_country_region` data): the region ids
are Magento's, e.g. TX=57, CA=12, NY=43. Countries listed in REQUIRES_REGION need a region on addresses."""

from __future__ import annotations

from typing import NamedTuple

COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW
    BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS
    IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM
    MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS
    PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK
    TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW""".split()
)
REQUIRES_REGION = frozenset({"US", "CA"})


class Region(NamedTuple):
    id: int
    code: str
    name: str


_US = """AL Alabama|AK Alaska|AS American Samoa|AZ Arizona|AR Arkansas|AE Armed Forces Africa|AA Armed Forces Americas|
AE Armed Forces Canada|AE Armed Forces Europe|AE Armed Forces Middle East|AP Armed Forces Pacific|CA California|
CO Colorado|CT Connecticut|DE Delaware|DC District of Columbia|FM Federated States Of Micronesia|FL Florida|
GA Georgia|GU Guam|HI Hawaii|ID Idaho|IL Illinois|IN Indiana|IA Iowa|KS Kansas|KY Kentucky|LA Louisiana|ME Maine|
MH Marshall Islands|MD Maryland|MA Massachusetts|MI Michigan|MN Minnesota|MS Mississippi|MO Missouri|MT Montana|
NE Nebraska|NV Nevada|NH New Hampshire|NJ New Jersey|NM New Mexico|NY New York|NC North Carolina|ND North Dakota|
MP Northern Mariana Islands|OH Ohio|OK Oklahoma|OR Oregon|PW Palau|PA Pennsylvania|PR Puerto Rico|RI Rhode Island|
SC South Carolina|SD South Dakota|TN Tennessee|TX Texas|UT Utah|VT Vermont|VI Virgin Islands|VA Virginia|
WA Washington|WV West Virginia|WI Wisconsin|WY Wyoming"""
_CA = """AB Alberta|BC British Columbia|MB Manitoba|NL Newfoundland and Labrador|NB New Brunswick|NS Nova Scotia|
NT Northwest Territories|NU Nunavut|ON Ontario|PE Prince Edward Island|QC Quebec|SK Saskatchewan|YT Yukon Territory"""


def _regions(table: str, first_id: int) -> list[Region]:
    entries = [e.strip() for e in table.replace("\n", "").split("|")]
    return [Region(first_id + n, *e.split(" ", 1)) for n, e in enumerate(entries)]


REGIONS: dict[str, list[Region]] = {"US": _regions(_US, 1), "CA": _regions(_CA, 66)}
_BY_ID = {r.id: (country, r) for country, regions in REGIONS.items() for r in regions}


def find_region(country_id: str, *, region_id: int | None, code: str | None, name: str | None) -> Region | None:
    """The region an address means, by id first, then by code, then by name (as the address model does)."""
    if region_id:
        hit = _BY_ID.get(region_id)
        return hit[1] if hit and hit[0] == country_id else None
    regions = REGIONS.get(country_id, [])
    if code:
        found = [r for r in regions if r.code.upper() == code.upper()]
        if found:
            return found[0] if len(found) == 1 or not name else next((r for r in found if r.name == name), found[0])
    if name:
        return next((r for r in regions if r.name.casefold() == name.casefold()), None)
    return None
