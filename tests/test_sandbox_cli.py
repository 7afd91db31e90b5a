"""`crmagento sandbox` as an operator runs it: both sandboxes in one real subprocess on free ports, the
gateway's CRMAGENTO_ credentials, signed webhooks to a stand-in gateway, clean stops; and the shared catalog
pinned by content hashes, so making it faster can never change what a seed produces."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client
from pydantic import SecretStr
from yarl import URL

from crmagento.sandboxes import DEFAULT_CR_API_KEY, configs_from_settings, sandboxes_running
from crmcore.events import CATALOGUE, Envelope, Source
from crmcore.settings import Settings
from gateway.signatures import SignatureError, Verifier
from sandbox import catalog
from sandbox.magento.config import MagentoSandboxConfig
from tests.support.signing import CR_SECRET, MAGENTO_SECRET
from tests.test_cli import CLI, clean_env, free_port

# --- the catalog, pinned ------------------------------------------------------------------------------------


def digest(spec: Any) -> str:
    # Field order and dict insertion order are part of the output (they reach the JSON), so no key sorting.
    return hashlib.sha256(orjson.dumps(dataclasses.asdict(spec))).hexdigest()[:16]


PINNED_PRODUCTS = {  # seed 1, computed with the original (random.Random per product) generator
    1: "4bd4257915bd4c83",
    2: "37e88e97bba04c3c",
    3: "9ad347f421f6ee7c",
    10: "9e061148052d6e8e",  # every tenth: not web-active
    11: "3da28692d84fa5c9",
    12345: "2a2e61cf547b0994",
    100_000: "d97c66f685bb2378",
}
PINNED_CUSTOMERS = {1: "64db9125826d0118", 2: "415ad9d9d5f1b67c", 50: "4ab3d6a6893883b4"}


def test_the_catalog_of_a_seed_never_changes() -> None:
    assert {i: digest(catalog.product(i, 1)) for i in PINNED_PRODUCTS} == PINNED_PRODUCTS
    assert {i: digest(catalog.customer(i, 1)) for i in PINNED_CUSTOMERS} == PINNED_CUSTOMERS
    # The bulk path (one generator re-seeded per product) gives the same products as one call each.
    whole = hashlib.sha256()
    for spec in catalog.products(5000, 1):
        whole.update(orjson.dumps(dataclasses.asdict(spec)))
    assert whole.hexdigest()[:16] == "2447df47e8e237b3"
    assert list(catalog.iter_products(30, 7)) == [catalog.product(i, 7) for i in range(1, 31)]
    # Other seeds (zero, large) too, and they differ from each other.
    mixed = hashlib.sha256()
    for seed in (0, 2, 7, 123456789, 2**40):
        for spec in catalog.products(300, seed):
            mixed.update(orjson.dumps(dataclasses.asdict(spec)))
        for customer in catalog.customers(50, seed):
            mixed.update(orjson.dumps(dataclasses.asdict(customer)))
    assert mixed.hexdigest()[:16] == "5c3bcceed08ed06c"
    assert catalog.product(5, 2) != catalog.product(5, 3)


PINNED_STYLED_PRODUCTS = {  # seed 1 with styles: wearables are variants (P-5 and P-12345 are plain: unchanged)
    1: "403ffdf3418fdd58",
    2: "02b94637f2885594",
    5: "31510391d3707a9a",
    10: "014f43a0f1bc202e",
    11: "876cde7379a3a49e",
    41: "d68d7d45003ef4ed",
    51: "a9eb10a0fff81505",
    12345: PINNED_PRODUCTS[12345],
    100_000: "f6bc1a3c0b8dfaa0",
}
PINNED_STYLES = {1: "4254db9fcdc3370a", 5: "abea381e0256a9b2", 6: "f27c3169af3f5210", 10_000: "f1ce81dadcd09ca3"}


def test_the_styled_catalog_of_a_seed_never_changes() -> None:
    styled = {i: digest(catalog.product(i, 1, styles=True)) for i in PINNED_STYLED_PRODUCTS}
    assert styled == PINNED_STYLED_PRODUCTS
    assert digest(catalog.product(5, 1)) == PINNED_STYLED_PRODUCTS[5], "a plain department is the same either way"
    assert {n: digest(catalog.style(n, 1)) for n in PINNED_STYLES} == PINNED_STYLES
    whole = hashlib.sha256()
    for spec in catalog.products(5000, 1, styles=True):
        whole.update(orjson.dumps(dataclasses.asdict(spec)))
    for style in catalog.styles(5000, 1):
        whole.update(orjson.dumps(dataclasses.asdict(style)))
    assert whole.hexdigest()[:16] == "ca7b15f604742268"
    assert list(catalog.iter_products(60, 7, styles=True)) == [catalog.product(i, 7, styles=True) for i in range(1, 61)]
    # A variant differs from its plain self only in name, colour and size.
    plain, variant = catalog.product(11, 1), catalog.product(11, 1, styles=True)
    assert (variant.name, variant.attributes["size"]) == (f"{catalog.style(1).name} White M", "M")
    assert dataclasses.replace(variant, name=plain.name, attributes=plain.attributes) == plain
    assert catalog.style_count(100_000) == len(catalog.styles(100_000)) == 10_000
    assert catalog.styled_catalog(300, 2) == (catalog.products(300, 2, styles=True), catalog.styles(300, 2))


def test_generating_100k_products_takes_about_a_second() -> None:
    started = time.perf_counter()
    specs = catalog.products(100_000, 1)
    took = time.perf_counter() - started
    assert digest(specs[-1]) == PINNED_PRODUCTS[100_000]
    assert took < 10, f"100k products took {took:.1f} s"  # ~1 s here; generous for a loaded CI machine


# --- the command --------------------------------------------------------------------------------------------

CONFIGURED = {  # everything the gateway would have set; values a test can look for in the output
    "CRMAGENTO_MAGENTO_TOKEN": "magento-bearer-from-env-hunter2",
    "CRMAGENTO_MAGENTO_CONSUMER_KEY": "consumerkeyfromenv00000000000001",
    "CRMAGENTO_MAGENTO_CONSUMER_SECRET": "consumersecretfromenvhunter20001",
    "CRMAGENTO_MAGENTO_ACCESS_TOKEN": "accesstokenfromenv00000000000001",
    "CRMAGENTO_MAGENTO_ACCESS_TOKEN_SECRET": "accesssecretfromenvhunter2000001",
    "CRMAGENTO_CR_API_KEY": "cr-api-key-from-env-hunter2",
    "CRMAGENTO_CR_WEBHOOK_SECRETS": CR_SECRET,
    "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": MAGENTO_SECRET,
}


@dataclass
class Sandbox:
    """One `crmagento sandbox` process; output goes to files so a full pipe never blocks it."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    magento: str  # http://127.0.0.1:P
    cr: str  # http://127.0.0.1:Q/api/v1

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    async def ready(self, within: float = 30) -> str:
        deadline = time.monotonic() + within
        while "Ready" not in self.stdout():
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}:\n{self.stdout()}\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready within {within} s:\n{self.stdout()}\n{self.stderr()}")
            await asyncio.sleep(0.05)
        return self.stdout()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, within: float = 10) -> int:
        self.process.send_signal(sig)
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running {within} s after {sig.name}")
            await asyncio.sleep(0.05)
        return self.process.returncode


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(*args: str, env: dict[str, str] | None = None, gateway_url: str = "http://127.0.0.1:9") -> Sandbox:
        n = len(started)
        mport, crport = free_port(), free_port()
        out, err = tmp_path / f"sandbox-{n}.out", tmp_path / f"sandbox-{n}.err"
        argv = [*CLI, "sandbox", "--magento-port", str(mport), "--cr-port", str(crport), "--gateway-url", gateway_url]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [*argv, *args],
                env=clean_env(**(env or {})),
                cwd=tmp_path,  # no .env of the repository's working directory
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        sandbox = Sandbox(process, out, err, f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{crport}/api/v1")
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:  # only the processes this test started, by their own handle
        if sandbox.process.poll() is None:
            sandbox.process.kill()
            sandbox.process.wait(10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, URL(url, encoded=True), **kw) as resp:
        raw = await resp.read()
        return resp.status, (orjson.loads(raw) if raw else None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oauth(url: str, key: str, secret: str, token: str, token_secret: str, method: str = "GET") -> dict[str, str]:
    client = Client(
        key,
        client_secret=secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        signature_method=SIGNATURE_HMAC_SHA256,
    )
    _, headers, _ = client.sign(url, http_method=method)
    return {"Authorization": headers["Authorization"]}


async def test_both_answer_with_the_gateways_credentials_and_sigterm_exits_0(
    start_sandbox: Callable[..., Sandbox], http: aiohttp.ClientSession
) -> None:
    sandbox = start_sandbox("--products", "25", "--customers", "4", env=CONFIGURED)
    out = await sandbox.ready()
    assert f"{sandbox.magento}/rest/" in out and sandbox.cr in out
    for variable in CONFIGURED:
        assert variable in out
    assert "default" not in out.split("Credentials", 1)[1].replace("sandbox defaults", "")
    everything = out + sandbox.stderr()
    for value in CONFIGURED.values():
        assert value not in everything
    assert "hunter2" not in everything

    views = f"{sandbox.magento}/rest/V1/store/storeViews"
    assert (await call(http, "GET", views, headers=bearer(CONFIGURED["CRMAGENTO_MAGENTO_TOKEN"])))[0] == 200
    # CRMAGENTO_MAGENTO_TOKEN replaces the access token as bearer; the sandbox's default credentials are gone.
    assert (await call(http, "GET", views, headers=bearer(CONFIGURED["CRMAGENTO_MAGENTO_ACCESS_TOKEN"])))[0] == 401
    four = [CONFIGURED[f"CRMAGENTO_MAGENTO_{n}"] for n in ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN")]
    four.append(CONFIGURED["CRMAGENTO_MAGENTO_ACCESS_TOKEN_SECRET"])
    products = f"{sandbox.magento}/rest/all/V1/products?searchCriteria%5BpageSize%5D=5"  # signed as sent
    status, body = await call(http, "GET", products, headers=oauth(products, *four))
    assert (status, body["total_count"]) == (200, 0)  # Magento starts empty: the gateway's initial sync fills it
    defaults = MagentoSandboxConfig()
    default_four = [getattr(defaults, n).get_secret_value() for n in ("consumer_key", "consumer_secret")]
    default_four += [getattr(defaults, n).get_secret_value() for n in ("access_token", "access_token_secret")]
    assert (await call(http, "GET", products, headers=oauth(products, *default_four)))[0] == 401

    status, body = await call(
        http, "GET", f"{sandbox.cr}/products?limit=500", headers=bearer(CONFIGURED["CRMAGENTO_CR_API_KEY"])
    )
    assert status == 200 and len(body["items"]) == 25 and body["next_cursor"] is None
    assert (await call(http, "GET", f"{sandbox.cr}/products", headers=bearer(DEFAULT_CR_API_KEY)))[0] == 401

    assert await sandbox.stop(signal.SIGTERM) == 0
    assert "Traceback" not in sandbox.stderr()


async def test_unset_credentials_fall_back_to_the_documented_defaults_and_sigint_exits_0(
    start_sandbox: Callable[..., Sandbox], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"cloudretailer": [{"match": "GET /api/v1/stores", "error_rate": 1}]}))
    sandbox = start_sandbox("--products", "3", "--faults", str(faults))
    out = await sandbox.ready()
    for variable in CONFIGURED:
        assert f"{variable} " in out and variable in out.rsplit("sandbox defaults", 1)[1]
    defaults = MagentoSandboxConfig()
    views = f"{sandbox.magento}/rest/V1/store/storeViews"
    assert (await call(http, "GET", views, headers=bearer(defaults.access_token.get_secret_value())))[0] == 200
    key = bearer(DEFAULT_CR_API_KEY)
    assert (await call(http, "GET", f"{sandbox.cr}/products", headers=key))[0] == 200
    # The fault file is active from the start, on Cloud Retailer only, and visible under /_sandbox/faults.
    assert (await call(http, "GET", f"{sandbox.cr}/stores", headers=key))[0] == 503
    base = sandbox.cr.removesuffix("/api/v1")
    assert [r["match"] for r in (await call(http, "GET", f"{base}/_sandbox/faults"))[1]] == ["GET /api/v1/stores"]
    assert (await call(http, "GET", f"{sandbox.magento}/_sandbox/faults"))[1] == []
    assert await sandbox.stop(signal.SIGINT) == 0


async def test_no_msi_serves_a_magento_with_legacy_stock_only(
    start_sandbox: Callable[..., Sandbox], http: aiohttp.ClientSession
) -> None:
    sandbox = start_sandbox("--products", "3", "--magento-products", "3", "--no-msi")
    await sandbox.ready()
    token = bearer(MagentoSandboxConfig().access_token.get_secret_value())
    assert (await call(http, "GET", f"{sandbox.magento}/rest/V1/inventory/sources", headers=token))[0] == 404
    status, item = await call(http, "GET", f"{sandbox.magento}/rest/V1/stockItems/CR-000001", headers=token)
    assert status == 200 and "qty" in item
    assert await sandbox.stop(signal.SIGTERM) == 0


async def test_the_same_seed_gives_the_same_catalog_in_both_sandboxes(
    start_sandbox: Callable[..., Sandbox], http: aiohttp.ClientSession
) -> None:
    # Magento's pre-loaded products come from the plain catalog: compare against Cloud Retailer's plain one.
    args = ("--products", "40", "--customers", "5", "--seed", "5", "--magento-products", "10", "--no-styles")
    first, second = start_sandbox(*args), start_sandbox(*args)
    await first.ready()
    await second.ready()
    key = bearer(DEFAULT_CR_API_KEY)
    token = bearer(MagentoSandboxConfig().access_token.get_secret_value())

    async def snapshot(sandbox: Sandbox) -> list[Any]:
        listed = []
        for path in ("products?limit=500", "customers?limit=500", "categories", "inventory?store_id=W-1&limit=500"):
            status, body = await call(http, "GET", f"{sandbox.cr}/{path}", headers=key)
            assert status == 200
            listed.append(body)
        url = f"{sandbox.magento}/rest/all/V1/products?searchCriteria[pageSize]=100"
        status, body = await call(http, "GET", url, headers=token)
        assert status == 200
        # Magento stamps its own created_at/updated_at with the wall clock; the rest must match exactly.
        listed.append([{k: v for k, v in p.items() if not k.endswith("_at")} for p in body["items"]])
        return listed

    one, two = await snapshot(first), await snapshot(second)
    assert one == two
    status, styles = await call(http, "GET", f"{first.cr}/styles", headers=key)
    assert (status, styles["items"]) == (200, []), "--no-styles: plain products only"
    cr_products, magento_products = one[0]["items"], one[4]
    assert [p["name"] for p in cr_products] == [catalog.product(i, 5).name for i in range(1, 41)]
    assert [p["price"] for p in cr_products] == [catalog.product(i, 5).price for i in range(1, 41)]
    # Magento holds the first ten as if synced: same SKUs, names and prices as Cloud Retailer's.
    assert [(p["sku"], p["name"], p["price"]) for p in magento_products] == [
        (p["sku"], p["name"], p["price"]) for p in cr_products[:10]
    ]
    assert [p.name for p in catalog.products(40, 6)] != [p["name"] for p in cr_products]
    assert await first.stop() == 0 and await second.stop() == 0


@dataclass
class Gateway:
    """A stand-in for the gateway's two webhook endpoints that verifies like the gateway does."""

    verifiers: dict[str, Verifier] = field(
        default_factory=lambda: {
            "cloudretailer": Verifier.from_secrets([CR_SECRET]),
            "magento": Verifier.from_secrets([MAGENTO_SECRET]),
        }
    )
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        body = await request.read()
        try:
            self.verifiers[source].verify(request.headers, body)
        except SignatureError as exc:
            self.refused.append(f"{source}: {exc}")
            return web.json_response({"detail": str(exc)}, status=401)
        # The envelope and its data must be what the gateway's own event models accept.
        envelope = Envelope.model_validate_json(body)
        model = CATALOGUE[Source(source)].get(envelope.type)
        assert model is not None, f"{source} sent an event type the gateway does not know: {envelope.type}"
        model.model_validate(envelope.data)
        self.events.append((source, envelope.type, envelope.data))
        return web.json_response({"id": request.headers["webhook-id"], "status": "queued"}, status=202)

    async def wait(self, source: str, event_type: str, within: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            for got_source, got_type, data in self.events:
                if (got_source, got_type) == (source, event_type):
                    return data
            if time.monotonic() > deadline:
                raise AssertionError(f"no {source} {event_type} within {within} s: {self.events} {self.refused}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str]]:
    receiver = Gateway()
    app = web.Application()
    app.router.add_post("/webhooks/{source}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield receiver, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_writes_send_signed_webhooks_and_callbacks_to_the_gateway_url(
    start_sandbox: Callable[..., Sandbox], http: aiohttp.ClientSession, gateway: tuple[Gateway, str]
) -> None:
    receiver, url = gateway
    env = {k: v for k, v in CONFIGURED.items() if "WEBHOOK" in k}
    sandbox = start_sandbox("--products", "5", env=env, gateway_url=url)
    await sandbox.ready()
    key = bearer(DEFAULT_CR_API_KEY)

    # A change sent with X-Sandbox-Suppress-Webhook is made but not announced (a lost delivery) ...
    quiet = {**key, "X-Sandbox-Suppress-Webhook": "1"}
    status, body = await call(http, "PUT", f"{sandbox.cr}/products/P-1", json={"price": 11.5}, headers=quiet)
    assert (status, body["price"]) == (200, 11.5)
    # ... an ordinary one is: signed with the first CRMAGENTO_CR_WEBHOOK_SECRETS, posted to /webhooks/cloudretailer.
    status, _ = await call(http, "PUT", f"{sandbox.cr}/products/P-2", json={"price": 12.5}, headers=key)
    assert status == 200
    data = await receiver.wait("cloudretailer", "product.updated")
    assert data["product_id"] == "P-2"
    assert [e for e in receiver.events if e[2].get("product_id") == "P-1"] == []
    # Styles are on by default: wearables are variants, and a style write is announced like the others.
    status, styles = await call(http, "GET", f"{sandbox.cr}/styles", headers=key)
    assert status == 200 and [s["id"] for s in styles["items"]] == ["ST-1", "ST-2", "ST-3", "ST-4"]
    status, _ = await call(http, "PUT", f"{sandbox.cr}/styles/ST-1", json={"name": "Renamed"}, headers=key)
    assert status == 200
    assert await receiver.wait("cloudretailer", "style.updated") == {"style_id": "ST-1", "code": "STY-000001"}

    token = bearer(MagentoSandboxConfig().access_token.get_secret_value())
    customer = {"customer": {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}}
    status, created = await call(http, "POST", f"{sandbox.magento}/rest/V1/customers", json=customer, headers=token)
    assert status == 200
    data = await receiver.wait("magento", "customer.created")
    assert data == {"customer_id": created["id"]}
    assert receiver.refused == []
    assert await sandbox.stop() == 0


async def test_in_process_on_any_free_ports_with_the_gateways_settings(http: aiohttp.ClientSession) -> None:
    settings = Settings.model_construct(cr_api_key=SecretStr("in-process-key-0001"))  # no environment, no .env
    configs = configs_from_settings(settings, gateway_url=None, products=7, customers=2, magento_products=3)
    assert "CRMAGENTO_CR_API_KEY" not in configs.defaulted and "CRMAGENTO_MAGENTO_TOKEN" in configs.defaulted
    async with sandboxes_running(configs) as running:
        assert 0 not in (running.magento_port, running.cloudretailer_port)
        assert gc.get_freeze_count() > 0  # the seeded objects are out of the cyclic collector's way
        token = bearer(configs.magento.effective_bearer())
        status, views = await call(http, "GET", f"{running.magento_url}/rest/V1/store/storeConfigs", headers=token)
        assert status == 200 and views[0]["base_url"] == f"{running.magento_url}/"  # the real port, not 0
        key = bearer("in-process-key-0001")
        status, body = await call(http, "GET", f"{running.cloudretailer_url}/products?limit=10", headers=key)
        assert status == 200 and len(body["items"]) == 7
        health = (await call(http, "GET", f"{running.magento_url}/_sandbox/health"))[1]
        assert (health["products"], health["customers"]) == (3, 0)
    assert gc.get_freeze_count() == 0


def run_sandbox(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "sandbox", *args], env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=30
    )


GOOD = ["--magento-port", "0", "--cr-port", "0", "--gateway-url", "http://127.0.0.1:8080"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--magento-port", "0", "--cr-port", "0"], "--gateway-url"),
        ([*GOOD, "--products", "-1"], "--products"),
        ([*GOOD[2:], "--magento-port", "http"], "--magento-port"),
        ([*GOOD[:4], "--gateway-url", "ftp://gw"], "--gateway-url"),
        (["--magento-port", "8123", "--cr-port", "8123", *GOOD[4:]], "must differ"),
        ([*GOOD, "--products", "5", "--magento-products", "6"], "--magento-products"),
        ([*GOOD, "--faults", "missing.json"], "--faults"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = run_sandbox(args, tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert lines[0].startswith("crmagento sandbox: ") and "Traceback" not in result.stderr


def test_a_taken_port_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_sandbox(["--magento-port", "0", "--cr-port", str(port), *GOOD[4:]], tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"crmagento sandbox: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_the_command_is_listed(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "--help"], env=clean_env(COLUMNS="120"), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0 and " sandbox " in result.stdout
