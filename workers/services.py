"""The API clients a worker's handlers talk through, opened once per worker process.

A worker without Magento or Cloud Retailer configured still runs (tests register their own handlers); a
handler that needs a missing client raises MisconfiguredError naming the variable to set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmcore.remotes import Remote
from crmcore.settings import Settings, env_name
from workers.clients.cloudretailer import CloudRetailerClient
from workers.clients.magento import MagentoClient
from workers.errors import MisconfiguredError


@dataclass
class Services:
    magento_client: MagentoClient | None = None
    cr_client: CloudRetailerClient | None = None
    # Per-worker caches of slow-changing remote metadata (attribute sets, options, store root category),
    # keyed by the domain that owns them.
    caches: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        magento = MagentoClient(settings) if settings.magento_url else None
        cr = CloudRetailerClient(settings) if settings.cr_url else None
        return cls(magento, cr)

    @property
    def magento(self) -> MagentoClient:
        if self.magento_client is None:
            raise MisconfiguredError(env_name("magento_url"), "not set (nor its credentials)", remote=Remote.MAGENTO)
        return self.magento_client

    @property
    def cr(self) -> CloudRetailerClient:
        if self.cr_client is None:
            raise MisconfiguredError(
                env_name("cr_url"), "not set (nor CRMAGENTO_CR_API_KEY)", remote=Remote.CLOUDRETAILER
            )
        return self.cr_client

    async def close(self) -> None:
        for client in (self.magento_client, self.cr_client):
            if client is not None:
                await client.close()
