"""Every setting of the product, read from `CRMAGENTO_*` environment variables or a `.env` file.

README's settings table lists the same fields; `tests/test_settings.py` keeps the two in step.
"""

from __future__ import annotations

import base64
import binascii
import math
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from zxcvbn import zxcvbn

ENV_PREFIX = "CRMAGENTO_"
ADMIN_TOKEN_MIN_LENGTH = 16
# 2^64 guesses: beyond reach online (the gateway blocks an address after 20 failures a minute) and costly even
# offline. A random 16-byte token (`openssl rand -hex 16`) is estimated at about 105 bits.
ADMIN_TOKEN_MIN_BITS = 64
ZXCVBN_MAX_LENGTH = 72
SECRET_PREFIX = "whsec_"  # noqa: S105 (a format marker, not a secret)
REDIS_SCHEMES = ("redis", "rediss", "unix")


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the environment variable, never its value."""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def decode_webhook_secret(secret: str) -> bytes:
    """`whsec_<base64>` -> key bytes, as the Standard Webhooks libraries do."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"each secret must look like {SECRET_PREFIX}<base64>")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX} must be valid base64") from None
    if len(key) < 16:
        raise ValueError("each secret must decode to at least 16 bytes")
    return key


CsvSecrets = Annotated[list[SecretStr], NoDecode]
CsvStrings = Annotated[list[str], NoDecode]
PRICE_LEVELS = ("A", "B", "C")
LevelGroups = Annotated[dict[str, int], NoDecode]
StockLinks = Annotated[list["StockLink"], NoDecode]


def parse_price_level_groups(value: object) -> object:
    """`A:2,B:3` -> {"A": 2, "B": 3}. Strict, because a typo here would put a price on the wrong customers."""
    if not isinstance(value, str):
        return value
    out: dict[str, int] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        level, sep, group = (x.strip() for x in part.partition(":"))
        if not sep or level.upper() not in PRICE_LEVELS:
            raise ValueError("each entry must be LEVEL:GROUP_ID with LEVEL one of A, B, C (e.g. A:2,B:3)")
        if level.upper() in out:
            raise ValueError(f"price level {level.upper()} is mapped twice")
        try:
            group_id = int(group)
        except ValueError:
            raise ValueError(f"the customer group of level {level.upper()} must be an integer id") from None
        if group_id < 0:
            raise ValueError(f"the customer group of level {level.upper()} must be an id >= 0")
        if group_id in out.values():
            # Two levels for one group would overwrite each other's price on every sync.
            raise ValueError(f"customer group {group_id} is mapped to two price levels")
        out[level.upper()] = group_id
    return out


class StockLink(NamedTuple):
    """One Cloud Retailer location whose on-hand feeds one Magento inventory source."""

    location_id: str
    source_code: str


def parse_stock_links(value: object) -> object:
    """`W-1:default,S-1:main_street` -> [StockLink("W-1", "default"), ...], in the order given (the first is
    the default link: orders with no source information are booked at its location)."""
    if not isinstance(value, str):
        return value
    out: list[StockLink] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        location, sep, source = (x.strip() for x in part.partition(":"))
        if not sep or not location or not source:
            raise ValueError("each entry must be LOCATION_ID:SOURCE_CODE (e.g. W-1:default,S-1:main_street)")
        out.append(StockLink(location, source))
    return out


def token_bits(token: str) -> float:
    """How hard `token` is to guess, in bits: zxcvbn's estimate of the guesses an attacker who knows how people
    make passwords (words, keyboard runs, sequences, repeats, dates) needs. It looks at the first 72 characters
    (zxcvbn's limit); a longer token is only harder."""
    return zxcvbn(token[:ZXCVBN_MAX_LENGTH])["guesses_log10"] * math.log2(10)


