"""The admin dashboard at /admin/ui in headless Chromium (Debian's chromium, driven by Playwright): sign-in with
the admin token, live numbers from a real gateway, worker and Redis, Replay on a dead letter, and the resync and
reconcile buttons with job progress. Plus the HTTP side: the files are public, the data is not.

These tests never skip: without chromium or the playwright package they fail and say what to install."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from crmcore import keys
from crmcore.events import AcceptedEvent, Source
from crmcore.remotes import MARK_DOWN_LUA, Remote, drain_rank
from tests.conftest import post_event
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from tests.test_openapi import check
from workers.errors import PermanentError
from workers.registry import HandlerContext, Progress, Registry

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # reported by the `browser` fixture as a failure, not a skip
    async_playwright = None  # type: ignore[assignment]

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 15_000  # the page refreshes every 3 s; a few rounds of slack for a busy CI machine


@pytest.fixture
def chromium() -> str:
    if async_playwright is None:
        pytest.fail("the dashboard tests need Playwright's Python package: .venv/bin/pip install -e '.[dev]'")
    if not Path(CHROMIUM).exists():
        pytest.fail("the dashboard tests need headless Chromium: apt-get install -y chromium (Debian's package)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # Debian's chromium, not a Playwright download (`playwright install` is never run).
        launched = await pw.chromium.launch(executable_path=chromium)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    # A script error or a CSP refusal of our own files shows up here; the page must have none.
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    yield page
    await context.close()
    # 401 from the wrong-token sign-in is the one expected console error (the browser logs failed fetches).
    assert [e for e in errors if "401" not in e] == []


def _url(gateway: TestClient, path: str = "/admin/ui") -> str:
    return f"http://{gateway.host}:{gateway.port}{path}"


async def _sign_in(page: Page, gateway: TestClient, token: str = ADMIN_TOKEN) -> None:
    await page.goto(_url(gateway))
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")


async def _send(gateway: TestClient, product_id: str) -> str:
    msg_id = new_id()
    body = envelope("product.updated", {"product_id": product_id, "sku": f"SKU-{product_id}"})
    assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
    return msg_id


# ----------------------------------------------------------------------------------------------- HTTP


async def test_the_files_are_public_and_the_data_is_not(gateway: TestClient) -> None:
    page = await gateway.get("/admin/ui")
    assert page.status == 200
    html = await check(page, "GET", "/admin/ui")
    assert 'src="ui/dashboard.js"' in html and ADMIN_TOKEN not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        resp = await gateway.get(f"/admin/ui/{name}")
        assert resp.status == 200 and resp.content_type == ctype
        await check(resp, "GET", "/admin/ui/{asset}")
    missing = await gateway.get("/admin/ui/index.py")
    assert missing.status == 404
    await check(missing, "GET", "/admin/ui/{asset}")

    # Only the dashboard's own paths are public: the API next to it and tricks around the prefix are not.
    for path in (
        "/admin/status",
        "/admin/uix",
        "/admin/ui/../status",
        "/admin/ui/%2e%2e/status",
        "/admin/ui%2f..%2fstatus",
    ):
        resp = await gateway.get(path, allow_redirects=False)
        assert resp.status in (401, 404), path
        assert b'"redis"' not in await resp.read(), path


# ----------------------------------------------------------------------------------------------- browser


async def test_sign_in_live_numbers_and_replay(page: Page, gateway: TestClient, start_worker) -> None:
    broken = {"on": True}
    handled: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        if broken["on"] and events[-1].data["product_id"] == "P-bad":
            raise PermanentError("attribute set 'Shoes' does not exist in Magento")
        handled.extend(e.id for e in events)

    # A wrong token is refused and not kept.
    await _sign_in(page, gateway, token="not-the-token-0123456789")
    await expect(page.locator("#login-error")).to_have_text("The gateway refused this token.", timeout=WAIT_MS)
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.locator("#dashboard").is_hidden()

    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#redis-state")).to_have_text("Redis ok", timeout=WAIT_MS)
    await expect(page.locator("#queue-depth")).to_have_text("0")
    await expect(page.locator("#no-workers")).to_be_visible()

    # Live numbers: events arrive while no worker runs.
    bad = await _send(gateway, "P-bad")
    good = await _send(gateway, "P-good")
    await expect(page.locator("#queue-depth")).to_have_text("2", timeout=WAIT_MS)
    await expect(page.locator("#recent-count")).to_have_text("2")
    bad_row = page.locator(f"#events tbody tr[data-id='{bad}']")
    await expect(bad_row.locator("td.status")).to_have_text("queued")

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    await start_worker(registry)
    await expect(page.locator("#worker-count")).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator("#workers tbody tr")).to_have_count(1)
    await expect(page.locator("#workers tbody tr td").nth(4)).to_contain_text(" s")
    await expect(bad_row.locator("td.status")).to_have_text("dead", timeout=WAIT_MS)
    good_row = page.locator(f"#events tbody tr[data-id='{good}']")
    await expect(good_row.locator("td.status")).to_have_text("done")
    await expect(page.locator("#queue-depth")).to_have_text("0")
    await expect(page.locator("#dead-letter-count")).to_have_text("1")
    dl_rows = page.locator("#dead-letters tbody tr")
    await expect(dl_rows).to_have_count(1)
    await expect(dl_rows.first).to_contain_text("does not exist in Magento")
    await expect(dl_rows.first).to_contain_text(bad)

    # Failures only: the dead event stays, the handled one goes.
    await page.check("#failures-only")
    await expect(page.locator("#events tbody tr")).to_have_count(1, timeout=WAIT_MS)
    await expect(bad_row).to_be_visible()
    await page.uncheck("#failures-only")
    await expect(page.locator("#events tbody tr")).to_have_count(2, timeout=WAIT_MS)

    # Replay once the cause is fixed: the dead letter goes and the event is handled.
    broken["on"] = False
    await dl_rows.first.locator("button.replay").click()
    await expect(page.locator("#action-message")).to_contain_text("replayed: 1 event(s) queued again")
    await expect(dl_rows).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator("#no-dead-letters")).to_be_visible()
    await expect(bad_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(page.locator("#dead-letter-count")).to_have_text("0")
    assert handled.count(bad) == 1
    listing = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
    assert listing["total"] == 0

    # The token lives in this tab's sessionStorage only, never in the page; a reload keeps the session.
    assert ADMIN_TOKEN not in await page.content()
    await page.reload()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#worker-count")).to_have_text("1", timeout=WAIT_MS)
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_buttons_start_jobs_and_show_their_progress(
    page: Page, gateway: TestClient, redis: Any, start_worker
) -> None:
    release = asyncio.Event()

    async def reconcile(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=1, total=3)
        await release.wait()  # held until the test has seen the running job's progress in the page
        report = {"skus_compared": 3, "drift": 1, "dry_run": params["dry_run"]}
        await ctx.redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps(report))  # as the real job does
        await progress(done=3)
        return report

    async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=2, total=2)
        return {"updated": 2}

    registry = Registry()
    registry.register_job("reconcile-inventory", reconcile)
    registry.register_job("resync-products", resync_products)
    await start_worker(registry)
    await _sign_in(page, gateway)
    await expect(page.locator("#reports")).to_contain_text("No report yet.", timeout=WAIT_MS)

    await page.click("button[data-action=reconcile][data-dry-run=true]")
    await expect(page.locator("#action-message")).to_contain_text("Started job reconcile-inventory-")
    job_row = page.locator("#jobs tbody tr").first
    await expect(job_row.locator("td.status")).to_have_text("running", timeout=WAIT_MS)
    await expect(job_row.locator(".progress-label")).to_have_text("1/3")
    assert await job_row.locator("progress").evaluate("p => [p.value, p.max]") == [1, 3]
    release.set()
    await expect(job_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(job_row.locator(".progress-label")).to_have_text("3/3")
    await expect(job_row).to_contain_text('"drift":1')
    report = page.locator("#reports .report[data-name='reconcile-inventory']")
    await expect(report).to_contain_text("skus_compared", timeout=WAIT_MS)

    # A full resync asks for confirmation (accepted by the page fixture's dialog handler).
    await page.click("button[data-action=resync][data-kind=products]")
    await expect(page.locator("#jobs tbody tr")).to_have_count(2, timeout=WAIT_MS)
    resync_row = page.locator("#jobs tbody tr").first
    await expect(resync_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(resync_row.locator(".progress-label")).to_have_text("2/2")

    jobs = (await (await gateway.get("/admin/jobs", headers=AUTH)).json())["items"]
    assert [(j["kind"], j["params"], j["status"]) for j in jobs] == [
        ("resync-products", {}, "done"),
        ("reconcile-inventory", {"dry_run": True}, "done"),
    ]


async def test_remotes_panel_shows_an_outage_and_its_parked_backlog(
    page: Page, gateway: TestClient, redis: Any
) -> None:
    await _sign_in(page, gateway)
    magento = page.locator("#remotes tbody tr[data-remote='magento']")
    await expect(magento.locator(".remote-state")).to_have_text("up", timeout=WAIT_MS)
    await expect(magento.locator("td.parked")).to_have_text("none")

    # What a worker records when Magento answers 503, and the entities it parks meanwhile.
    now_ms = int(time.time() * 1000)
    await redis.eval(MARK_DOWN_LUA, 1, keys.remote(Remote.MAGENTO), "unavailable", "magento 503", "", now_ms)
    for i, events in enumerate((2, 1, 1)):
        entity = f"cloudretailer:product:P-{i}"
        await redis.zadd(keys.remote_parked(Remote.MAGENTO), {entity: drain_rank(entity, now_ms)})
        await redis.rpush(keys.pending(entity), *[f"ev-{i}-{n}" for n in range(events)])

    await expect(magento.locator(".remote-state")).to_have_text("unavailable", timeout=WAIT_MS)
    await expect(magento.locator(".remote-state")).to_have_class(re.compile(r"\bwarn\b"))
    await expect(magento.locator(".remote-summary")).to_contain_text("unavailable since")
    await expect(magento.locator(".remote-summary")).to_contain_text("magento 503")
    await expect(magento.locator("td.parked")).to_have_text("3 entities, 4 event(s)")
    cr = page.locator("#remotes tbody tr[data-remote='cloudretailer']")
    await expect(cr.locator(".remote-state")).to_have_text("up")
