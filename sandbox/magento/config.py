"""Settings of one sandbox Magento instance: its stores, credentials, callback target, seed and faults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from crmcore.settings import decode_webhook_secret
from sandbox.faults import FaultRule


class Website(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1)
    code: str
    name: str
    default_group_id: int


class StoreGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1)
    website_id: int
    code: str
    name: str
    default_store_id: int
    root_category_id: int = 2


class StoreView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1)
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    website_id: int
    store_group_id: int
    is_active: bool = True
    locale: str = "en_US"
    timezone: str = "America/Chicago"
    base_currency_code: str = "USD"
    weight_unit: str = "lbs"


# Two websites so that "created through a store code -> only that store's website" and "email unique per
# website" are observable; the main website has a second view `fr` for store-scope overrides.
DEFAULT_WEBSITES = [
    Website(id=1, code="base", name="Main Website", default_group_id=1),
    Website(id=2, code="outlet", name="Outlet Website", default_group_id=2),
]
DEFAULT_GROUPS = [
    StoreGroup(id=1, website_id=1, code="main_website_store", name="Main Website Store", default_store_id=1),
    StoreGroup(id=2, website_id=2, code="outlet_store", name="Outlet Store", default_store_id=3),
]
DEFAULT_VIEWS = [
    StoreView(id=1, code="default", name="Default Store View", website_id=1, store_group_id=1),
    StoreView(id=2, code="fr", name="French", website_id=1, store_group_id=1, locale="fr_FR", timezone="Europe/Paris"),
    StoreView(id=3, code="outlet", name="Outlet Store View", website_id=2, store_group_id=2),
]

RESERVED_STORE_CODES = frozenset({"all", "admin", "V1"})
MSI_SOURCES = ("default", "main_street")


class MagentoSandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    websites: list[Website] = Field(default_factory=lambda: list(DEFAULT_WEBSITES))
    store_groups: list[StoreGroup] = Field(default_factory=lambda: list(DEFAULT_GROUPS))
    store_views: list[StoreView] = Field(default_factory=lambda: list(DEFAULT_VIEWS))
    base_url: str = Field(default="http://localhost:8081/", description="what storeConfigs report as base_url")

    # The four integration credentials (Admin > System > Integrations). Magento's are 32 lowercase alnum chars.
    consumer_key: SecretStr = SecretStr("sandboxconsumerkey00000000000001")
    consumer_secret: SecretStr = SecretStr("sandboxconsumersecret00000000001")
    access_token: SecretStr = SecretStr("sandboxaccesstoken00000000000001")
    access_token_secret: SecretStr = SecretStr("sandboxaccesstokensecret00000001")
    # `oauth/consumer/enable_integration_as_bearer`: off by default on real 2.4.4+, on here so the demo can use
    # a single token; tests cover both.
    bearer_enabled: bool = True
    bearer_token: SecretStr | None = Field(default=None, description="None: the integration access token")

    callback_url: str | None = Field(default=None, description="the gateway's POST /webhooks/magento")
    callback_secret: SecretStr | None = Field(default=None, description="whsec_ secret shared with the gateway")

    seed: int = 1
    products: int = Field(default=0, ge=0, description="pre-existing products from sandbox.catalog.product(i)")
    customers: int = Field(default=0, ge=0, description="pre-existing customers from sandbox.catalog.customer(i)")
    # Unset: `default` and a shop's source `main_street` with MSI (both in the default stock, as every enabled
    # source is here), `default` alone without it (legacy stock has no sources).
    source_codes: list[str] = Field(default_factory=lambda: list(MSI_SOURCES), min_length=1)
    seed_source_code: str = Field(default="default", description="source holding the seeded products' on-hand")
    msi: bool = Field(default=True, description="false: /V1/inventory/* answers 404 like a store without MSI")
    faults: list[FaultRule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _sources_of_mode(cls, data: object) -> object:
        if isinstance(data, dict) and "source_codes" not in data and data.get("msi") is False:
            return {**data, "source_codes": ["default"]}
        return data

    @field_validator("callback_secret")
    @classmethod
    def _whsec(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            decode_webhook_secret(secret.get_secret_value())  # the gateway's own rule for its secrets
        return secret

    @model_validator(mode="after")
    def _consistent(self) -> MagentoSandboxConfig:
        websites = {w.id for w in self.websites}
        groups = {g.id: g for g in self.store_groups}
        views = {v.id: v for v in self.store_views}
        if len(websites) != len(self.websites) or len(groups) != len(self.store_groups):
            raise ValueError("website and store group ids must be unique")
        if len(views) != len(self.store_views) or len({v.code for v in self.store_views}) != len(views):
            raise ValueError("store view ids and codes must be unique")
        if "default" not in {v.code for v in self.store_views}:
            raise ValueError("a store view with code 'default' is required (it is what /rest/V1 means)")
        for view in self.store_views:
            if view.code in RESERVED_STORE_CODES:
                raise ValueError(f"store code {view.code!r} is reserved")
            if view.website_id not in websites or view.store_group_id not in groups:
                raise ValueError(f"store view {view.code!r} points at an unknown website or group")
        for group in self.store_groups:
            if group.website_id not in websites or group.default_store_id not in views:
                raise ValueError(f"store group {group.code!r} points at an unknown website or store view")
        if "default" not in self.source_codes or self.seed_source_code not in self.source_codes:
            raise ValueError("source_codes must hold 'default' and the seed_source_code")
        return self

    def effective_bearer(self) -> str:
        return (self.bearer_token or self.access_token).get_secret_value()
