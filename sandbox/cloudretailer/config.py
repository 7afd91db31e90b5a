"""Start-up settings of the sandbox Cloud Retailer server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from crmcore.settings import decode_webhook_secret
from sandbox.faults import FaultRule


class CloudRetailerSandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(description="the one key accepted as `Authorization: Bearer <key>`")
    gateway_webhook_url: str | None = Field(
        default=None, description="where signed webhooks go, e.g. http://127.0.0.1:8080/webhooks/cloudretailer"
    )
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_<base64>, the gateway's CR secret")
    seed: int = Field(default=1, description="same seed, same catalog (see sandbox/catalog.py)")
    products: int = Field(default=200, ge=0, le=1_000_000)
    customers: int = Field(default=50, ge=0, le=1_000_000)
    styles: bool = Field(
        default=True, description="seed apparel and footwear as variants of styles (False: all plain products)"
    )
    faults: list[FaultRule] = Field(default_factory=list, description="fault rules active from the start")
    fault_seed: int | None = Field(default=None, description="makes fault rolls reproducible")
    webhook_attempts: int = Field(default=5, ge=1)
    # Base64 image uploads inside product PUTs are the largest bodies; aiohttp's 1 MiB default is too small.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be blank")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        # Fail at start-up, not on the first delivery: a bad secret would make every webhook a 401.
        if value is not None:
            decode_webhook_secret(value.get_secret_value())
        return value
