"""Both sandbox servers (Magento 2 and Cloud Retailer) in one process, wired to one gateway.

`configs_from_settings` turns the gateway's own `CRMAGENTO_*` settings into the two sandbox configs, so the
sandboxes accept exactly the credentials the gateway's clients send and sign with the secrets its webhook
edge verifies; whatever is not set falls back to a documented sandbox default (docs/sandboxes.md), and the
result says which. `sandboxes_running` starts both on given ports (0: any free port) and yields their URLs and
apps; `crmagento sandbox`, tests/test_sandbox_cli.py and bench/sandbox_scale.py start them through it, and
the demo can.

Seeding is deterministic (sandbox/catalog.py): Cloud Retailer, the system of record, holds the catalog
(`products` with images, attributes, categories and stock, and `customers`). Magento starts empty of products
and customers by default, because filling it is the gateway's initial sync; `magento_products` pre-loads the
first M catalog products as if an earlier sync had run (benchmarks, trying re-syncs on an existing store).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from crmcore.settings import Settings, env_name
from sandbox.cloudretailer.app import create_app as create_cloudretailer_app
from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
from sandbox.faults import FaultRule
from sandbox.magento.app import create_app as create_magento_app
from sandbox.magento.config import MagentoSandboxConfig

# Sandbox defaults for what the environment leaves unset. They are public (docs/sandboxes.md lists them) and
# only ever meant for a sandbox on the loopback; the Magento ones are MagentoSandboxConfig's own defaults.
DEFAULT_CR_API_KEY = "sandbox-cloudretailer-api-key-01"
DEFAULT_CR_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"sandbox-cloudretailer-webhooks-1").decode()
DEFAULT_MAGENTO_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"sandbox-magento-callbacks-000001").decode()

CR_WEBHOOK_PATH = "/webhooks/cloudretailer"
MAGENTO_CALLBACK_PATH = "/webhooks/magento"
LISTEN_BACKLOG = 1024
# A request the faults hold for an hour (timeout_rate) would keep aiohttp's stop waiting its default 60 s:
# a sandbox answers nothing worth waiting for, so the stop cuts such requests after this.
SHUTDOWN_TIMEOUT_S = 1.0
MAX_CATALOG = 1_000_000  # CloudRetailerSandboxConfig's own limit

_OAUTH_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


class SandboxError(Exception):
    """A start-up problem the operator must fix (bad option, unreadable faults file); the message says which."""


class ListenError(SandboxError):
    """A port cannot be bound (taken, privileged, unknown address)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


@dataclass(frozen=True)
class Credential:
    """One credential the sandboxes expect, named by the variable the gateway reads it from (never its value)."""

    what: str
    env: tuple[str, ...]
    from_env: bool


@dataclass(frozen=True)
class SandboxConfigs:
    magento: MagentoSandboxConfig
    cloudretailer: CloudRetailerSandboxConfig
    credentials: tuple[Credential, ...]
    gateway_url: str | None
    magento_products: int = 0

    @property
    def defaulted(self) -> list[str]:
        """The variables that were not set, so a sandbox default stands in for them."""
        return [name for c in self.credentials if not c.from_env for name in c.env]


class FaultPlan(BaseModel):
    """Fault rules active from the start, per sandbox (`/_sandbox/faults` changes them live)."""

    model_config = ConfigDict(extra="forbid")

    magento: list[FaultRule] = Field(default_factory=list)
    cloudretailer: list[FaultRule] = Field(default_factory=list)