def check_admin_token(token: str) -> None:
    """ValueError, never naming the token, unless it is long and hard enough to guess."""
    if len(token) < ADMIN_TOKEN_MIN_LENGTH:
        raise ValueError(f"each admin token must be at least {ADMIN_TOKEN_MIN_LENGTH} characters")
    bits = token_bits(token)
    if bits < ADMIN_TOKEN_MIN_BITS:
        raise ValueError(
            f"an admin token is too easy to guess (about {bits:.0f} bits by zxcvbn's estimate, at least "
            f"{ADMIN_TOKEN_MIN_BITS} needed); make one with `openssl rand -hex 32`"
        )


def parse_host_port(entry: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); ValueError (without the value) otherwise."""
    host, sep, port = entry.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("each entry must be host:port, e.g. 10.0.0.5:26379")
    return host, int(port)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- infrastructure -------------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        default=None,
        description="redis://, rediss:// or unix:// URL. Unset: `run` and `demo` start an embedded Redis.",
    )
    redis_sentinels: CsvStrings = Field(
        default_factory=list,
        description="Comma-separated host:port of Redis Sentinels; the master is asked of them, and "
        "CRMAGENTO_REDIS_URL (optional then) gives only password, database and TLS.",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="Name the Sentinels monitor the master under (required with the Sentinels)."
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the Sentinels themselves (their requirepass), if they have one."
    )
    data_dir: Path = Field(default=Path("var"), description="Embedded Redis data (append-only file).")
    host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the gateway listens on.")
    queue_name: str = Field(default="crmagento:queue", description="arq queue the jobs go to.")

    # --- webhook edge ---------------------------------------------------------------------------
    cr_webhook_secrets: CsvSecrets = Field(
        default_factory=list, description="Comma-separated whsec_ secrets for Cloud Retailer webhooks."
    )
    magento_webhook_secrets: CsvSecrets = Field(
        default_factory=list, description="Comma-separated whsec_ secrets for Magento callbacks."
    )
    admin_tokens: CsvSecrets = Field(
        default_factory=list,
        description="Comma-separated bearer tokens for the admin API (each at least 64 bits by zxcvbn's estimate).",
    )
    trusted_proxies: CsvStrings = Field(
        default_factory=list,
        description="Comma-separated proxy addresses or CIDRs whose X-Forwarded-For names the client (unset: none).",
    )
    # Read by the admin CLI verbs (`crmagento status`, `resync`, ...), not by the gateway.
    admin_url: str = Field(default="http://127.0.0.1:8080", description="Gateway base URL the admin CLI verbs talk to.")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token the admin CLI verbs send (unset: the first of the admin tokens)."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest webhook body accepted.")
    webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="Allowed clock skew of webhook-timestamp, both ways."
    )
    dedupe_ttl_seconds: int = Field(
        default=7 * 86400,
        ge=3600,
        description="How long a webhook-id is remembered (its event record is kept at least this long).",
    )
    event_log_ttl_seconds: int = Field(
        default=7 * 86400, ge=3600, description="How long event records are kept (longer if the dedupe TTL is longer)."
    )
    event_log_recent_max: int = Field(
        default=10_000, ge=100, description="Events listed in the recent-events index (bounds its memory)."
    )
    # 32, not more: a bigger batch is one longer script that holds Redis (and, on a small machine, the core the
    # senders share with it) for longer; at 128 connections on the ingest bench 32 gave 0.61-0.64 of bare with
    # p99 16-18 ms against 0.55-0.59 and 20-24 ms at 256 (docs/performance.md).
    ingest_batch_max: int = Field(default=32, ge=1, description="Most events written to Redis in one round trip.")
    ingest_flushers: int = Field(
        default=1, ge=1, le=16, description="Batches of webhooks travelling to Redis at the same time."
    )
    ingest_pending_max: int = Field(
        default=5_000, ge=1, description="Events waiting for Redis before the gateway answers 503."
    )
    ingest_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for Redis before a webhook gets 503."
    )
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After sent with 503.")
    # Slow or silent clients hold a connection (and, mid-body, up to max_body_bytes of memory) for nothing:
    # every phase of a request has a deadline, and a process serves at most max_connections at once.
    client_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's headers must arrive within this, from the connection's open or its first byte.",
    )
    client_body_timeout_seconds: float = Field(
        default=15.0, gt=0, description="A request body must be read within this (408 and the connection closes)."
    )
    client_idle_seconds: float = Field(
        default=30.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Open connections per gateway process; beyond it new ones get 503 and close."
    )

    # --- worker ---------------------------------------------------------------------------------
    admin_job_timeout_seconds: int = Field(
        default=3600, ge=10, description="Longest run of one admin job (force resync, reconciliation)."
    )
    job_max_attempts: int = Field(default=8, ge=1, description="Tries per event before it is dead-lettered.")
    job_retry_base_seconds: float = Field(default=2.0, gt=0, description="First retry delay (doubles each try).")
    job_retry_max_seconds: float = Field(default=600.0, gt=0, description="Ceiling of the retry delay.")
    job_timeout_seconds: int = Field(
        default=120, ge=1, description="Longest one handler may run; also sets when a killed worker's job reruns."
    )
    worker_max_jobs: int = Field(default=20, ge=1, description="Jobs one worker runs at once.")
    worker_poll_delay_seconds: float = Field(default=0.05, gt=0, description="arq queue poll interval.")
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0, description="Worker heartbeat interval.")
    worker_shutdown_grace_seconds: int = Field(
        default=20, ge=0, description="On SIGTERM, time running jobs get to finish before they are re-queued."
    )
    worker_takeover_seconds: int = Field(
        default=15,
        ge=2,
        description="A worker whose heartbeat is older than this is taken over: its entities run again elsewhere.",
    )
    ready_worker_max_age_seconds: int = Field(
        default=60, ge=1, description="/readyz fails when no worker heartbeat is younger than this."
    )

    # --- inventory (on-hand stock) -----------------------------------------------------------------
    reconcile_interval_minutes: int = Field(
        default=30, ge=1, le=1440, description="Minutes between full inventory reconciliations."
    )
    inventory_batch_size: int = Field(
        default=20, ge=1, le=300, description="Most source items per Magento write (Magento's input limit: 20)."
    )
    inventory_batch_wait_seconds: float = Field(
        default=0.05, ge=0, le=5, description="Longest a stock change waits for others to share its Magento write."
    )

    # --- Magento (the sandbox or a real store) -----------------------------------------------------
    magento_url: str | None = Field(default=None, description="Magento base URL, e.g. https://shop.example.com.")
    magento_token: SecretStr | None = Field(
        default=None, description="Integration access token sent as Bearer (needs bearer mode on 2.4.4+)."
    )
    magento_consumer_key: SecretStr | None = Field(default=None, description="OAuth 1.0a consumer key.")
    magento_consumer_secret: SecretStr | None = Field(default=None, description="OAuth 1.0a consumer secret.")
    magento_access_token: SecretStr | None = Field(default=None, description="OAuth 1.0a access token.")
    magento_access_token_secret: SecretStr | None = Field(default=None, description="OAuth 1.0a access token secret.")
    magento_store_code: str = Field(default="default", description="Store view linked to Cloud Retailer.")
    magento_website_id: int = Field(default=1, ge=0, description="Website linked to Cloud Retailer.")
    magento_source_code: str = Field(default="default", description="MSI inventory source for on-hand stock.")
    magento_customer_group_id: int = Field(
        default=1, ge=1, description="Customer group of accounts the gateway creates in Magento (1: General)."
    )
    magento_concurrency: int = Field(default=8, ge=1, description="Requests in flight to Magento at once.")

    # --- Cloud Retailer ---------------------------------------------------------------------------------
    cr_url: str | None = Field(default=None, description="Cloud Retailer API base URL (ending in /api/v1).")
    cr_api_key: SecretStr | None = Field(default=None, description="Cloud Retailer API key (Bearer).")
    cr_store_id: str | None = Field(default=None, description="Cloud Retailer store linked to Magento.")
    stock_links: StockLinks = Field(
        default_factory=list,
        description="Cloud Retailer locations feeding Magento sources, LOCATION_ID:SOURCE_CODE, comma-separated "
        "(e.g. W-1:default,S-1:main_street; the first is the default); unset: CR_STORE_ID to MAGENTO_SOURCE_CODE.",
    )
    cr_concurrency: int = Field(default=8, ge=1, description="Requests in flight to Cloud Retailer at once.")

    # --- orders (Magento -> Cloud Retailer sales) ---------------------------------------------------------
    web_orders_tender: str = Field(
        default="Web Orders", min_length=1, description="Cloud Retailer tender type imported orders are paid with."
    )
    price_level_groups: LevelGroups = Field(
        default_factory=dict,
        description="Cloud Retailer price levels written as Magento customer-group prices, LEVEL:GROUP_ID (e.g. "
        "A:2,B:3); unset: off.",
    )
    order_poll_interval_minutes: int = Field(
        default=5, ge=1, le=1440, description="How often Magento is polled for completed orders (the fallback)."
    )
    order_poll_overlap_seconds: int = Field(
        default=120, ge=0, le=86_400, description="How far before its cursor each order poll looks again."
    )

    # --- catch-up (changes whose webhook was lost) ----------------------------------------------------------
    catchup_interval_minutes: int = Field(
        default=30, ge=1, le=1440, description="Minutes between catch-up runs (changes whose webhook was lost)."
    )
    catchup_overlap_seconds: int = Field(
        default=120, ge=0, le=86_400, description="How far before its cursors each catch-up run looks again."
    )

    # --- outbound HTTP ------------------------------------------------------------------------------------
    http_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one outbound API call.")
    http_retries: int = Field(default=4, ge=0, description="Retries of an outbound call on 429/5xx/timeouts.")

    # --- logging --------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["json", "console"] = Field(default="json", description="json for machines.")

    @field_validator(
        "cr_webhook_secrets",
        "magento_webhook_secrets",
        "admin_tokens",
        "redis_sentinels",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("stock_links", mode="before")
    @classmethod
    def _stock_links(cls, value: object) -> object:
        return parse_stock_links(value)

    @field_validator("stock_links")
    @classmethod
    def _stock_links_once(cls, value: list[StockLink]) -> list[StockLink]:
        sources = [link.source_code for link in value]
        if dup := next((s for s in sources if sources.count(s) > 1), None):
            raise ValueError(f"source {dup!r} is linked twice (each Magento source takes one location's stock)")
        locations = [link.location_id for link in value]
        if dup := next((x for x in locations if locations.count(x) > 1), None):
            raise ValueError(f"location {dup!r} is linked twice")
        return value

    @field_validator("price_level_groups", mode="before")
    @classmethod
    def _level_groups(cls, value: object) -> object:
        return parse_price_level_groups(value)

    @field_validator("price_level_groups")
    @classmethod
    def _level_names(cls, value: dict[str, int]) -> dict[str, int]:
        # A dict given as an override skips the parser: hold it to the same rules.
        if any(level not in PRICE_LEVELS for level in value) or any(g < 0 for g in value.values()):
            raise ValueError("levels are A, B or C and customer group ids are integers >= 0")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_host_port(entry)
        return value

    @field_validator("redis_sentinel_master", "redis_sentinel_password", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty variable (a template's `X=`) means unset, as for CRMAGENTO_REDIS_URL.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cr_webhook_secrets", "magento_webhook_secrets")
    @classmethod
    def _webhook_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            decode_webhook_secret(secret.get_secret_value())
        return value

    @field_validator("admin_tokens")
    @classmethod
    def _admin_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            check_admin_token(token.get_secret_value())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError("each entry must be an IP address or a CIDR network, e.g. 10.0.0.0/8") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _default_link(self) -> Settings:
        # The first link is the default: the single-link settings name it, so code that knows only the one
        # linked store (the order's default location, the web store's sales) keeps reading them.
        if not self.stock_links:
            return self
        first = self.stock_links[0]
        if self.cr_store_id is not None and self.cr_store_id != first.location_id:
            raise ValueError(
                f"{env_name('cr_store_id')} must be the location of the first entry of {env_name('stock_links')} "
                "(the default link) or be unset"
            )
        self.cr_store_id = first.location_id
        self.magento_source_code = first.source_code
        return self

    @model_validator(mode="after")
    def _sentinel_consistency(self) -> Settings:
        # Errors raised here carry no field location, so each message names its variables itself.
        sentinels, master, url = env_name("redis_sentinels"), env_name("redis_sentinel_master"), env_name("redis_url")
        if not self.redis_sentinels:
            extra = [f for f in ("redis_sentinel_master", "redis_sentinel_password") if getattr(self, f) is not None]
            if extra:
                names = ", ".join(env_name(f) for f in extra)
                raise ValueError(f"{names}: set without {sentinels} (the Sentinels to ask)")
            return self
        if self.redis_sentinel_master is None:
            raise ValueError(f"{master}: required with {sentinels} (the name the Sentinels monitor the master under)")
        if self.redis_url is not None:
            parts = urlsplit(self.redis_url.get_secret_value())
            # The Sentinels say where the master is; a host in the URL too would be a second, stale answer.
            if parts.scheme == "unix" or parts.hostname or parts.port:
                raise ValueError(
                    f"{url}: with {sentinels} it gives only password, database and TLS, without a host "
                    "(e.g. redis://:password@/0 or rediss:///0)"
                )
        return self

    @property
    def event_record_ttl_seconds(self) -> int:
        """An event's record is also its dedupe marker (crmcore/entityqueue.py), so it lives as long as the
        longer of the two windows."""
        return max(self.dedupe_ttl_seconds, self.event_log_ttl_seconds)

    @property
    def links(self) -> list[StockLink]:
        """The stock links in force: CRMAGENTO_STOCK_LINKS, or the single link of CR_STORE_ID to
        MAGENTO_SOURCE_CODE (empty only while the store is not configured)."""
        if self.stock_links:
            return list(self.stock_links)
        return [StockLink(self.cr_store_id, self.magento_source_code)] if self.cr_store_id else []

    @property
    def default_link(self) -> StockLink | None:
        """Where an order with no source information is booked (the first link)."""
        return self.links[0] if self.links else None

    @property
    def redis_configured(self) -> bool:
        """A Redis to use was given: a URL, or Sentinels (which then need no URL)."""
        return self.redis_url is not None or bool(self.redis_sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [parse_host_port(entry) for entry in self.redis_sentinels]

    def require(self, *fields: str) -> None:
        """Fail with a message naming every unset variable among `fields`.

        `redis_url` stands for "a Redis": Sentinels satisfy it too, and its message names both ways."""
        missing = []
        for f in fields:
            if f == "redis_url":
                if not self.redis_configured:
                    missing.append(f"{env_name(f)} (or {env_name('redis_sentinels')})")
            elif not getattr(self, f):
                missing.append(env_name(f))
        if missing:
            raise ConfigError(f"{', '.join(missing)}: required for this command but not set")

    def require_sync(self) -> None:
        """What the sync rules need: both systems' addresses and credentials, and the linked store."""
        self.require("magento_url", "cr_url", "cr_api_key", "cr_store_id")
        oauth = (
            self.magento_consumer_key,
            self.magento_consumer_secret,
            self.magento_access_token,
            self.magento_access_token_secret,
        )
        if self.magento_token is None and not all(oauth):
            oauth_fields = ("magento_consumer_key", "magento_consumer_secret", "magento_access_token")
            names = ", ".join(env_name(f) for f in (*oauth_fields, "magento_access_token_secret"))
            raise ConfigError(f"{names} (OAuth 1.0a) or {env_name('magento_token')}: required to call Magento")


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error into one line per bad variable (no values echoed)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            # A check across variables (model validator) has no location; its message names them itself.
            lines.append(f"{env_name(str(err['loc'][0]))}: {msg}" if err["loc"] else msg)
        raise ConfigError("\n".join(lines)) from None
