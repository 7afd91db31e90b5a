"""One scenario's whole system: private Redis, relay, both sandboxes (in this process), the gateway and the
workers (subprocesses), wired like a production install and driven only through public surfaces: the
sandboxes' APIs and `/_sandbox/` controls, the gateway's webhooks, admin API and `/metrics`.

The periodic fallbacks (inventory reconciliation, order poll, catch-up) are scheduled once a day here, so
what converges in a scenario converged through the webhook path alone; `fallbacks_ran` proves none ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.asyncio import Redis

from crmcore import keys
from sandbox.catalog import LINKED_STORE_ID
from sandbox.cloudretailer.app import create_app as create_cr
from sandbox.cloudretailer.config import CloudRetailerSandboxConfig
from sandbox.cloudretailer.keys import SENDER
from sandbox.magento.app import create_app as create_magento
from sandbox.magento.config import MagentoSandboxConfig
from sandbox.magento.routing import CALLBACKS
from tests.chaos.processes import PrivateRedis, Processes, free_port
from tests.chaos.relay import Relay
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET

CR_API_KEY = "cr-sandbox-api-key-for-chaos-0001"
MAGENTO_TOKEN = "sandboxaccesstoken00000000000001"  # the sandbox's integration access token, accepted as bearer
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ONCE_A_DAY = "1440"
_SERVER_LOG = logging.getLogger("aiohttp.server")


class ChaosStack:
    def __init__(self, run_dir: Path, *, products: int, workers: int, env: dict[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.products = products
        self.worker_count = workers
        self.extra_env = env or {}
        self.redis = PrivateRedis(run_dir / "redis")
        self.procs: Processes | None = None
        self.relay: Relay | None = None
        self.magento_app: web.Application | None = None
        self.cr_app: web.Application | None = None
        self.magento_url = ""
        self.cr_url = ""
        self._runners: list[web.AppRunner] = []
        self._http: aiohttp.ClientSession | None = None
        self._kv: Redis | None = None
        self._server_log_level = logging.NOTSET

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def __aenter__(self) -> ChaosStack:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A killed worker drops its connections mid-request; aiohttp logs each as a traceback on the sandbox
        # side. Expected here, and it would bury the report.
        self._server_log_level = _SERVER_LOG.level
        _SERVER_LOG.setLevel(logging.CRITICAL)
        redis_url = await self.redis.start()
        # The run's own Redis, read directly only for what no API shows (arq leases, entity keys, job count).
        self._kv = Redis.from_url(redis_url)
        self.procs = Processes(env={}, log_dir=self.run_dir)
        self.relay = Relay(self.procs.gateway_url)
        await self.relay.start()

        magento_port, cr_port = free_port(), free_port()
        self.magento_url = f"http://127.0.0.1:{magento_port}"
        self.cr_url = f"http://127.0.0.1:{cr_port}/api/v1"
        # Cloud Retailer holds the catalog; Magento holds the same products as if the initial sync had run
        # (global values and on-hand at the linked store), so the stream starts from two systems in step.
        magento = create_magento(
            MagentoSandboxConfig(
                base_url=f"{self.magento_url}/",
                callback_url=f"{self.relay.url}/webhooks/magento",
                callback_secret=SecretStr(MAGENTO_SECRET),
                products=self.products,
            )
        )
        cr = create_cr(
            CloudRetailerSandboxConfig(
                api_key=SecretStr(CR_API_KEY),
                gateway_webhook_url=f"{self.relay.url}/webhooks/cloudretailer",
                webhook_secret=SecretStr(CR_SECRET),
                products=self.products,
                customers=0,
                styles=False,
            )
        )
        for app, port in ((magento, magento_port), (cr, cr_port)):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)
        self.magento_app, self.cr_app = magento, cr
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

        self.procs.env = {
            "CRMAGENTO_REDIS_URL": redis_url,
            "CRMAGENTO_CR_WEBHOOK_SECRETS": CR_SECRET,
            "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS": MAGENTO_SECRET,
            "CRMAGENTO_ADMIN_TOKENS": ADMIN_TOKEN,
            "CRMAGENTO_MAGENTO_URL": self.magento_url,
            "CRMAGENTO_MAGENTO_TOKEN": MAGENTO_TOKEN,
            "CRMAGENTO_CR_URL": self.cr_url,
            "CRMAGENTO_CR_API_KEY": CR_API_KEY,
            "CRMAGENTO_CR_STORE_ID": LINKED_STORE_ID,
            # Only the webhook path may make the systems converge (see the module docstring).
            "CRMAGENTO_RECONCILE_INTERVAL_MINUTES": ONCE_A_DAY,
            "CRMAGENTO_ORDER_POLL_INTERVAL_MINUTES": ONCE_A_DAY,
            "CRMAGENTO_CATCHUP_INTERVAL_MINUTES": ONCE_A_DAY,
            "CRMAGENTO_WORKER_HEARTBEAT_SECONDS": "0.5",
            "CRMAGENTO_LOG_LEVEL": "INFO",
            "CRMAGENTO_LOG_FORMAT": "json",
            **self.extra_env,
        }
        await self.procs.start_gateway()
        for _ in range(self.worker_count):
            await self.procs.start_worker()
        await self.wait_workers(self.worker_count)

    async def close(self) -> None:
        if self.procs is not None:
            await self.procs.stop_all()
        if self.relay is not None:
            await self.relay.close()
        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        if self._http is not None:
            await self._http.close()
        if self._kv is not None:
            await self._kv.aclose()
        self.redis.stop()
        _SERVER_LOG.setLevel(self._server_log_level)

    # --- the gateway's public surfaces -------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    @property
    def kv(self) -> Redis:
        assert self._kv is not None
        return self._kv

    async def leased_jobs(self) -> set[str]:
        """Entity jobs some worker holds right now (arq's in-progress keys, deleted when a job ends). The crons
        (housekeeping every minute, the schedule ticks) are leased briefly on the minute: not counted."""
        return {k.decode() async for k in self.kv.scan_iter(match=f"arq:in-progress:{keys.PREFIX}*", count=1000)}

    @property
    def gateway_url(self) -> str:
        assert self.procs is not None
        return self.procs.gateway_url

    async def admin(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.gateway_url}{path}", headers=ADMIN, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def metrics(self) -> dict[str, dict[str, float]]:
        """`/metrics` summed by outcome: {"webhooks": {"queued": n, ...}, "jobs": {"done": n, ...}}."""
        async with self.http.get(f"{self.gateway_url}/metrics") as resp:
            text = await resp.text()
        out: dict[str, dict[str, float]] = {"webhooks": {}, "jobs": {}}
        for family in text_string_to_metric_families(text):
            key = {"crmagento_webhooks": "webhooks", "crmagento_jobs": "jobs"}.get(family.name)
            if key is None:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels["outcome"]
                    out[key][outcome] = out[key].get(outcome, 0) + sample.value
        return out

    async def wait_workers(self, n: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while True:
            status, body = await self.admin("GET", "/admin/status")
            if status == 200 and sum(w["age_seconds"] < 3 for w in body["workers"]) >= n:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} workers did not report within {within} s: {body}")
            await asyncio.sleep(0.2)

    async def warm_up(self, within: float = 60.0) -> None:
        """What an installation looks like after its initial sync: Magento has the products (seeded) and the
        category tree, and the gateway knows which category is which. A category resync through the admin API
        creates and binds the tree, so the stream's product changes never need to create a category.

        Why it matters: creating a category takes a Redis lock (60 s) that a worker killed at that moment (or
        Redis dying under it) leaves behind, stalling products of that category for up to a minute (see
        docs/reliability.md). That is a first-sync-only window, not the steady state the scenarios test."""
        status, job = await self.admin("POST", "/admin/resync/categories", json={})
        assert status == 202, job
        deadline = time.monotonic() + within
        while True:
            _, record = await self.admin("GET", f"/admin/jobs/{job['job_id']}")
            if record["status"] == "done":
                return
            if record["status"] == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"category resync did not finish: {record}")
            await asyncio.sleep(0.2)

    # --- the sandboxes' test surface ---------------------------------------------------------------------

    async def faults(self, system: str, rules: list[dict[str, Any]]) -> None:
        base = self.magento_url if system == "magento" else self.cr_url.removesuffix("/api/v1")
        async with self.http.put(f"{base}/_sandbox/faults", json=rules) as resp:
            assert resp.status == 200, await resp.text()

    async def drain_senders(self, within: float = 30.0) -> None:
        """Wait until both sandboxes handed every webhook they emitted to the relay."""
        assert self.magento_app is not None and self.cr_app is not None
        await self.magento_app[CALLBACKS].drain(within)
        await self.cr_app[SENDER].drain(within)