def load_fault_plan(path: Path) -> FaultPlan:
    """A JSON file holding a list of rules (both sandboxes) or {"magento": [...], "cloudretailer": [...]}."""
    try:
        raw = orjson.loads(path.read_bytes())
        if isinstance(raw, list):
            return FaultPlan(magento=raw, cloudretailer=raw)
        return FaultPlan.model_validate(raw)
    except OSError as exc:
        raise SandboxError(f"--faults: cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise SandboxError(f"--faults: {path} is not JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "(top level)"
        raise SandboxError(f"--faults: {path}: {where}: {first['msg']}") from None


def check_gateway_url(url: str) -> str:
    """The gateway's base URL (no path beyond an optional prefix); webhook paths are appended to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SandboxError(
            f"--gateway-url must be an http:// or https:// base URL, e.g. http://127.0.0.1:8080 (got {url!r})"
        )
    return url.rstrip("/")


def configs_from_settings(
    settings: Settings,
    *,
    gateway_url: str | None,
    products: int = 200,
    customers: int = 50,
    seed: int = 1,
    magento_products: int = 0,
    faults: FaultPlan | None = None,
) -> SandboxConfigs:
    """The two sandbox configs, using the gateway's credentials and secrets where they are set.

    `gateway_url` None sends no webhooks or callbacks at all (benchmarks of the sandboxes alone)."""
    if not 0 <= products <= MAX_CATALOG or not 0 <= customers <= MAX_CATALOG:
        raise SandboxError(f"--products and --customers must be between 0 and {MAX_CATALOG}")
    if not 0 <= magento_products <= products:
        raise SandboxError("--magento-products must be between 0 and --products (Magento holds synced products)")
    base = check_gateway_url(gateway_url) if gateway_url is not None else None
    faults = faults or FaultPlan()
    credentials: list[Credential] = []

    def pick(what: str, field_name: str, value: SecretStr | None, default: SecretStr) -> SecretStr:
        credentials.append(Credential(what, (env_name(field_name),), value is not None))
        return value if value is not None else default

    # Magento: OAuth 1.0a integration credentials, each from its variable or MagentoSandboxConfig's default.
    magento_defaults = MagentoSandboxConfig()
    oauth = {
        name: pick(
            f"Magento OAuth 1.0a {name.replace('_', ' ')}",
            f"magento_{name}",
            getattr(settings, f"magento_{name}"),
            getattr(magento_defaults, name),
        )
        for name in _OAUTH_FIELDS
    }
    # Bearer: CRMAGENTO_MAGENTO_TOKEN when set; otherwise the integration access token, as real Magento does
    # with integration tokens used as bearer.
    token = settings.magento_token
    credentials.append(Credential("Magento bearer token", (env_name("magento_token"),), token is not None))
    # The first secret of a rotation list is the current one: senders sign with it, the gateway accepts all.
    cr_secret = pick(
        "Cloud Retailer webhook signing",
        "cr_webhook_secrets",
        _first(settings.cr_webhook_secrets),
        SecretStr(DEFAULT_CR_WEBHOOK_SECRET),
    )
    magento_secret = pick(
        "Magento callback signing",
        "magento_webhook_secrets",
        _first(settings.magento_webhook_secrets),
        SecretStr(DEFAULT_MAGENTO_WEBHOOK_SECRET),
    )
    api_key = pick("Cloud Retailer API key", "cr_api_key", settings.cr_api_key, SecretStr(DEFAULT_CR_API_KEY))

    magento = MagentoSandboxConfig(
        **oauth,
        bearer_enabled=True,
        bearer_token=token,
        callback_url=f"{base}{MAGENTO_CALLBACK_PATH}" if base else None,
        callback_secret=magento_secret,
        seed=seed,
        products=magento_products,
        customers=0,
        faults=faults.magento,
    )
    cloudretailer = CloudRetailerSandboxConfig(
        api_key=api_key,
        gateway_webhook_url=f"{base}{CR_WEBHOOK_PATH}" if base else None,
        webhook_secret=cr_secret,
        seed=seed,
        products=products,
        customers=customers,
        faults=faults.cloudretailer,
    )
    return SandboxConfigs(magento, cloudretailer, tuple(credentials), base, magento_products)


def _first(secrets: list[SecretStr]) -> SecretStr | None:
    return secrets[0] if secrets else None


@dataclass
class Sandboxes:
    """Both sandboxes, listening. `*_url` are what the gateway's CRMAGENTO_MAGENTO_URL / CRMAGENTO_CR_URL take."""

    host: str
    magento_port: int
    cloudretailer_port: int
    magento_app: web.Application
    cloudretailer_app: web.Application
    seed_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def magento_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.magento_port}"

    @property
    def magento_rest_url(self) -> str:
        return f"{self.magento_url}/rest/"

    @property
    def cloudretailer_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.cloudretailer_port}/api/v1"


