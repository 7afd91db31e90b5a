"""Does a remote work with these settings? The same few authenticated reads serve as the start-up check and as
the probe of a remote that is down, so "it answers again" always means "it answers for this store".

    Magento         GET /rest/all/V1/store/storeConfigs   credentials, base URL, the store view and its website
                    GET /V1/inventory/sources             every linked source (a 404 is a store without MSI:
                                                          legacy stock, which only one link can feed)
    Cloud Retailer  GET /stores                           API key, base URL (with its /api/v1), every linked
                                                          location (none set is a wrong setting too)

A probe makes one try with a short timeout: the backoff between probes is the retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from crmcore.errors import clip
from crmcore.remotes import Remote, RemoteStateName
from crmcore.settings import Settings, env_name
from workers.clients.cloudretailer import CloudRetailerClient, linked_store_id
from workers.clients.errors import ApiError, NotFound, Unauthorized
from workers.clients.http import RetryPolicy
from workers.clients.magento import MagentoClient
from workers.errors import MisconfiguredError
from workers.sync.inventory import links

PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    state: RemoteStateName
    detail: str = ""
    setting: str = ""  # the variable a misconfiguration is about (its name, never its value)

    @classmethod
    def up(cls) -> CheckResult:
        return cls(RemoteStateName.UP)

    @classmethod
    def down(cls, exc: Exception) -> CheckResult:
        return cls(RemoteStateName.UNAVAILABLE, clip(str(exc)))

    @classmethod
    def wrong(cls, setting: str, detail: str) -> CheckResult:
        return cls(RemoteStateName.MISCONFIGURED, clip(f"{setting}: {detail}"), setting)


class Checker:
    """Checks both remotes with clients of its own: one try each, short timeout, and no fence (the probe runs
    outside any job)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        timeout = min(settings.http_timeout_seconds, PROBE_TIMEOUT_S)
        probe = settings.model_copy(update={"http_timeout_seconds": timeout})
        once = RetryPolicy(retries=0)
        self.magento = MagentoClient(probe, retry=once) if settings.magento_url else None
        self.cr = CloudRetailerClient(probe, retry=once) if settings.cr_url and settings.cr_api_key else None

    def configured(self) -> list[Remote]:
        return [r for r, c in ((Remote.MAGENTO, self.magento), (Remote.CLOUDRETAILER, self.cr)) if c is not None]

    async def check(self, remote: Remote) -> CheckResult:
        check: Callable[[], Awaitable[CheckResult]] = (
            self._check_magento if remote is Remote.MAGENTO else self._check_cloudretailer
        )
        try:
            return await check()
        # Down (RemoteUnavailable), a failure worth a retry, or an answer the checks below did not expect: in every
        # case the remote is not known to work with these settings, so it is not marked up.
        except ApiError as exc:
            return CheckResult.down(exc)

    async def _check_magento(self) -> CheckResult:
        assert self.magento is not None
        s = self.settings
        try:
            configs = await self.magento.store_configs(store="all")
        except Unauthorized as exc:
            return CheckResult.wrong(
                f"{env_name('magento_token')} (or the OAuth values)", f"Magento refused the credentials ({exc.status})"
            )
        except NotFound:
            return CheckResult.wrong(env_name("magento_url"), "no Magento REST API answers at this address (404)")
        if not isinstance(configs, list):
            return CheckResult.wrong(env_name("magento_url"), "GET store/storeConfigs did not answer a list")
        view = next((c for c in configs if isinstance(c, dict) and c.get("code") == s.magento_store_code), None)
        if view is None:
            codes = ", ".join(str(c.get("code")) for c in configs if isinstance(c, dict))
            reason = f"not a store view of this Magento (it has: {codes})"
            return CheckResult.wrong(env_name("magento_store_code"), reason)
        if int(view.get("website_id", -1)) != s.magento_website_id:
            return CheckResult.wrong(
                env_name("magento_website_id"),
                f"the store view belongs to website {view.get('website_id')}, not to this one",
            )
        return await self._check_sources()

    async def _check_sources(self) -> CheckResult:
        """Every linked source exists; without MSI (legacy stock, one quantity per product) only one link."""
        assert self.magento is not None
        s = self.settings
        try:
            sources = await self.magento.sources()
        except NotFound:
            refusal = links.legacy_refusal(s)
            return CheckResult.wrong(links.source_setting(s), refusal) if refusal else CheckResult.up()
        unknown = links.unknown_sources(s, [str(src.get("source_code")) for src in sources])
        return CheckResult.wrong(links.source_setting(s), unknown) if unknown else CheckResult.up()

    async def _check_cloudretailer(self) -> CheckResult:
        assert self.cr is not None
        try:
            stores = await self.cr.stores()
        except Unauthorized as exc:
            return CheckResult.wrong(env_name("cr_api_key"), f"Cloud Retailer refused the key ({exc.status})")
        except NotFound:
            return CheckResult.wrong(
                env_name("cr_url"), "no Cloud Retailer API answers at this address (404); does it end in /api/v1?"
            )
        try:
            linked_store_id(self.settings.cr_store_id)
        except MisconfiguredError as exc:
            return CheckResult.wrong(exc.setting, exc.detail)
        unknown = links.unknown_locations(self.settings, [str(st.id) for st in stores])
        return CheckResult.wrong(links.location_setting(self.settings), unknown) if unknown else CheckResult.up()

    async def close(self) -> None:
        for client in (self.magento, self.cr):
            if client is not None:
                await client.close()
