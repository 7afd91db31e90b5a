"""Magento's countries and regions (`GET /V1/directory/countries`): which countries the linked store takes
and the region ids an address in them needs. Fetched once per worker and kept a while: the list changes
only when an admin edits the allowed countries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workers.registry import HandlerContext

CACHE_KEY = "customers.directory"
TTL_SECONDS = 900.0
# An unknown country fails the customer for good, so a list this old is fetched again first (an admin may
# have just allowed the country).
RECHECK_AFTER_SECONDS = 60.0


class RegionInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int  # a string in Magento's answer
    code: str
    name: str


class CountryInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    available_regions: list[RegionInfo] = Field(default_factory=list)


@dataclass(frozen=True)
class Directory:
    countries: dict[str, CountryInfo]
    loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def parse(cls, payload: list[dict[str, Any]]) -> Directory:
        countries = [CountryInfo.model_validate(c) for c in payload]
        return cls({c.id.upper(): c for c in countries})

    def country(self, country_id: str) -> CountryInfo | None:
        return self.countries.get(country_id.upper())


async def load(ctx: HandlerContext, *, unknown: set[str] | None = None) -> Directory:
    """The cached directory; fetched again when stale, or when it lacks one of `unknown` and is not fresh."""
    cached: Directory | None = ctx.services.caches.get(CACHE_KEY)
    now = time.monotonic()
    if cached is not None:
        age = now - cached.loaded_at
        missing = bool(unknown) and any(cached.country(c) is None for c in unknown or ())
        if age < TTL_SECONDS and not (missing and age >= RECHECK_AFTER_SECONDS):
            return cached
    directory = Directory.parse(await ctx.magento.countries())
    ctx.services.caches[CACHE_KEY] = directory
    return directory