@contextlib.asynccontextmanager
async def sandboxes_running(
    configs: SandboxConfigs, *, host: str = "127.0.0.1", magento_port: int = 0, cloudretailer_port: int = 0
) -> AsyncIterator[Sandboxes]:
    """Bind both ports first (a taken port fails at once, not after seeding), seed, then serve."""
    if magento_port and magento_port == cloudretailer_port:
        raise SandboxError(f"--magento-port and --cr-port must differ (both {magento_port})")
    with contextlib.ExitStack() as sockets:
        magento_sock = sockets.enter_context(_listen(host, magento_port))
        cr_sock = sockets.enter_context(_listen(host, cloudretailer_port))
        mport, crport = magento_sock.getsockname()[1], cr_sock.getsockname()[1]
        # storeConfigs report base_url; only now is the real port known.
        magento_config = configs.magento.model_copy(update={"base_url": f"http://{_url_host(host)}:{mport}/"})
        # Seeding 100k products takes seconds of CPU: off the loop, so signals (and anything else the caller
        # runs on it, e.g. a test's webhook receiver) stay served meanwhile.
        seconds: dict[str, float] = {}
        gc.collect()
        magento_app = await asyncio.to_thread(_timed, seconds, "magento", create_magento_app, magento_config)
        cr_app = await asyncio.to_thread(
            _timed, seconds, "cloudretailer", create_cloudretailer_app, configs.cloudretailer
        )
        # Millions of seeded objects live as long as the process: move them out of the cyclic collector's reach,
        # or every full collection rescans them all (a ~0.4 s pause per pass at 100k products). The collect
        # before seeding (above) keeps garbage that was already pending from being frozen with them.
        gc.freeze()
        runners: list[web.AppRunner] = []
        try:
            for app, sock in ((magento_app, magento_sock), (cr_app, cr_sock)):
                runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
                runners.append(runner)
                await runner.setup()
                await web.SockSite(runner, sock, backlog=LISTEN_BACKLOG).start()
            yield Sandboxes(host, mport, crport, magento_app, cr_app, seconds)
        finally:
            # Cleanup drains webhooks still in flight (WebhookSender.close) before the loop goes away.
            for runner in reversed(runners):
                await runner.cleanup()
            gc.unfreeze()  # a long-lived caller (tests, the demo) gets the seeded objects collectable again


def _timed(
    seconds: dict[str, float], name: str, build: Callable[[Any], web.Application], config: Any
) -> web.Application:
    started = time.perf_counter()
    app = build(config)
    seconds[name] = time.perf_counter() - started
    return app


@contextlib.contextmanager
def _listen(host: str, port: int) -> Any:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenError(host, port, exc.strerror or "unknown address") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TCPSite(reuse_address=True) does
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc.strerror or str(exc)) from None
    try:
        yield sock
    finally:
        sock.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def describe(running: Sandboxes, configs: SandboxConfigs) -> list[str]:
    """What an operator needs to point the gateway at the sandboxes; credentials by variable name only."""
    cr = configs.cloudretailer
    lines = [
        f"Sandbox Magento:        {running.magento_rest_url}  (CRMAGENTO_MAGENTO_URL={running.magento_url})",
        f"Sandbox Cloud Retailer: {running.cloudretailer_url}  (CRMAGENTO_CR_URL={running.cloudretailer_url})",
        f"Catalog: seed {cr.seed}; Cloud Retailer holds {cr.products} products and {cr.customers} customers, "
        f"Magento {configs.magento_products} products (the gateway's initial sync fills it)",
    ]
    if configs.gateway_url:
        lines.append(
            f"Webhooks: {configs.gateway_url}{CR_WEBHOOK_PATH}, callbacks: {configs.gateway_url}{MAGENTO_CALLBACK_PATH}"
        )
    else:
        lines.append("Webhooks: none (no gateway URL)")
    lines.append("Credentials, read as the gateway reads them (CRMAGENTO_* or .env; values never shown):")
    width = max(len(name) for c in configs.credentials for name in c.env)
    for c in configs.credentials:
        what = c.what
        if c.env == (env_name("magento_token"),) and not c.from_env:
            what += " (unset: the access token is accepted as bearer instead)"
        for name in c.env:
            lines.append(f"  {name:<{width}}  {'set    ' if c.from_env else 'default'}  {what}")
    if configs.defaulted:
        lines.append(f"Not set, so the sandbox defaults in docs/sandboxes.md apply: {', '.join(configs.defaulted)}")
    return lines


async def run_until_stopped(
    configs: SandboxConfigs,
    *,
    host: str = "127.0.0.1",
    magento_port: int = 0,
    cloudretailer_port: int = 0,
    echo: Callable[[str], object] = print,
) -> None:
    """`crmagento sandbox`: both sandboxes until SIGINT or SIGTERM (then a clean stop, exit 0)."""
    from crmagento.runtime import stop_on_signals

    stop = stop_on_signals()  # before seeding: a signal during a long seed still stops cleanly
    async with sandboxes_running(
        configs, host=host, magento_port=magento_port, cloudretailer_port=cloudretailer_port
    ) as running:
        for line in describe(running, configs):
            echo(line)
        seeded = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in running.seed_seconds.items())
        echo(f"Ready (seeded in {seeded}). Ctrl-C or SIGTERM stops both.")
        await stop.wait()
